#include "tuner/tpe_parzen.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <variant>

namespace gangway::tuner {
namespace {

constexpr double kLogSqrt2Pi = 0.9189385332046727;

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Mass of the standard normal on [a, b], computed in the tail that keeps
// its precision (Optuna's _log_gauss_mass does the same with log_ndtr).
double GaussMass(double a, double b) {
  if (a > 0) return NormalCdf(-a) - NormalCdf(-b);
  return NormalCdf(b) - NormalCdf(a);
}

double LogSumExp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

bool IsLinearLattice(const ParameterSpec& p) {
  if (std::holds_alternative<DiscreteDomain>(p.domain)) return true;
  if (const auto* d = std::get_if<IntDomain>(&p.domain)) return d->scale == Scale::kLinear;
  if (const auto* d = std::get_if<DoubleDomain>(&p.domain)) {
    return d->scale == Scale::kLinear && d->step.has_value();
  }
  return false;
}

}  // namespace

std::vector<double> TpeObservationWeights(int n) {
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    const int ramp = n - 25;
    for (int i = 0; i < ramp; ++i) {
      w[i] = ramp == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (ramp - 1);
    }
  }
  return w;
}

ParzenEstimator::ParzenEstimator(const SearchSpace& space,
                                 const std::vector<const UnitPoint*>& points, bool multivariate,
                                 double prior_weight, bool optuna31_density)
    : space_(space),
      p_(space.size()),
      nc_(static_cast<int>(points.size()) + 1),
      optuna31_density_(optuna31_density) {
  const int n = static_cast<int>(points.size());
  w_ = TpeObservationWeights(n);
  w_.push_back(prior_weight);
  const double total = std::accumulate(w_.begin(), w_.end(), 0.0);
  for (double& x : w_) x /= total;
  cells_.assign(p_, 0);
  log_lattice_.assign(p_, false);
  mu_.assign(p_, std::vector<double>(nc_, 0.5));
  sigma_.assign(p_, std::vector<double>(nc_, 1.0));
  cat_.assign(p_, {});
  // Magic clip: no kernel narrower than 1 / min(100, components + 1) of the
  // range; the components include the prior.
  const double min_sigma = 1.0 / std::min(100.0, 1.0 + nc_);
  // Scott's rule as in BOHB, on the observations alone.
  const double scott = 0.2 * std::pow(std::max(n, 1), -1.0 / (p_ + 4));
  for (int k = 0; k < p_; ++k) {
    const uint64_t cardinality = space.Cardinality(k);
    if (space.IsCategorical(k)) {
      const int choices = static_cast<int>(cardinality);
      cells_[k] = choices;
      cat_[k].assign(nc_, std::vector<double>(choices, 1.0 / choices));
      const double floor = prior_weight / (n + 1);
      const double norm = choices * floor + 1;
      for (int c = 0; c < n; ++c) {
        std::vector<double>& d = cat_[k][c];
        std::fill(d.begin(), d.end(), floor / norm);
        d[Cell(k, (*points[c])[k])] += 1 / norm;
      }
      continue;
    }
    // A lattice with more cells than an int holds is a continuum here.
    if (IsLinearLattice(space.parameters()[k]) && cardinality < (1u << 30)) {
      cells_[k] = static_cast<int>(cardinality);
    } else if (cardinality > 0 && !IsLinearLattice(space.parameters()[k])) {
      log_lattice_[k] = true;
    }
    for (int c = 0; c < n; ++c) mu_[k][c] = (*points[c])[k];
    if (multivariate) {
      for (int c = 0; c < n; ++c) sigma_[k][c] = std::clamp(scott, min_sigma, 1.0);
      continue;
    }
    // Univariate: the larger gap to a neighbour among the sorted means
    // (prior included), the first and last using their inner gap only
    // (consider_endpoints = false).
    std::vector<int> order(nc_);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return mu_[k][a] < mu_[k][b]; });
    for (int i = 0; i < nc_; ++i) {
      const double left = i > 0 ? mu_[k][order[i]] - mu_[k][order[i - 1]] : -1;
      const double right = i + 1 < nc_ ? mu_[k][order[i + 1]] - mu_[k][order[i]] : -1;
      double s = std::max(left, right);
      if (s < 0) s = 0.5;  // Only the prior: overwritten below.
      sigma_[k][order[i]] = std::clamp(s, min_sigma, 1.0);
    }
    sigma_[k][n] = 1.0;  // The prior keeps its width.
  }
}

UnitPoint ParzenEstimator::Sample(std::mt19937_64& rng) const {
  const int c = Component(rng);
  UnitPoint u(p_);
  for (int k = 0; k < p_; ++k) u[k] = SampleDim(k, c, rng);
  return u;
}

double ParzenEstimator::SampleDim(int k, std::mt19937_64& rng) const {
  return SampleDim(k, Component(rng), rng);
}

double ParzenEstimator::LogPdf(const UnitPoint& u) const {
  std::vector<double> terms(nc_);
  for (int c = 0; c < nc_; ++c) {
    double s = std::log(w_[c]);
    for (int k = 0; k < p_; ++k) s += LogKernel(k, c, u[k]);
    terms[c] = s;
  }
  return LogSumExp(terms);
}

double ParzenEstimator::LogPdfDim(int k, double x) const {
  std::vector<double> terms(nc_);
  for (int c = 0; c < nc_; ++c) terms[c] = std::log(w_[c]) + LogKernel(k, c, x);
  return LogSumExp(terms);
}

int ParzenEstimator::Cell(int k, double x) const {
  return std::clamp(static_cast<int>(std::floor(x * cells_[k])), 0, cells_[k] - 1);
}

int ParzenEstimator::Component(std::mt19937_64& rng) const {
  std::discrete_distribution<int> pick(w_.begin(), w_.end());
  return pick(rng);
}

double ParzenEstimator::SampleDim(int k, int c, std::mt19937_64& rng) const {
  if (space_.IsCategorical(k)) {
    const std::vector<double>& d = cat_[k][c];
    std::discrete_distribution<int> pick(d.begin(), d.end());
    return (pick(rng) + 0.5) / static_cast<double>(d.size());
  }
  // Inverse CDF of the truncated normal: exact, no rejection loop.
  const double mu = mu_[k][c], s = sigma_[k][c];
  const double lo = NormalCdf(-mu / s), hi = NormalCdf((1 - mu) / s);
  std::uniform_real_distribution<double> uniform(lo, hi);
  const double p = std::clamp(uniform(rng), 1e-12, 1 - 1e-12);
  // Bisection on the CDF: 60 steps reach double precision in [0, 1].
  double a = 0, b = 1;
  for (int i = 0; i < 60; ++i) {
    const double m = 0.5 * (a + b);
    (NormalCdf((m - mu) / s) < p ? a : b) = m;
  }
  const double x = 0.5 * (a + b);
  // A lattice sample is its point (Optuna rounds before scoring).
  if (cells_[k] > 0) return (Cell(k, x) + 0.5) / cells_[k];
  if (log_lattice_[k]) return SnapLog(k, x);
  return x;
}

double ParzenEstimator::SnapLog(int k, double x) const {
  // Decode works on whole points; the other coordinates do not matter.
  UnitPoint u(p_, 0.5);
  u[k] = x;
  return space_.Encode(space_.Decode(u))[k];
}

double ParzenEstimator::LogKernel(int k, int c, double x) const {
  if (space_.IsCategorical(k)) return std::log(cat_[k][c][Cell(k, x)]);
  const double mu = mu_[k][c], s = sigma_[k][c];
  const double log_accept = std::log(std::max(GaussMass(-mu / s, (1 - mu) / s), 1e-300));
  if (cells_[k] > 0) {
    const int i = Cell(k, x);
    const double a = (static_cast<double>(i) / cells_[k] - mu) / s;
    const double b = (static_cast<double>(i + 1) / cells_[k] - mu) / s;
    const double mass = GaussMass(a, b);
    if (mass > 1e-280) return std::log(mass) - log_accept;
    // Far in a tail the mass underflows: density at the centre times width.
    const double z = 0.5 * (a + b);
    return -0.5 * z * z - kLogSqrt2Pi + std::log(b - a) - log_accept;
  }
  const double z = (x - mu) / s;
  const double log_density = -0.5 * z * z - kLogSqrt2Pi - log_accept;
  return optuna31_density_ ? log_density : log_density - std::log(s);
}

}  // namespace gangway::tuner
