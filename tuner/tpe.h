// Tree-structured Parzen estimator (Bergstra et al. 2011), as Optuna's
// TPESampler does it (Katib's "tpe" and "multivariate-tpe" run Optuna's
// sampler, so the defaults below are Optuna 3.1's):
//
//  1. The first `startup_trials` proposals are uniform random.
//  2. The completed trials split by loss into the best
//     gamma(n) = min(ceil(0.1 n), 25) ("below") and the rest ("above");
//     each group gets a Parzen estimator l(x) / g(x) (tuner/tpe_parzen.h,
//     Optuna's _ParzenEstimator: its weights, prior, bandwidths with magic
//     clip, truncated-normal kernels, discretized kernels on lattices,
//     categorical kernels).
//  3. `ei_candidates` draws from l; the one with the largest l / g (the
//     expected-improvement ratio) is proposed. Univariate: per parameter,
//     independently; multivariate: whole points from the joint product
//     kernel, so correlations between parameters are kept.
//
// Pending trials are not modelled (Optuna's default); a batch differs
// through its random streams.
#pragma once

#include <cstdint>
#include <memory>

#include "tuner/sampler.h"

namespace gangway::tuner {

struct TpeOptions {
  int startup_trials = 10;
  int ei_candidates = 24;
  bool multivariate = false;
  double prior_weight = 1.0;
  // Optuna 3.1's continuous kernel density, without its 1 / bandwidth
  // (tuner/tpe_parzen.h); false: the normalised density of later Optuna.
  bool optuna31_density = true;
};

std::unique_ptr<Sampler> MakeTpeSampler(const SearchSpace& space, const TpeOptions& options,
                                        uint64_t seed);

}  // namespace gangway::tuner
