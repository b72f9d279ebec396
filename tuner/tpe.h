// Tree-structured Parzen estimator (Bergstra et al. 2011), as Optuna's
// TPESampler does it (Katib's "tpe" and "multivariate-tpe" run Optuna's
// sampler, so the defaults below are Optuna 3.1's):
//
//  1. The first `startup_trials` proposals are uniform random.
//  2. The completed trials split by loss into the best
//     gamma(n) = min(ceil(0.1 n), 25) ("below") and the rest ("above");
//     each group gets a Parzen estimator l(x) / g(x) over the unit cube:
//     a mixture of truncated normals, one per observation plus a wide prior
//     component (mean 0.5, sd 1), with Optuna's weights (older trials of a
//     group weigh less past 25) and bandwidths (univariate: distance to the
//     neighbours, clipped to [1 / min(100, n + 1), 1]; multivariate:
//     0.2 n^(-1 / (d + 4)), Scott-like, clipped the same way). Categoricals
//     get a categorical kernel with the prior spread over the choices.
//  3. `ei_candidates` draws from l; the one with the largest l / g (the
//     expected-improvement ratio) is proposed. Univariate: per parameter,
//     independently; multivariate: whole points from the joint product
//     kernel, so correlations between parameters are kept.
//
// Ints and lists are sampled as continuous unit coordinates and snapped by
// SearchSpace::Decode, whose unit map gives every lattice point equal mass;
// Optuna discretizes the kernel instead, which differs only in how mass
// near a lattice point's edges is counted. Pending trials are not modelled
// (Optuna's default); a batch differs through its random streams.
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
};

std::unique_ptr<Sampler> MakeTpeSampler(const SearchSpace& space, const TpeOptions& options,
                                        uint64_t seed);

}  // namespace gangway::tuner
