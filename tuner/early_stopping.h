// Early-stopping rules as pure functions of intermediate-value series.
//
// Every value is a loss (lower is better): the Tuner negates the values of a
// maximized objective before calling these. A rule sees the series of the
// trial that just reported and the series of the other trials, and decides
// whether that trial should go on. Nothing here keeps state, so a restarted
// coordinator that replays the reports gets the same decisions.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace gangway::tuner {

enum class Decision { kContinue, kStop };

// The median stopping rule (Golovin et al. 2017, Google Vizier; Katib's
// "medianstop"): stop a trial at step s when its best value up to s is
// strictly worse than the median, over completed trials, of each one's
// running average of the values it reported up to s.
struct MedianStoppingOptions {
  // No decision before this many completed trials have reported at or
  // before the step, since a median of one or two curves is noise.
  int min_trials = 3;
  // No decision before this step: early values say little.
  int64_t start_step = 4;
};

// Asynchronous successive halving (ASHA, Li et al. 2020) as a stopping
// rule: rungs at min_resource * reduction_factor^k steps. When a trial first
// reaches a rung, it goes on only if its value is among the best
// max(1, floor(n / reduction_factor)) of the n values recorded at that rung
// so far (all trials, itself included). So the first trial at a rung always
// goes on and early ones must be the best so far to continue, as in
// Optuna's SuccessiveHalvingPruner, since trials cannot be paused and
// resumed.
struct AshaOptions {
  int64_t min_resource = 1;
  double reduction_factor = 3;
  // Rungs at or above this are not decided on (the trial is done there
  // anyway). 0: no limit.
  int64_t max_resource = 0;
};

absl::Status Validate(const MedianStoppingOptions& options);
absl::Status Validate(const AshaOptions& options);

// (step, loss) in report order.
using Series = std::vector<std::pair<int64_t, double>>;

// `trial`'s last element is the report being decided on. `completed`: the
// series of trials that finished successfully.
Decision MedianStoppingDecision(const MedianStoppingOptions& options, const Series& trial,
                                std::span<const Series* const> completed);

// `others`: the series of every other trial, whatever its state.
Decision AshaDecision(const AshaOptions& options, const Series& trial,
                      std::span<const Series* const> others);

// The rung steps up to `up_to_step` that are decided on (below max_resource).
std::vector<int64_t> AshaRungs(const AshaOptions& options, int64_t up_to_step);

}  // namespace gangway::tuner
