// The Parzen estimator behind the TPE sampler (tuner/tpe.h), following
// Optuna 3.1's _ParzenEstimator (optuna/samplers/_tpe/parzen_estimator.py)
// with its TPESampler defaults: consider_prior, prior_weight 1,
// consider_magic_clip, consider_endpoints false, default_weights.
//
// It works in SearchSpace's unit cube, which is Optuna's transformed space
// up to scale: log parameters are uniform in log space, and lattice
// parameters are widened by half a step at both ends, as Optuna's
// _calculate_parzen_bounds does. Per parameter:
//  - continuous double, or a log-scale lattice (Optuna: q = None): a normal
//    truncated to [0, 1]; a log-scale lattice's samples are moved to their
//    lattice point before scoring, as Optuna rounds them;
//  - linear lattice (int, stepped double, list of numbers): the same normal,
//    but a point's mass is that of its lattice cell (Optuna's discretized
//    kernel, q = step), and samples are snapped to the cell's centre;
//  - categorical: per component, prior_weight / (n + 1) on every choice plus
//    1 on the observed one, normalised; the prior component is uniform.
// Component n (the last) is the prior: mean 0.5, sd 1 (the whole range).
//
// Optuna before 3.5 (optuna#5109, fixed by #5110) left the 1 / sigma out of
// the continuous kernel's density, so each continuous component counts in
// l(x) and g(x) in proportion to its bandwidth: wide kernels (the prior, the
// isolated observations) pull harder. `optuna31_density` keeps that, since
// it is what Optuna 3.1 (and Katib on it) runs; false gives the normalised
// density. Lattice and categorical kernels are proper masses either way.
#pragma once

#include <random>
#include <vector>

#include "tuner/sampler.h"
#include "tuner/search_space.h"

namespace gangway::tuner {

// Optuna's default_weights: equal up to 25 observations, then the older
// ones (earlier trials) ramp down linearly from 1 / n, so the estimator
// follows a moving optimum.
std::vector<double> TpeObservationWeights(int n);

class ParzenEstimator {
 public:
  // `points` in trial order (the weights favour the later ones).
  ParzenEstimator(const SearchSpace& space, const std::vector<const UnitPoint*>& points,
                  bool multivariate, double prior_weight, bool optuna31_density = true);

  // A whole point from one component, shared by every parameter
  // (multivariate; Optuna draws the component index once per candidate).
  UnitPoint Sample(std::mt19937_64& rng) const;
  // One coordinate from a fresh component (univariate).
  double SampleDim(int k, std::mt19937_64& rng) const;

  double LogPdf(const UnitPoint& u) const;
  double LogPdfDim(int k, double x) const;

  // Normalised component weights, the prior last.
  const std::vector<double>& weights() const { return w_; }
  // Per numeric parameter k, per component (unit scale).
  const std::vector<double>& mus(int k) const { return mu_[k]; }
  const std::vector<double>& sigmas(int k) const { return sigma_[k]; }
  // Per categorical parameter k: [component][choice].
  const std::vector<std::vector<double>>& categorical(int k) const { return cat_[k]; }

 private:
  int Component(std::mt19937_64& rng) const;
  double SampleDim(int k, int c, std::mt19937_64& rng) const;
  double LogKernel(int k, int c, double x) const;
  // The lattice cell of x for a linear lattice parameter.
  int Cell(int k, double x) const;
  // x moved to the unit coordinate of its value (log-scale lattices).
  double SnapLog(int k, double x) const;

  const SearchSpace& space_;
  int p_;
  int nc_;
  bool optuna31_density_;
  // Lattice points of a linear lattice parameter, 0 otherwise (continuous
  // kernel), and for a categorical its number of choices.
  std::vector<int> cells_;
  std::vector<bool> log_lattice_;
  std::vector<double> w_;
  std::vector<std::vector<double>> mu_, sigma_;        // [param][component]
  std::vector<std::vector<std::vector<double>>> cat_;  // [param][component][choice]
};

}  // namespace gangway::tuner
