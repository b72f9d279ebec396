// CMA-ES (Hansen's covariance matrix adaptation evolution strategy) with
// IPOP restarts, as Optuna's CmaEsSampler runs it for Katib's "cmaes".
//
// Pure and replayable: the sampler keeps no state between asks. Each
// proposal replays the completed trials in their order, λ at a time, as
// generations (the first λ results update the initial distribution, the
// next λ the updated one, ...), so a tuner restarted from its history
// proposes exactly what the first one would have. With one trial at a time
// this is textbook CMA-ES; with parallel trials a result counts in the
// generation it completes in, which is how Optuna's sampler groups them too.
//
// In the unit cube: start at the centre with sigma 1/6 (Optuna's x0 and
// sigma0 = range / 6); a draw outside [0, 1] is redrawn (up to 100 times,
// then clipped), as the cmaes library does. A restart (IPOP: the population
// doubles, the mean is a uniform random point) follows when the step size
// collapses below 1e-8 of the box, a generation's losses are flat, or the
// covariance's condition number passes 1e14.
//
// Mixed spaces as Optuna does: CMA-ES works on the numeric coordinates
// (ints and lists as their unit coordinate, snapped when decoded);
// categoricals are sampled uniformly at random, independently of the rest
// (Optuna's independent-sampler fallback).
#pragma once

#include <cstdint>
#include <memory>

#include "tuner/sampler.h"

namespace gangway::tuner {

struct CmaEsOptions {
  // 0: 4 + floor(3 ln d).
  int population = 0;
  double sigma0 = 1.0 / 6.0;
  // IPOP restarts; false keeps one run (Optuna's default is none; Katib's
  // goptuna-based cmaes offers IPOP).
  bool restarts = true;
};

std::unique_ptr<Sampler> MakeCmaEsSampler(const SearchSpace& space, const CmaEsOptions& options,
                                          uint64_t seed);

}  // namespace gangway::tuner
