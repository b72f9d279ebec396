// The CLI's sweep commands. Same conventions as commands.h.
#pragma once

#include <string>

#include "cli/commands.h"

namespace gangway::cli {

int SubmitSweepYaml(Context& ctx, const std::string& file, const std::string& yaml);
int GetSweep(Context& ctx, const std::string& id);
// The best trial's parameters (-o json|yaml: {trial, objective, params}).
int Best(Context& ctx, const std::string& id);
// Progress until the sweep ends: a live line with a bar on a terminal,
// a plain line per change otherwise. 0 when it Succeeded.
int WatchSweep(Context& ctx, const std::string& id, bool terminal);
int CancelSweep(Context& ctx, const std::string& id);
int UpdateSweep(Context& ctx, const std::string& id, int parallel, int max_trials, int max_failed);
int ListSweeps(Context& ctx, bool all);
// Metric points of a job (a trial), optionally of one metric.
int Metrics(Context& ctx, const std::string& job_id, const std::string& name);

// Trials sorted best first (objective), with the best marked.
std::string SweepDetail(const v1::Sweep& sweep, int64_t now_ms);
std::string SweepState(v1::SweepState state);
std::string TrialState(v1::TrialState state);

}  // namespace gangway::cli
