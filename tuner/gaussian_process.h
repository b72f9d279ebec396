// Gaussian-process regression with a Matern-5/2 ARD kernel, for the
// bayesian sampler.
//
// Inputs are feature vectors in (roughly) the unit cube, outputs are
// expected to be standardized by the caller. Hyperparameters (one
// lengthscale per feature, signal variance, noise variance) are fitted by
// maximizing the marginal likelihood plus weak log-normal priors (MAP):
// with 5..50 points pure maximum likelihood often picks degenerate tiny or
// huge lengthscales, and the priors make the fit stable without a
// hand-tuned schedule. The lengthscale prior follows Hvarfner et al. 2024
// ("Vanilla Bayesian optimization performs great in high dimensions"):
// log l ~ N(sqrt(2) + log(D) / 2, sqrt(3)), wide enough that data dominates.
// The constant mean is profiled out in closed form (generalized least
// squares), so it costs no optimizer dimension.
#pragma once

#include <limits>
#include <random>

#include "Eigen/Cholesky"
#include "Eigen/Core"

namespace gangway::tuner {

struct GpHyperparameters {
  Eigen::VectorXd log_lengthscale;
  double log_signal_variance = 0;
  double log_noise_variance = -9.2;  // ~1e-4
  double mean = 0;
};

struct GpFitOptions {
  // L-BFGS runs from the warm start (if any), the prior mode, and this many
  // random draws from the prior; the best posterior wins.
  int random_restarts = 2;
  // Also start from the prior mode. Refits of a large, slowly growing data
  // set turn this and the random restarts off and only refine the warm
  // start, which is where the optimum moved from.
  bool start_at_prior_mode = true;
  int max_iterations = 80;
  double min_noise_variance = 1e-6;
  double max_noise_variance = 0.5;
  double min_lengthscale = 0.01;
  double max_lengthscale = 100;
  // Prior on log noise variance: N(mean, sd^2). The default favours small
  // noise, since most sweep objectives are deterministic or nearly so.
  double log_noise_prior_mean = -9.0;
  double log_noise_prior_sd = 2.0;
  double log_signal_prior_sd = 1.0;
  double log_lengthscale_prior_sd = 1.7320508075688772;
  // NaN: sqrt(2) + log(D) / 2.
  double log_lengthscale_prior_mean = std::numeric_limits<double>::quiet_NaN();
  bool fit_mean = true;
};

class GaussianProcess {
 public:
  // Fits hyperparameters to (x rows, y), then conditions on the data.
  // `warm_start` (e.g. the previous fit) is tried first, which makes refits
  // after one new observation converge in a few iterations.
  static GaussianProcess Fit(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                             const GpFitOptions& options, std::mt19937_64& rng,
                             const GpHyperparameters* warm_start = nullptr);
  // Conditions on data with given hyperparameters. With `profile_mean` the
  // constant mean is re-estimated (GLS) for this data instead of taken from
  // `hyperparameters`, for reusing a fit on data that has since grown.
  static GaussianProcess Condition(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                   const GpHyperparameters& hyperparameters,
                                   bool profile_mean = false);

  // Negative log posterior of packed hyperparameters theta = [log l (D),
  // log signal variance, log noise variance] and its gradient. Public for
  // the gradient test.
  static double NegLogPosterior(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                const Eigen::VectorXd& theta, const GpFitOptions& options,
                                Eigen::VectorXd* grad, double* mean = nullptr);

  // Posterior mean and variance (of the latent function) at rows of xs.
  void Predict(const Eigen::MatrixXd& xs, Eigen::VectorXd* mean, Eigen::VectorXd* var) const;
  // One point, with gradients of mean and variance with respect to x.
  void PredictWithGradient(const Eigen::VectorXd& x, double* mean, double* var,
                           Eigen::VectorXd* dmean, Eigen::VectorXd* dvar) const;

  // Adds one observation without refitting hyperparameters: an O(n^2)
  // Cholesky extension. Used for kriging-believer fantasies of pending
  // trials.
  void AddObservation(const Eigen::VectorXd& x, double y);

  // Re-conditions on (x, y) with the same hyperparameters. When the rows the
  // model holds are the first rows of x (a sweep's history only grows), the
  // Cholesky factor is extended by the new rows only, O(n^2 k) instead of
  // O(n^3); y may change completely (the output warp moves with every
  // result) since only the O(n^2) solves depend on it. Otherwise, or if the
  // extension is not positive definite, it factors from scratch. Returns
  // whether it extended. `profile_mean` as for Condition.
  bool Update(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, bool profile_mean);

  const GpHyperparameters& hyperparameters() const { return hp_; }
  // The minimized negative log posterior of the fit (NaN when built by
  // Condition): lets callers compare models of differently transformed
  // outputs.
  double neg_log_posterior() const { return neg_log_posterior_; }
  int size() const { return static_cast<int>(x_.rows()); }
  double signal_variance() const { return signal_var_; }

 private:
  GaussianProcess() = default;
  void Recondition(bool profile_mean);
  // Mean (if profiled) and alpha from the factor and y_: O(n^2).
  void Solve(bool profile_mean);
  // Const, so that transpose() picks Eigen's read-only overload.
  const Eigen::TriangularView<const Eigen::Block<const Eigen::MatrixXd>, Eigen::Lower> L() const {
    return lbuf_.topLeftCorner(size(), size()).triangularView<Eigen::Lower>();
  }
  // Room for an n x n factor, keeping the one of size() rows.
  void GrowFactor(int n);

  GpHyperparameters hp_;
  Eigen::MatrixXd x_;  // n x D, raw features.
  Eigen::MatrixXd z_;  // n x D, features / lengthscales.
  Eigen::VectorXd y_;
  // Lower Cholesky factor of K + noise I in the top-left size() x size()
  // block; the rest is spare capacity (unset), so that adding a result
  // writes one row instead of copying the whole factor (8 MB at 1,000).
  Eigen::MatrixXd lbuf_;
  Eigen::VectorXd alpha_;   // (K + noise I)^-1 (y - mean).
  Eigen::VectorXd inv_ls_;  // 1 / lengthscale.
  double signal_var_ = 1;
  double noise_var_ = 1e-4;
  double neg_log_posterior_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace gangway::tuner
