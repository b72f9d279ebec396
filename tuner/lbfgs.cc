#include "tuner/lbfgs.h"

#include <cmath>
#include <deque>
#include <limits>

namespace gangway::tuner {
namespace {

double Eval(Objective f, const Eigen::VectorXd& x, Eigen::VectorXd* g) {
  const double v = f(x, g);
  if (!std::isfinite(v) || !g->allFinite()) return std::numeric_limits<double>::infinity();
  return v;
}

// Variables held at a bound by a gradient pointing out of the box.
Eigen::VectorXd FreeMask(const Eigen::VectorXd& x, const Eigen::VectorXd& g,
                         const Eigen::VectorXd& lo, const Eigen::VectorXd& hi) {
  Eigen::VectorXd free = Eigen::VectorXd::Ones(x.size());
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    if ((x[i] <= lo[i] && g[i] > 0) || (x[i] >= hi[i] && g[i] < 0)) free[i] = 0;
  }
  return free;
}

}  // namespace

MinimizeResult MinimizeBounded(Objective f, const Eigen::VectorXd& x0, const Eigen::VectorXd& lower,
                               const Eigen::VectorXd& upper, const MinimizeOptions& options) {
  const Eigen::Index n = x0.size();
  MinimizeResult r;
  r.x = x0.cwiseMax(lower).cwiseMin(upper);
  Eigen::VectorXd g(n);
  r.value = Eval(f, r.x, &g);
  r.evaluations = 1;
  if (!std::isfinite(r.value)) return r;

  std::deque<Eigen::VectorXd> s_hist, y_hist;
  std::deque<double> rho_hist;
  Eigen::VectorXd g_new(n);
  for (r.iterations = 0; r.iterations < options.max_iterations; ++r.iterations) {
    const Eigen::VectorXd free = FreeMask(r.x, g, lower, upper);
    const Eigen::VectorXd pg = g.cwiseProduct(free);
    if (pg.lpNorm<Eigen::Infinity>() < options.gradient_tolerance) break;

    // Two-loop recursion on the free variables.
    Eigen::VectorXd q = pg;
    std::vector<double> alpha(s_hist.size());
    for (int k = static_cast<int>(s_hist.size()) - 1; k >= 0; --k) {
      alpha[k] = rho_hist[k] * s_hist[k].cwiseProduct(free).dot(q);
      q -= alpha[k] * y_hist[k].cwiseProduct(free);
    }
    if (!s_hist.empty()) {
      const Eigen::VectorXd& s = s_hist.back();
      const Eigen::VectorXd& y = y_hist.back();
      q *= s.dot(y) / y.squaredNorm();
    } else {
      q /= std::max(1.0, pg.norm());
    }
    for (size_t k = 0; k < s_hist.size(); ++k) {
      const double beta = rho_hist[k] * y_hist[k].cwiseProduct(free).dot(q);
      q += (alpha[k] - beta) * s_hist[k].cwiseProduct(free);
    }
    Eigen::VectorXd d = -q.cwiseProduct(free);
    if (!(d.dot(g) < 0)) {
      s_hist.clear();
      y_hist.clear();
      rho_hist.clear();
      d = -pg / std::max(1.0, pg.norm());
    }

    double t = 1;
    bool accepted = false;
    Eigen::VectorXd x_new(n);
    double v_new = 0;
    for (int ls = 0; ls < 30; ++ls, t *= 0.5) {
      x_new = (r.x + t * d).cwiseMax(lower).cwiseMin(upper);
      v_new = Eval(f, x_new, &g_new);
      ++r.evaluations;
      if (v_new <= r.value + 1e-4 * g.dot(x_new - r.x)) {
        accepted = true;
        break;
      }
    }
    if (!accepted) break;
    const Eigen::VectorXd s = x_new - r.x;
    const Eigen::VectorXd y = g_new - g;
    const double sy = s.dot(y);
    const double decrease = r.value - v_new;
    r.x = x_new;
    g = g_new;
    r.value = v_new;
    if (sy > 1e-12 * s.norm() * y.norm()) {
      s_hist.push_back(s);
      y_hist.push_back(y);
      rho_hist.push_back(1.0 / sy);
      if (static_cast<int>(s_hist.size()) > options.history) {
        s_hist.pop_front();
        y_hist.pop_front();
        rho_hist.pop_front();
      }
    }
    if (decrease <= options.function_tolerance * (std::abs(r.value) + 1)) break;
  }
  return r;
}

}  // namespace gangway::tuner
