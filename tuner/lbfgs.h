// Box-constrained quasi-Newton minimization (projected L-BFGS with an Armijo
// backtracking line search). Used for Gaussian-process hyperparameters and
// for maximizing acquisition functions; both are small (<= ~70 variables),
// smooth, and cheap to restart, so a compact projected method is enough and
// avoids a dependency on a full L-BFGS-B.
#pragma once

#include "Eigen/Core"
#include "absl/functional/function_ref.h"

namespace gangway::tuner {

struct MinimizeOptions {
  int max_iterations = 100;
  int history = 8;
  // Stop when the projected gradient's largest entry is below this.
  double gradient_tolerance = 1e-6;
  // Stop when an iteration lowers f by less than this, relative to |f| + 1.
  double function_tolerance = 1e-10;
};

struct MinimizeResult {
  Eigen::VectorXd x;
  double value = 0;
  int iterations = 0;
  int evaluations = 0;
};

// f(x, grad) returns f at x and writes its gradient into *grad (sized like
// x). A non-finite value is treated as +infinity (the line search backs off).
using Objective = absl::FunctionRef<double(const Eigen::VectorXd& x, Eigen::VectorXd* grad)>;

MinimizeResult MinimizeBounded(Objective f, const Eigen::VectorXd& x0, const Eigen::VectorXd& lower,
                               const Eigen::VectorXd& upper, const MinimizeOptions& options = {});

}  // namespace gangway::tuner
