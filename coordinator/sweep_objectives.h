// A sweep's objectives: one (`objective:`) or several (`objectives:`, a
// multi-objective sweep whose result is a Pareto front), how each trial's
// value is read off its metric series, and the rules on the list.
#pragma once

#include <optional>
#include <vector>

#include "common/spec_loader.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

// Two or more objectives.
bool IsMultiObjective(const v1::SweepSpec& spec);

// The objectives in order: `objectives` when there are several, else
// `objective` alone.
std::vector<const v1::ObjectiveSpec*> ObjectivesOf(const v1::SweepSpec& spec);

// `objective` := objectives[0] when only `objectives` was given, so code
// that reads the first objective (the collector, `value`, the CLI) sees it.
void MirrorFirstObjective(v1::SweepSpec* spec);

// A trial's value for `objective` from the metric's values in report order:
// last, or the best / min / max finite one. nullopt without values.
std::optional<double> ReduceSeries(const v1::ObjectiveSpec& objective,
                                   const std::vector<double>& series);

// Rules on the list as a whole (each entry is checked as `objective` is):
// two to tuner::kMaxObjectives entries, distinct metrics, no goals, and not
// beside a different `objective`.
void CheckObjectiveList(const v1::SweepSpec& spec, common::spec_internal::Errors* errors);

}  // namespace gangway::coordinator
