#include "tuner/gaussian_process.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tuner/lbfgs.h"

namespace gangway::tuner {
namespace {

constexpr double kSqrt5 = 2.23606797749979;
constexpr double kLog2Pi = 1.8378770664093453;
constexpr double kJitter = 1e-10;

// Pairwise squared distances between rows of a and rows of b.
Eigen::MatrixXd SqDist(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  Eigen::MatrixXd d = (-2.0 * a) * b.transpose();
  d.colwise() += a.rowwise().squaredNorm();
  d.rowwise() += b.rowwise().squaredNorm().transpose();
  return d.cwiseMax(0.0);
}

Eigen::MatrixXd Matern52(const Eigen::MatrixXd& sq, double s2) {
  return sq.unaryExpr([s2](double r2) {
    const double r = std::sqrt(r2);
    return s2 * (1 + kSqrt5 * r + (5.0 / 3.0) * r2) * std::exp(-kSqrt5 * r);
  });
}

double LengthscalePriorMean(const GpFitOptions& o, int dims) {
  if (!std::isnan(o.log_lengthscale_prior_mean)) return o.log_lengthscale_prior_mean;
  return std::sqrt(2.0) + 0.5 * std::log(static_cast<double>(std::max(dims, 1)));
}

void Bounds(const GpFitOptions& o, int dims, Eigen::VectorXd* lo, Eigen::VectorXd* hi) {
  lo->resize(dims + 2);
  hi->resize(dims + 2);
  lo->head(dims).setConstant(std::log(o.min_lengthscale));
  hi->head(dims).setConstant(std::log(o.max_lengthscale));
  (*lo)[dims] = std::log(0.05);
  (*hi)[dims] = std::log(20.0);
  (*lo)[dims + 1] = std::log(o.min_noise_variance);
  (*hi)[dims + 1] = std::log(o.max_noise_variance);
}

Eigen::VectorXd Pack(const GpHyperparameters& hp) {
  const int d = static_cast<int>(hp.log_lengthscale.size());
  Eigen::VectorXd t(d + 2);
  t.head(d) = hp.log_lengthscale;
  t[d] = hp.log_signal_variance;
  t[d + 1] = hp.log_noise_variance;
  return t;
}

}  // namespace

double GaussianProcess::NegLogPosterior(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                        const Eigen::VectorXd& theta, const GpFitOptions& options,
                                        Eigen::VectorXd* grad, double* mean_out) {
  const int n = static_cast<int>(x.rows());
  const int dims = static_cast<int>(x.cols());
  const Eigen::ArrayXd inv_ls = (-theta.head(dims).array()).exp();
  const double s2 = std::exp(theta[dims]);
  const double sn2 = std::exp(theta[dims + 1]);

  const Eigen::MatrixXd z = x * inv_ls.matrix().asDiagonal();
  const Eigen::MatrixXd r2 = SqDist(z, z);
  const Eigen::ArrayXXd r = r2.array().sqrt();
  const Eigen::ArrayXXd e = (-kSqrt5 * r).exp();
  const Eigen::MatrixXd kf = (s2 * (1 + kSqrt5 * r + (5.0 / 3.0) * r2.array()) * e).matrix();
  Eigen::MatrixXd k = kf;
  k.diagonal().array() += sn2 + kJitter;
  const Eigen::LLT<Eigen::MatrixXd> llt(k);
  if (llt.info() != Eigen::Success) return std::numeric_limits<double>::infinity();

  double m = 0;
  if (options.fit_mean) {
    const Eigen::VectorXd kinv1 = llt.solve(Eigen::VectorXd::Ones(n));
    m = kinv1.dot(y) / kinv1.sum();
  }
  if (mean_out != nullptr) *mean_out = m;
  const Eigen::VectorXd resid = y.array() - m;
  const Eigen::VectorXd alpha = llt.solve(resid);
  const Eigen::MatrixXd& lmat = llt.matrixLLT();
  double nll = 0.5 * resid.dot(alpha) + lmat.diagonal().array().log().sum() + 0.5 * n * kLog2Pi;

  // Priors (negative log densities up to constants).
  const double mu_l = LengthscalePriorMean(options, dims);
  const double sd_l = options.log_lengthscale_prior_sd;
  const double sd_s = options.log_signal_prior_sd;
  const double mu_n = options.log_noise_prior_mean;
  const double sd_n = options.log_noise_prior_sd;
  nll += 0.5 * ((theta.head(dims).array() - mu_l) / sd_l).square().sum();
  nll += 0.5 * std::pow(theta[dims] / sd_s, 2);
  nll += 0.5 * std::pow((theta[dims + 1] - mu_n) / sd_n, 2);

  if (grad != nullptr) {
    grad->resize(dims + 2);
    // d(-log L)/d theta = -1/2 tr(W dK/d theta), W = alpha alpha^T - K^-1.
    Eigen::MatrixXd w = llt.solve(Eigen::MatrixXd::Identity(n, n));
    w = alpha * alpha.transpose() - w;
    // dK/d log l_d = G o (z_.d - z_.d^T)^2 with G = s2 5/3 (1 + sqrt5 r) e.
    const Eigen::MatrixXd mg = (w.array() * (s2 * (5.0 / 3.0) * (1 + kSqrt5 * r) * e)).matrix();
    const Eigen::VectorXd rowsum = mg.rowwise().sum();
    const Eigen::MatrixXd mz = mg * z;
    for (int d = 0; d < dims; ++d) {
      // sum_jk M_jk (z_jd - z_kd)^2 = 2 sum_j z_jd^2 rowsum_j - 2 z_d^T M z_d.
      const double tr =
          2 * (z.col(d).array().square() * rowsum.array()).sum() - 2 * z.col(d).dot(mz.col(d));
      (*grad)[d] = -0.5 * tr + (theta[d] - mu_l) / (sd_l * sd_l);
    }
    (*grad)[dims] = -0.5 * (w.array() * kf.array()).sum() + theta[dims] / (sd_s * sd_s);
    (*grad)[dims + 1] = -0.5 * sn2 * w.trace() + (theta[dims + 1] - mu_n) / (sd_n * sd_n);
  }
  return nll;
}

GaussianProcess GaussianProcess::Fit(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                     const GpFitOptions& options, std::mt19937_64& rng,
                                     const GpHyperparameters* warm_start) {
  const int dims = static_cast<int>(x.cols());
  Eigen::VectorXd lo, hi;
  Bounds(options, dims, &lo, &hi);
  const double mu_l = LengthscalePriorMean(options, dims);

  std::vector<Eigen::VectorXd> starts;
  if (warm_start != nullptr && warm_start->log_lengthscale.size() == dims) {
    starts.push_back(Pack(*warm_start));
  }
  Eigen::VectorXd mode(dims + 2);
  mode.head(dims).setConstant(mu_l);
  mode[dims] = 0;
  mode[dims + 1] = options.log_noise_prior_mean;
  if (options.start_at_prior_mode || starts.empty()) starts.push_back(mode);
  std::normal_distribution<double> normal;
  for (int i = 0; i < options.random_restarts; ++i) {
    Eigen::VectorXd t = mode;
    for (int d = 0; d < dims; ++d) t[d] += options.log_lengthscale_prior_sd * normal(rng);
    t[dims] += 0.5 * normal(rng);
    starts.push_back(t);
  }

  MinimizeOptions mo;
  mo.max_iterations = options.max_iterations;
  mo.gradient_tolerance = 1e-5;
  mo.function_tolerance = 1e-9;
  Eigen::VectorXd best = mode.cwiseMax(lo).cwiseMin(hi);
  double best_value = std::numeric_limits<double>::infinity();
  for (const Eigen::VectorXd& s : starts) {
    const MinimizeResult r =
        MinimizeBounded([&](const Eigen::VectorXd& t,
                            Eigen::VectorXd* g) { return NegLogPosterior(x, y, t, options, g); },
                        s, lo, hi, mo);
    if (r.value < best_value) {
      best_value = r.value;
      best = r.x;
    }
  }
  GpHyperparameters hp;
  hp.log_lengthscale = best.head(dims);
  hp.log_signal_variance = best[dims];
  hp.log_noise_variance = best[dims + 1];
  NegLogPosterior(x, y, best, options, nullptr, &hp.mean);
  GaussianProcess gp = Condition(x, y, hp);
  gp.neg_log_posterior_ = best_value;
  return gp;
}

GaussianProcess GaussianProcess::Condition(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                           const GpHyperparameters& hyperparameters,
                                           bool profile_mean) {
  GaussianProcess gp;
  gp.hp_ = hyperparameters;
  gp.x_ = x;
  gp.y_ = y;
  gp.Recondition(profile_mean);
  return gp;
}

void GaussianProcess::Recondition(bool profile_mean) {
  inv_ls_ = (-hp_.log_lengthscale.array()).exp().matrix();
  signal_var_ = std::exp(hp_.log_signal_variance);
  noise_var_ = std::exp(hp_.log_noise_variance);
  z_ = x_ * inv_ls_.asDiagonal();
  Eigen::MatrixXd k = Matern52(SqDist(z_, z_), signal_var_);
  // Escalating jitter only guards against near-duplicate inputs; with the
  // noise floor it is not normally needed.
  for (double jitter = kJitter;; jitter *= 100) {
    Eigen::MatrixXd kj = k;
    kj.diagonal().array() += noise_var_ + jitter;
    Eigen::LLT<Eigen::MatrixXd> llt(kj);
    if (llt.info() == Eigen::Success || jitter > 1) {
      lbuf_ = llt.matrixL();
      noise_var_ += jitter;
      break;
    }
  }
  Solve(profile_mean);
}

void GaussianProcess::Solve(bool profile_mean) {
  if (profile_mean) {
    Eigen::VectorXd kinv1 = L().solve(Eigen::VectorXd::Ones(y_.size()));
    kinv1 = L().transpose().solve(kinv1);
    hp_.mean = kinv1.dot(y_) / kinv1.sum();
  }
  const Eigen::VectorXd resid = y_.array() - hp_.mean;
  alpha_ = L().solve(resid);
  alpha_ = L().transpose().solve(alpha_);
}

bool GaussianProcess::Update(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                             bool profile_mean) {
  const int n0 = size();
  const int n = static_cast<int>(x.rows());
  const int k = n - n0;
  if (n0 == 0 || k < 0 || x.cols() != x_.cols() || x.topRows(n0) != x_) {
    x_ = x;
    y_ = y;
    Recondition(profile_mean);
    return false;
  }
  if (k > 0) {
    // Block Cholesky: [L11 0; L21 L22] with L21 = K21 L11^-T and
    // L22 L22^T = K22 - L21 L21^T. noise_var_ already holds any jitter the
    // first factorization needed.
    const Eigen::MatrixXd znew = x.bottomRows(k) * inv_ls_.asDiagonal();
    const Eigen::MatrixXd k12 = Matern52(SqDist(z_, znew), signal_var_);
    Eigen::MatrixXd k22 = Matern52(SqDist(znew, znew), signal_var_);
    k22.diagonal().array() += noise_var_;
    const Eigen::MatrixXd l21t = L().solve(k12);  // n0 x k
    Eigen::LLT<Eigen::MatrixXd> llt(k22 - l21t.transpose() * l21t);
    if (llt.info() != Eigen::Success) {
      x_ = x;
      y_ = y;
      Recondition(profile_mean);
      return false;
    }
    GrowFactor(n);
    lbuf_.block(n0, 0, k, n0) = l21t.transpose();
    lbuf_.block(n0, n0, k, k) = llt.matrixL();
    x_ = x;
    z_.conservativeResize(n, Eigen::NoChange);
    z_.bottomRows(k) = znew;
  }
  y_ = y;
  Solve(profile_mean);
  return true;
}

void GaussianProcess::Predict(const Eigen::MatrixXd& xs, Eigen::VectorXd* mean,
                              Eigen::VectorXd* var) const {
  const Eigen::MatrixXd zs = xs * inv_ls_.asDiagonal();
  const Eigen::MatrixXd ks = Matern52(SqDist(zs, z_), signal_var_);  // m x n
  *mean = (ks * alpha_).array() + hp_.mean;
  if (var != nullptr) {
    const Eigen::MatrixXd v = L().solve(ks.transpose());
    *var = (signal_var_ - v.colwise().squaredNorm().transpose().array()).cwiseMax(1e-12);
  }
}

void GaussianProcess::PredictWithGradient(const Eigen::VectorXd& x, double* mean, double* var,
                                          Eigen::VectorXd* dmean, Eigen::VectorXd* dvar) const {
  const Eigen::RowVectorXd z = (x.array() * inv_ls_.array()).matrix().transpose();
  const Eigen::MatrixXd diff = (-z_).rowwise() + z;  // n x D: z - z_i.
  const Eigen::ArrayXd r2 = diff.rowwise().squaredNorm().array();
  const Eigen::ArrayXd r = r2.sqrt();
  const Eigen::ArrayXd e = (-kSqrt5 * r).exp();
  const Eigen::VectorXd k = (signal_var_ * (1 + kSqrt5 * r + (5.0 / 3.0) * r2) * e).matrix();
  const Eigen::ArrayXd g = signal_var_ * (5.0 / 3.0) * (1 + kSqrt5 * r) * e;
  // dk_i/dx_d = -g_i (z_d - z_id) / l_d.
  Eigen::MatrixXd jac = -(diff.array().colwise() * g).matrix();
  jac = jac * inv_ls_.asDiagonal();
  *mean = hp_.mean + k.dot(alpha_);
  *dmean = jac.transpose() * alpha_;
  Eigen::VectorXd v = L().solve(k);
  *var = std::max(signal_var_ - v.squaredNorm(), 1e-12);
  v = L().transpose().solve(v);  // K^-1 k.
  *dvar = -2.0 * (jac.transpose() * v);
}

void GaussianProcess::AddObservation(const Eigen::VectorXd& x, double y) {
  const int n = size();
  const Eigen::RowVectorXd z = (x.array() * inv_ls_.array()).matrix().transpose();
  const Eigen::ArrayXd r2 = ((-z_).rowwise() + z).rowwise().squaredNorm().array();
  const Eigen::ArrayXd r = r2.sqrt();
  const Eigen::VectorXd k =
      (signal_var_ * (1 + kSqrt5 * r + (5.0 / 3.0) * r2) * (-kSqrt5 * r).exp()).matrix();
  const Eigen::VectorXd lrow = L().solve(k);
  const double diag = std::sqrt(std::max(signal_var_ + noise_var_ - lrow.squaredNorm(), 1e-12));
  GrowFactor(n + 1);
  lbuf_.row(n).head(n) = lrow.transpose();
  lbuf_(n, n) = diag;
  x_.conservativeResize(n + 1, Eigen::NoChange);
  x_.row(n) = x.transpose();
  z_.conservativeResize(n + 1, Eigen::NoChange);
  z_.row(n) = z;
  y_.conservativeResize(n + 1);
  y_[n] = y;
  const Eigen::VectorXd resid = y_.array() - hp_.mean;
  alpha_ = L().solve(resid);
  alpha_ = L().transpose().solve(alpha_);
}

void GaussianProcess::GrowFactor(int n) {
  if (lbuf_.rows() >= n) return;
  const int m = size();
  // A quarter more than needed: a sweep adds results one at a time, and the
  // copy then happens once per m/4 results instead of on every one.
  const int capacity = std::max(n, m + m / 4 + 16);
  Eigen::MatrixXd grown = Eigen::MatrixXd::Zero(capacity, capacity);
  grown.topLeftCorner(m, m) = lbuf_.topLeftCorner(m, m);
  lbuf_.swap(grown);
}

}  // namespace gangway::tuner
