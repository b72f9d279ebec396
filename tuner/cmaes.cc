#include "tuner/cmaes.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <variant>

#include "Eigen/Core"
#include "Eigen/Eigenvalues"

namespace gangway::tuner {
namespace {

// The cmaes library's guard for non-positive eigenvalues.
constexpr double kEps = 1e-8;

// The width of a parameter's coordinate in Optuna's transformed space (the
// unit coordinate times this is Optuna's, up to a shift).
double TransformedRange(const ParameterSpec& p) {
  auto span = [](double min, double max, double step, bool log) {
    auto t = [log](double x) { return log ? std::log(x) : x; };
    if (step <= 0) return t(max) - t(min);
    // As SearchSpace widens a lattice: half a step beyond its first and
    // last points (not below zero on a log scale).
    const double r = (max - min) / step;
    const double top = min + std::floor(r + 1e-9 * std::max(1.0, r)) * step;
    double lo = min - step / 2;
    if (log && !(lo > 0)) lo = min;
    return t(top + step / 2) - t(lo);
  };
  if (const auto* d = std::get_if<DoubleDomain>(&p.domain)) {
    return span(d->min, d->max, d->step.value_or(0), d->scale == Scale::kLog);
  }
  if (const auto* d = std::get_if<IntDomain>(&p.domain)) {
    return span(static_cast<double>(d->min), static_cast<double>(d->max),
                static_cast<double>(d->step.value_or(1)), d->scale == Scale::kLog);
  }
  if (const auto* d = std::get_if<DiscreteDomain>(&p.domain)) {
    return static_cast<double>(d->values.size());
  }
  return 1.0;
}

// The cmaes library's CMA (0.9): its constants, update and stop tests.
struct Strategy {
  int n = 0;
  int lambda = 0;
  int mu = 0;
  Eigen::VectorXd weights;  // All λ; the worse half negative (active CMA).
  double mu_eff = 0, c_sigma = 0, d_sigma = 0, c_c = 0, c1 = 0, c_mu = 0, chi_n = 0;
  double tolx = 0;
  int funhist_term = 0;
  std::vector<double> funhist;

  Eigen::VectorXd mean;
  double sigma = 0;
  Eigen::MatrixXd c, b;  // C = B diag(d)^2 B^T.
  Eigen::VectorXd d;
  Eigen::VectorXd p_sigma, p_c;
  int generation = 0;

  Strategy(int dims, int population, const Eigen::VectorXd& m, double s) : n(dims) {
    lambda = population > 0 ? population : 4 + static_cast<int>(std::floor(3 * std::log(n)));
    lambda = std::max(lambda, 2);
    mu = lambda / 2;
    Eigen::VectorXd w(lambda);
    for (int i = 0; i < lambda; ++i) w[i] = std::log((lambda + 1) / 2.0) - std::log(i + 1.0);
    const Eigen::VectorXd pos = w.head(mu), neg = w.tail(lambda - mu);
    mu_eff = pos.sum() * pos.sum() / pos.squaredNorm();
    const double mu_eff_minus = neg.sum() * neg.sum() / std::max(neg.squaredNorm(), 1e-300);
    c1 = 2 / ((n + 1.3) * (n + 1.3) + mu_eff);
    c_mu = std::min(1 - c1 - 1e-8, 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) * (n + 2) + mu_eff));
    const double min_alpha = std::min(
        {1 + c1 / c_mu, 1 + 2 * mu_eff_minus / (mu_eff + 2), (1 - c1 - c_mu) / (n * c_mu)});
    double positive_sum = 0, negative_sum = 0;
    for (double x : w) (x > 0 ? positive_sum : negative_sum) += std::abs(x);
    weights.resize(lambda);
    for (int i = 0; i < lambda; ++i) {
      weights[i] = w[i] >= 0 ? w[i] / positive_sum : min_alpha / negative_sum * w[i];
    }
    c_sigma = (mu_eff + 2) / (n + mu_eff + 5);
    d_sigma = 1 + 2 * std::max(0.0, std::sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma;
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n);
    chi_n = std::sqrt(n) * (1 - 1.0 / (4 * n) + 1.0 / (21.0 * n * n));
    tolx = 1e-12 * s;
    funhist_term = 10 + static_cast<int>(std::ceil(30.0 * n / lambda));
    funhist.assign(2 * funhist_term, 0.0);
    mean = m;
    sigma = s;
    c = Eigen::MatrixXd::Identity(n, n);
    p_sigma = p_c = Eigen::VectorXd::Zero(n);
    Decompose();
  }

  void Decompose() {
    c = 0.5 * (c + c.transpose());
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c);
    b = eig.eigenvectors();
    d = eig.eigenvalues().unaryExpr([](double v) { return v < 0 ? kEps : v; }).cwiseSqrt();
    c = b * d.cwiseAbs2().asDiagonal() * b.transpose();
  }

  // One generation's update from λ points (rows of x) and their losses.
  void Tell(const Eigen::MatrixXd& x, const std::vector<double>& loss) {
    ++generation;
    std::vector<int> order(loss.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return loss[a] < loss[b]; });
    const int slot = 2 * (generation % funhist_term);
    funhist[slot] = loss[order.front()];
    funhist[slot + 1] = loss[order.back()];
    Eigen::MatrixXd y(lambda, n);
    for (int i = 0; i < lambda; ++i) y.row(i) = (x.row(order[i]).transpose() - mean) / sigma;
    const Eigen::VectorXd y_w = y.topRows(mu).transpose() * weights.head(mu);
    mean += sigma * y_w;
    const Eigen::MatrixXd c_inv_half = b * d.cwiseInverse().asDiagonal() * b.transpose();
    p_sigma =
        (1 - c_sigma) * p_sigma + std::sqrt(c_sigma * (2 - c_sigma) * mu_eff) * c_inv_half * y_w;
    const double norm_ps = p_sigma.norm();
    sigma = std::min(sigma * std::exp((c_sigma / d_sigma) * (norm_ps / chi_n - 1)), 1e32);
    const bool h_sigma = norm_ps / std::sqrt(1 - std::pow(1 - c_sigma, 2.0 * (generation + 1))) <
                         (1.4 + 2.0 / (n + 1)) * chi_n;
    p_c = (1 - c_c) * p_c + (h_sigma ? std::sqrt(c_c * (2 - c_c) * mu_eff) : 0.0) * y_w;
    Eigen::MatrixXd rank_mu = Eigen::MatrixXd::Zero(n, n);
    for (int i = 0; i < lambda; ++i) {
      // Negative weights act on directions scaled to length sqrt(d) in the
      // metric of C, so a far-off bad point cannot shrink C without bound.
      const double w =
          weights[i] >= 0
              ? weights[i]
              : weights[i] * n / ((c_inv_half * y.row(i).transpose()).squaredNorm() + kEps);
      rank_mu += w * y.row(i).transpose() * y.row(i);
    }
    const double delta_h = h_sigma ? 0.0 : c_c * (2 - c_c);
    c = (1 + c1 * delta_h - c1 - c_mu * weights.sum()) * c + c1 * p_c * p_c.transpose() +
        c_mu * rank_mu;
    Decompose();
  }

  bool ShouldStop() const {
    const Eigen::VectorXd dc = c.diagonal();
    if (generation > funhist_term) {
      const auto [lo, hi] = std::minmax_element(funhist.begin(), funhist.end());
      if (*hi - *lo < 1e-12) return true;
    }
    if ((sigma * dc.array() < tolx).all() && (sigma * p_c.array() < tolx).all()) return true;
    if (sigma * d.maxCoeff() > 1e4) return true;
    for (int i = 0; i < n; ++i) {
      if (mean[i] == mean[i] + 0.2 * sigma * std::sqrt(dc[i])) return true;
    }
    const int axis = generation % n;
    bool no_effect = true;
    for (int i = 0; i < n; ++i) {
      no_effect = no_effect && mean[i] == mean[i] + 0.1 * sigma * d[axis] * b(i, axis);
    }
    if (no_effect) return true;
    return d.maxCoeff() / d.minCoeff() > 1e14 || !std::isfinite(sigma);
  }
};

class CmaEsSampler final : public Sampler {
 public:
  CmaEsSampler(const SearchSpace& space, const CmaEsOptions& options, uint64_t seed)
      : options_(options), seed_(seed) {
    for (int k = 0; k < space.size(); ++k) {
      if (!space.IsCategorical(k)) {
        numeric_.push_back(k);
        range_.push_back(TransformedRange(space.parameters()[k]));
      }
    }
    startup_ = std::max(options_.startup_trials, 0);
  }

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    const SearchSpace& space = *input.space;
    const int dims = static_cast<int>(numeric_.size());
    std::vector<Assignment> out;
    if (dims < 2 || static_cast<int>(input.completed.size()) < startup_) {
      for (int j = 0; j < n; ++j) out.push_back(space.Decode(RandomPoint(space, input, j)));
      return out;
    }
    int restarts = 0;
    const Strategy s = Replay(input.completed, &restarts);
    for (int j = 0; j < n; ++j) {
      UnitPoint u = RandomPoint(space, input, j);
      std::mt19937_64 rng = StreamRng(seed_, 7, input.trial_count + j);
      std::normal_distribution<double> normal;
      auto draw = [&] {
        Eigen::VectorXd z(dims);
        for (int i = 0; i < dims; ++i) z[i] = normal(rng);
        return Eigen::VectorXd(s.mean + s.sigma * (s.b * s.d.cwiseProduct(z)));
      };
      auto inside = [&](const Eigen::VectorXd& x) {
        for (int i = 0; i < dims; ++i) {
          if (!(x[i] >= 0 && x[i] <= range_[i])) return false;
        }
        return true;
      };
      Eigen::VectorXd x;
      bool found = false;
      for (int attempt = 0; attempt < 10 * dims && !found; ++attempt) {
        x = draw();
        found = inside(x);
      }
      if (!found) x = draw();
      for (int i = 0; i < dims; ++i) u[numeric_[i]] = std::clamp(x[i] / range_[i], 0.0, 1.0);
      out.push_back(space.Decode(u));
    }
    return out;
  }

  // The state after the completed trials past the start-up ones, λ at a
  // time in their order.
  Strategy Replay(const std::vector<Observation>& completed, int* restarts) const {
    const int dims = static_cast<int>(numeric_.size());
    const Eigen::Map<const Eigen::VectorXd> r(range_.data(), dims);
    const double sigma0 = options_.sigma0 * r.minCoeff();
    Strategy s(dims, options_.population, r / 2, sigma0);
    const int nc = static_cast<int>(completed.size());
    for (int start = std::min(startup_, nc); start + s.lambda <= nc;) {
      Eigen::MatrixXd x(s.lambda, dims);
      std::vector<double> loss(s.lambda);
      for (int i = 0; i < s.lambda; ++i) {
        const Observation& o = completed[start + i];
        for (int k = 0; k < dims; ++k) x(i, k) = o.u[numeric_[k]] * range_[k];
        loss[i] = o.loss;
      }
      start += s.lambda;
      s.Tell(x, loss);
      if (!options_.restarts || !s.ShouldStop()) continue;
      // IPOP: twice the population from a uniform random mean.
      ++*restarts;
      std::mt19937_64 rng = StreamRng(seed_, 9, *restarts);
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      Eigen::VectorXd m(dims);
      for (int k = 0; k < dims; ++k) m[k] = uniform(rng) * range_[k];
      s = Strategy(dims, 2 * s.lambda, m, sigma0);
    }
    return s;
  }

  int dims() const { return static_cast<int>(numeric_.size()); }

 private:
  // Categoricals (and every coordinate before CMA-ES places the numeric
  // ones) from their own stream.
  UnitPoint RandomPoint(const SearchSpace& space, const SamplerInput& input, int j) const {
    std::mt19937_64 rng = StreamRng(seed_, 8, input.trial_count + j);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    UnitPoint u(space.size());
    for (double& x : u) x = uniform(rng);
    return u;
  }

  CmaEsOptions options_;
  uint64_t seed_;
  int startup_ = 1;
  std::vector<int> numeric_;
  std::vector<double> range_;  // Per numeric parameter, in Optuna's coordinates.
};

}  // namespace

std::unique_ptr<Sampler> MakeCmaEsSampler(const SearchSpace& space, const CmaEsOptions& options,
                                          uint64_t seed) {
  return std::make_unique<CmaEsSampler>(space, options, seed);
}

CmaEsState ReplayCmaEs(const SearchSpace& space, const CmaEsOptions& options, uint64_t seed,
                       const std::vector<Observation>& completed) {
  const CmaEsSampler sampler(space, options, seed);
  CmaEsState state;
  if (sampler.dims() < 2) return state;
  const Strategy s = sampler.Replay(completed, &state.restarts);
  state.mean.assign(s.mean.data(), s.mean.data() + s.n);
  state.sigma = s.sigma;
  for (int i = 0; i < s.n; ++i) {
    for (int j = 0; j < s.n; ++j) state.cov.push_back(s.c(i, j));
  }
  state.population = s.lambda;
  state.generation = s.generation;
  return state;
}

}  // namespace gangway::tuner
