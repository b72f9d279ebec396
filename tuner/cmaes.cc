#include "tuner/cmaes.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "Eigen/Core"
#include "Eigen/Eigenvalues"

namespace gangway::tuner {
namespace {

// The strategy's state and its constants for one run (between restarts).
struct Strategy {
  int n = 0;
  int lambda = 0;
  int mu = 0;
  Eigen::VectorXd weights;
  double mu_eff = 0, c_sigma = 0, d_sigma = 0, c_c = 0, c1 = 0, c_mu = 0, chi_n = 0;

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
    weights.resize(mu);
    for (int i = 0; i < mu; ++i) weights[i] = std::log((lambda + 1) / 2.0) - std::log(i + 1.0);
    weights /= weights.sum();
    mu_eff = 1.0 / weights.squaredNorm();
    c_sigma = (mu_eff + 2) / (n + mu_eff + 5);
    d_sigma = 1 + 2 * std::max(0.0, std::sqrt((mu_eff - 1) / (n + 1)) - 1) + c_sigma;
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n);
    c1 = 2 / ((n + 1.3) * (n + 1.3) + mu_eff);
    c_mu = std::min(1 - c1, 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) * (n + 2) + mu_eff));
    chi_n = std::sqrt(n) * (1 - 1.0 / (4 * n) + 1.0 / (21.0 * n * n));
    mean = m;
    sigma = s;
    c = b = Eigen::MatrixXd::Identity(n, n);
    d = Eigen::VectorXd::Ones(n);
    p_sigma = p_c = Eigen::VectorXd::Zero(n);
  }

  // One generation's update from λ points (rows of x) and their losses.
  // Returns false when the run should restart.
  bool Update(const Eigen::MatrixXd& x, const std::vector<double>& loss) {
    std::vector<int> order(loss.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return loss[a] < loss[b]; });
    Eigen::MatrixXd y(mu, n);
    for (int i = 0; i < mu; ++i) y.row(i) = (x.row(order[i]).transpose() - mean) / sigma;
    const Eigen::VectorXd y_w = y.transpose() * weights;
    mean += sigma * y_w;
    // C^-1/2 y_w = B diag(1/d) B^T y_w.
    const Eigen::VectorXd c_inv_half_y = b * (b.transpose() * y_w).cwiseQuotient(d);
    p_sigma = (1 - c_sigma) * p_sigma + std::sqrt(c_sigma * (2 - c_sigma) * mu_eff) * c_inv_half_y;
    ++generation;
    const double norm_ps = p_sigma.norm();
    const bool h_sigma = norm_ps / std::sqrt(1 - std::pow(1 - c_sigma, 2.0 * generation)) <
                         (1.4 + 2.0 / (n + 1)) * chi_n;
    p_c = (1 - c_c) * p_c + (h_sigma ? std::sqrt(c_c * (2 - c_c) * mu_eff) : 0.0) * y_w;
    Eigen::MatrixXd rank_mu = Eigen::MatrixXd::Zero(n, n);
    for (int i = 0; i < mu; ++i) rank_mu += weights[i] * y.row(i).transpose() * y.row(i);
    c = (1 - c1 - c_mu + (h_sigma ? 0.0 : c1 * c_c * (2 - c_c))) * c + c1 * p_c * p_c.transpose() +
        c_mu * rank_mu;
    c = 0.5 * (c + c.transpose());
    sigma *= std::exp((c_sigma / d_sigma) * (norm_ps / chi_n - 1));
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c);
    if (eig.info() != Eigen::Success) return false;
    b = eig.eigenvectors();
    d = eig.eigenvalues().cwiseMax(1e-300).cwiseSqrt();
    const double lo = loss[order.front()], hi = loss[order.back()];
    const bool flat = hi - lo <= 1e-12 * std::max(1.0, std::abs(lo));
    const bool tiny = sigma * d.maxCoeff() < 1e-8;
    const bool ill = d.maxCoeff() > 1e7 * d.minCoeff();  // cond(C) > 1e14
    return !(flat || tiny || ill || !std::isfinite(sigma));
  }
};

class CmaEsSampler final : public Sampler {
 public:
  CmaEsSampler(const SearchSpace& space, const CmaEsOptions& options, uint64_t seed)
      : options_(options), seed_(seed) {
    for (int k = 0; k < space.size(); ++k) {
      if (!space.IsCategorical(k)) numeric_.push_back(k);
    }
  }

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    const SearchSpace& space = *input.space;
    const int dims = static_cast<int>(numeric_.size());
    std::vector<Assignment> out;
    if (dims == 0) {
      for (int j = 0; j < n; ++j) out.push_back(space.Decode(RandomPoint(space, input, j)));
      return out;
    }
    const Strategy s = Replay(input, dims);
    for (int j = 0; j < n; ++j) {
      UnitPoint u = RandomPoint(space, input, j);
      std::mt19937_64 rng = StreamRng(seed_, 7, input.trial_count + j);
      std::normal_distribution<double> normal;
      Eigen::VectorXd x(dims);
      for (int attempt = 0; attempt < 100; ++attempt) {
        Eigen::VectorXd z(dims);
        for (int i = 0; i < dims; ++i) z[i] = normal(rng);
        x = s.mean + s.sigma * (s.b * s.d.cwiseProduct(z));
        if ((x.array() >= 0).all() && (x.array() <= 1).all()) break;
      }
      for (int i = 0; i < dims; ++i) u[numeric_[i]] = std::clamp(x[i], 0.0, 1.0);
      out.push_back(space.Decode(u));
    }
    return out;
  }

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

  // The state after the completed trials, λ at a time in their order.
  Strategy Replay(const SamplerInput& input, int dims) const {
    int restarts = 0;
    Strategy s(dims, options_.population, Eigen::VectorXd::Constant(dims, 0.5), options_.sigma0);
    const int nc = static_cast<int>(input.completed.size());
    for (int start = 0; start + s.lambda <= nc;) {
      Eigen::MatrixXd x(s.lambda, dims);
      std::vector<double> loss(s.lambda);
      for (int i = 0; i < s.lambda; ++i) {
        const Observation& o = input.completed[start + i];
        for (int k = 0; k < dims; ++k) x(i, k) = o.u[numeric_[k]];
        loss[i] = o.loss;
      }
      start += s.lambda;
      if (s.Update(x, loss) || !options_.restarts) continue;
      // IPOP: twice the population from a random mean.
      ++restarts;
      std::mt19937_64 rng = StreamRng(seed_, 9, restarts);
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      Eigen::VectorXd m(dims);
      for (int k = 0; k < dims; ++k) m[k] = uniform(rng);
      s = Strategy(dims, 2 * s.lambda, m, options_.sigma0);
    }
    return s;
  }

  CmaEsOptions options_;
  uint64_t seed_;
  std::vector<int> numeric_;
};

}  // namespace

std::unique_ptr<Sampler> MakeCmaEsSampler(const SearchSpace& space, const CmaEsOptions& options,
                                          uint64_t seed) {
  return std::make_unique<CmaEsSampler>(space, options, seed);
}

}  // namespace gangway::tuner
