#include "tuner/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace gangway::tuner {
namespace {

constexpr double kLogSqrt2Pi = 0.9189385332046727;

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double LogSumExp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// Optuna's default_weights: equal up to 25 observations, then the older
// ones (earlier trials) ramp down linearly, so the estimator follows a
// moving optimum.
std::vector<double> Weights(int n) {
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    const int ramp = n - 25;
    for (int i = 0; i < ramp; ++i) {
      w[i] = ramp == 1 ? 1.0 / n : 1.0 / n + (1.0 - 1.0 / n) * i / (ramp - 1);
    }
  }
  return w;
}

// One Parzen estimator over the unit cube: component c has weight w[c]; per
// numeric parameter a normal (mu, sigma) truncated to [0, 1], per
// categorical one a distribution over its choices. The last component is
// the prior.
class Parzen {
 public:
  Parzen(const SearchSpace& space, const std::vector<const UnitPoint*>& points, bool multivariate,
         double prior_weight)
      : space_(space), p_(space.size()), nc_(static_cast<int>(points.size()) + 1) {
    const int n = static_cast<int>(points.size());
    const std::vector<double> obs_weights = Weights(n);
    w_ = obs_weights;
    w_.push_back(prior_weight);
    const double total = std::accumulate(w_.begin(), w_.end(), 0.0);
    for (double& x : w_) x /= total;
    mu_.assign(p_, std::vector<double>(nc_, 0.5));
    sigma_.assign(p_, std::vector<double>(nc_, 1.0));
    cat_.assign(p_, {});
    // Magic clip: no kernel narrower than 1 / min(100, n + 1) of the range.
    const double min_sigma = 1.0 / std::min(100.0, 1.0 + nc_);
    const double scott = 0.2 * std::pow(std::max(n, 1), -1.0 / (p_ + 4));
    for (int k = 0; k < p_; ++k) {
      if (space.IsCategorical(k)) {
        const int choices = static_cast<int>(space.Cardinality(k));
        // Per component: the prior's mass spread over the choices plus the
        // observed choice (multivariate), or one pooled distribution
        // (univariate) that every component shares.
        std::vector<double> pooled(choices, prior_weight / choices);
        cat_[k].assign(nc_, std::vector<double>(choices, 1.0 / choices));
        for (int c = 0; c < n; ++c) {
          const int v = Choice(k, (*points[c])[k]);
          pooled[v] += obs_weights[c];
          std::vector<double>& d = cat_[k][c];
          for (int j = 0; j < choices; ++j) d[j] = prior_weight / choices / (prior_weight + 1);
          d[v] += 1.0 / (prior_weight + 1);
        }
        if (!multivariate) {
          const double s = std::accumulate(pooled.begin(), pooled.end(), 0.0);
          for (double& x : pooled) x /= s;
          for (auto& d : cat_[k]) d = pooled;
        }
        continue;
      }
      for (int c = 0; c < n; ++c) mu_[k][c] = (*points[c])[k];
      if (multivariate) {
        for (int c = 0; c < n; ++c) sigma_[k][c] = std::clamp(scott, min_sigma, 1.0);
        continue;
      }
      // Univariate: the larger gap to a neighbour among the sorted means
      // (prior included), the end points using their inner gap only.
      std::vector<int> order(nc_);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int a, int b) { return mu_[k][a] < mu_[k][b]; });
      for (int i = 0; i < nc_; ++i) {
        const double left = i > 0 ? mu_[k][order[i]] - mu_[k][order[i - 1]] : -1;
        const double right = i + 1 < nc_ ? mu_[k][order[i + 1]] - mu_[k][order[i]] : -1;
        double s = std::max(left, right);
        if (s < 0) s = 1.0;
        sigma_[k][order[i]] = std::clamp(s, min_sigma, 1.0);
      }
      sigma_[k][n] = 1.0;  // The prior keeps its width.
    }
  }

  // A whole point (multivariate) from one component per draw.
  UnitPoint Sample(std::mt19937_64& rng) const {
    const int c = Component(rng);
    UnitPoint u(p_);
    for (int k = 0; k < p_; ++k) u[k] = SampleDim(k, c, rng);
    return u;
  }
  // One coordinate (univariate) of a fresh component.
  double SampleDim(int k, std::mt19937_64& rng) const { return SampleDim(k, Component(rng), rng); }

  double LogPdf(const UnitPoint& u) const {
    std::vector<double> terms(nc_);
    for (int c = 0; c < nc_; ++c) {
      double s = std::log(w_[c]);
      for (int k = 0; k < p_; ++k) s += LogKernel(k, c, u[k]);
      terms[c] = s;
    }
    return LogSumExp(terms);
  }
  double LogPdfDim(int k, double x) const {
    std::vector<double> terms(nc_);
    for (int c = 0; c < nc_; ++c) terms[c] = std::log(w_[c]) + LogKernel(k, c, x);
    return LogSumExp(terms);
  }

 private:
  int Choice(int k, double u) const {
    const int choices = static_cast<int>(space_.Cardinality(k));
    return std::clamp(static_cast<int>(u * choices), 0, choices - 1);
  }
  int Component(std::mt19937_64& rng) const {
    std::discrete_distribution<int> pick(w_.begin(), w_.end());
    return pick(rng);
  }
  double SampleDim(int k, int c, std::mt19937_64& rng) const {
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
    return 0.5 * (a + b);
  }
  double LogKernel(int k, int c, double x) const {
    if (space_.IsCategorical(k)) return std::log(cat_[k][c][Choice(k, x)]);
    const double mu = mu_[k][c], s = sigma_[k][c];
    const double z = (x - mu) / s;
    const double mass = NormalCdf((1 - mu) / s) - NormalCdf(-mu / s);
    return -0.5 * z * z - kLogSqrt2Pi - std::log(s) - std::log(std::max(mass, 1e-300));
  }

  const SearchSpace& space_;
  int p_;
  int nc_;
  std::vector<double> w_;
  std::vector<std::vector<double>> mu_, sigma_;        // [param][component]
  std::vector<std::vector<std::vector<double>>> cat_;  // [param][component][choice]
};

class TpeSampler final : public Sampler {
 public:
  TpeSampler(const TpeOptions& options, uint64_t seed) : options_(options), seed_(seed) {}

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    const SearchSpace& space = *input.space;
    const int nc = static_cast<int>(input.completed.size());
    std::vector<Assignment> out;
    for (int j = 0; j < n; ++j) {
      const uint64_t index = input.trial_count + j;
      std::mt19937_64 rng = StreamRng(seed_, 6, index);
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      if (nc < std::max(options_.startup_trials, 2)) {
        UnitPoint u(space.size());
        for (double& x : u) x = uniform(rng);
        out.push_back(space.Decode(u));
        continue;
      }
      out.push_back(space.Decode(Suggest(space, input, rng)));
    }
    return out;
  }

 private:
  UnitPoint Suggest(const SearchSpace& space, const SamplerInput& input,
                    std::mt19937_64& rng) const {
    const int nc = static_cast<int>(input.completed.size());
    // The split keeps trial order inside each group (for the weights).
    std::vector<int> order(nc);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return input.completed[a].loss < input.completed[b].loss;
    });
    const int n_below = std::min(static_cast<int>(std::ceil(0.1 * nc)), 25);
    std::vector<bool> below(nc, false);
    for (int i = 0; i < n_below; ++i) below[order[i]] = true;
    std::vector<const UnitPoint*> lo, hi;
    for (int i = 0; i < nc; ++i) (below[i] ? lo : hi).push_back(&input.completed[i].u);
    const Parzen l(space, lo, options_.multivariate, options_.prior_weight);
    const Parzen g(space, hi, options_.multivariate, options_.prior_weight);
    const int m = std::max(options_.ei_candidates, 1);
    if (options_.multivariate) {
      UnitPoint best;
      double best_score = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < m; ++i) {
        UnitPoint u = l.Sample(rng);
        const double score = l.LogPdf(u) - g.LogPdf(u);
        if (best.empty() || score > best_score) {
          best_score = score;
          best = std::move(u);
        }
      }
      return best;
    }
    UnitPoint u(space.size());
    for (int k = 0; k < space.size(); ++k) {
      double best_score = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < m; ++i) {
        const double x = l.SampleDim(k, rng);
        const double score = l.LogPdfDim(k, x) - g.LogPdfDim(k, x);
        if (i == 0 || score > best_score) {
          best_score = score;
          u[k] = x;
        }
      }
    }
    return u;
  }

  TpeOptions options_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<Sampler> MakeTpeSampler(const SearchSpace& /*space*/, const TpeOptions& options,
                                        uint64_t seed) {
  return std::make_unique<TpeSampler>(options, seed);
}

}  // namespace gangway::tuner
