// ParEGO (Knowles 2006): several objectives through the single-objective
// Gaussian-process sampler, by a fresh random scalarization per proposal.
//
// One proposal:
//  1. Normalize each objective's losses to [0, 1] over the completed trials
//     (min and max seen so far; an objective every trial ties on is 0).
//  2. Draw a weight vector uniformly from the simplex, from a stream fixed
//     by (seed, trial position), so a replayed tuner draws the same one.
//  3. Scalarize every completed trial with the augmented Chebyshev function
//     max_i(w_i f_i) + 0.05 sum_i(w_i f_i): the max reaches every point of a
//     non-convex front (a weighted sum only reaches the convex hull), the
//     small sum breaks its ties towards points not weakly dominated.
//  4. Let the bayesian sampler (tuner/bayesian.h) propose from those scalar
//     losses.
// Each weight favours one region of the front; over many asks the weights
// cover it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "tuner/bayesian.h"
#include "tuner/sampler.h"

namespace gangway::tuner {

inline constexpr double kParEgoRho = 0.05;

std::unique_ptr<Sampler> MakeParEgoSampler(const BayesianOptions& options, uint64_t seed);

// Exposed for tests.
// A weight vector of `objectives` entries drawn uniformly from the simplex
// (non-negative, sum 1), the one proposal `index` uses.
std::vector<double> ParEgoWeights(uint64_t seed, uint64_t index, int objectives);
// Each objective (column) of `losses` mapped linearly to [0, 1] over the
// rows; a column whose values are all equal maps to 0.
std::vector<std::vector<double>> NormalizeLosses(const std::vector<std::vector<double>>& losses);
// max_i(w_i f_i) + rho * sum_i(w_i f_i).
double AugmentedChebyshev(std::span<const double> f, std::span<const double> w,
                          double rho = kParEgoRho);

}  // namespace gangway::tuner
