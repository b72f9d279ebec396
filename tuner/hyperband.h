// Hyperband (Li et al. 2018) as a search algorithm over a resource
// parameter, the way Katib runs it: the algorithm, not the user, sets one
// numeric parameter (epochs, steps, dataset fraction) of every trial.
//
// With R the resource parameter's max, r the min and eta the reduction
// factor, s_max = floor(log_eta(R / r)). One round runs the brackets
// s = s_max, ..., 0 in turn; bracket s is a successive-halving run:
//
//   rung 0:  n = ceil((s_max + 1) / (s + 1) * eta^s) random configurations,
//            each with resource R * eta^-s;
//   rung i:  the best floor(n * eta^-i) completed trials of rung i - 1 run
//            again, same configuration, with eta times the resource.
//
// Trials cannot be paused and resumed, so a promotion is a new trial (a
// trainer that checkpoints by configuration can resume it). A rung waits for
// every trial of the rung before it: Ask returns fewer proposals (maybe none)
// until then. Failed trials are never promoted; a rung with no completed
// trial ends its bracket. Rounds repeat until the sweep's maxTrials.
//
// Pure and replayable: the schedule is laid out from the history alone (the
// k-th trial, in id order, fills the k-th slot), so a tuner restarted from
// its history proposes what the first one would have.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tuner/sampler.h"

namespace gangway::tuner {

struct HyperbandOptions {
  // Name of an int or double parameter with min > 0: its min is the
  // smallest resource a trial gets, its max the largest.
  std::string resource_parameter;
  double reduction_factor = 3;
};

// One bracket of a round: rung sizes and the resource of each rung.
struct HyperbandBracket {
  std::vector<int> sizes;         // Planned trials per rung (before failures).
  std::vector<double> resources;  // Resource per rung, ascending, last = max.
};

// The brackets of one round, s_max first. INVALID_ARGUMENT (naming
// algorithm.settings.*) for a resource parameter that is missing, not
// numeric, or not > 0, or a reduction factor outside [2, 100].
absl::StatusOr<std::vector<HyperbandBracket>> HyperbandSchedule(const SearchSpace& space,
                                                                const HyperbandOptions& options);

absl::StatusOr<std::unique_ptr<Sampler>> MakeHyperbandSampler(const SearchSpace& space,
                                                              const HyperbandOptions& options,
                                                              uint64_t seed);

}  // namespace gangway::tuner
