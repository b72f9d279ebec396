// CMA-ES (Hansen's covariance matrix adaptation evolution strategy) with
// IPOP restarts, as Optuna 3.1's CmaEsSampler runs it (with the cmaes 0.9
// library's CMA class) for Katib's "cmaes".
//
// Pure and replayable: the sampler keeps no state between asks. Each
// proposal replays the completed trials in their order, λ at a time, as
// generations (the first λ results update the initial distribution, the
// next λ the updated one, ...), so a tuner restarted from its history
// proposes exactly what the first one would have. With one trial at a time
// this is Optuna's sampler; with parallel trials a result counts in the
// generation it completes in, which is how Optuna's sampler groups them too.
//
// Optuna's settings and the cmaes library's update, followed here:
//  - Coordinates are Optuna's transformed space: log parameters in log
//    space, ints and stepped doubles widened by half a step at both ends
//    (a sample is rounded to its lattice point, and the rounded value is
//    what the strategy is told). The mean starts at the centre of the box,
//    the step size at sigma0 = min over parameters of (range / 6), so a
//    parameter with a wider range starts relatively narrower.
//  - The first `startup_trials` proposals are uniform random and their
//    results are not part of any generation (Optuna's n_startup_trials = 1,
//    and its first trial has no relative search space yet).
//  - Population 4 + floor(3 ln d); active CMA (the worse half of a
//    generation gets negative recombination weights); the library's
//    learning rates, step-size path and stall test.
//  - A draw outside the box is redrawn up to 10 d times, then one more
//    draw is clipped.
//  - Restarts (IPOP, Optuna's restart_strategy="ipop" with inc_popsize 2:
//    twice the population from a uniform random mean) when the library's
//    should_stop() holds: best and worst losses flat (1e-12) over the last
//    10 + ceil(30 d / λ) generations, step size below 1e-12 of sigma0,
//    above 1e4, no effect on the mean in a coordinate or along an axis, or
//    the covariance's condition number above 1e14.
//  - Categoricals are sampled uniformly at random, independently of the
//    rest (Optuna's independent-sampler fallback); so is everything when
//    fewer than two numeric parameters remain (the library needs d >= 2).
// Not as Optuna: a list of numbers (Optuna has no such type and would make
// it categorical) is an ordinal coordinate here, ranging over its count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tuner/sampler.h"

namespace gangway::tuner {

struct CmaEsOptions {
  // 0: 4 + floor(3 ln d).
  int population = 0;
  // Initial step size as a share of the smallest parameter range (Optuna's
  // sigma0 = min(range) / 6).
  double sigma0 = 1.0 / 6.0;
  // IPOP restarts; false keeps one run (Optuna's default; the stop tests
  // need a collapsed step size or many flat generations, so the two differ
  // only on long sweeps).
  bool restarts = true;
  // Uniform random proposals before the strategy starts (Optuna: 1).
  int startup_trials = 1;
};

std::unique_ptr<Sampler> MakeCmaEsSampler(const SearchSpace& space, const CmaEsOptions& options,
                                          uint64_t seed);

// The strategy after replaying `completed` (for tests): in Optuna's
// transformed coordinates, each shifted so that the box starts at 0.
struct CmaEsState {
  std::vector<double> mean;
  double sigma = 0;
  std::vector<double> cov;  // Row-major d x d.
  int population = 0;
  int generation = 0;
  int restarts = 0;
};
CmaEsState ReplayCmaEs(const SearchSpace& space, const CmaEsOptions& options, uint64_t seed,
                       const std::vector<Observation>& completed);

}  // namespace gangway::tuner
