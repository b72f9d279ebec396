#include "tuner/gaussian_process.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "tuner/acquisition.h"
#include "tuner/lbfgs.h"

namespace gangway::tuner {
namespace {

Eigen::MatrixXd RandomPoints(int n, int d, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u;
  Eigen::MatrixXd x(n, d);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) x(i, j) = u(rng);
  }
  return x;
}

Eigen::VectorXd Quadratic(const Eigen::MatrixXd& x) {
  return ((x.array() - 0.3).square().rowwise().sum() + 0.1 * (5 * x.col(0).array()).sin()).matrix();
}

TEST(GaussianProcessTest, NegLogPosteriorGradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(1);
  const Eigen::MatrixXd x = RandomPoints(15, 3, rng);
  Eigen::VectorXd y = Quadratic(x);
  y = (y.array() - y.mean()) / 0.3;
  Eigen::VectorXd theta(5);
  theta << -1.0, 0.2, 0.7, 0.3, -5.0;
  GpFitOptions o;
  Eigen::VectorXd grad;
  GaussianProcess::NegLogPosterior(x, y, theta, o, &grad);
  for (int i = 0; i < theta.size(); ++i) {
    Eigen::VectorXd tp = theta, tm = theta;
    const double h = 1e-5;
    tp[i] += h;
    tm[i] -= h;
    const double fd = (GaussianProcess::NegLogPosterior(x, y, tp, o, nullptr) -
                       GaussianProcess::NegLogPosterior(x, y, tm, o, nullptr)) /
                      (2 * h);
    EXPECT_NEAR(grad[i], fd, 1e-4 * std::max(1.0, std::abs(fd))) << "theta " << i;
  }
}

TEST(GaussianProcessTest, FitInterpolatesAndPredictsWithGradient) {
  std::mt19937_64 rng(2);
  const Eigen::MatrixXd x = RandomPoints(30, 2, rng);
  const Eigen::VectorXd y = Quadratic(x);
  const Eigen::VectorXd ys = (y.array() - y.mean()) / 0.2;
  const GaussianProcess gp = GaussianProcess::Fit(x, ys, {}, rng);
  Eigen::VectorXd mean, var;
  gp.Predict(x, &mean, &var);
  EXPECT_LT((mean - ys).lpNorm<Eigen::Infinity>(), 0.05);
  // Held-out points: a smooth function is predicted well.
  const Eigen::MatrixXd xt = RandomPoints(20, 2, rng);
  const Eigen::VectorXd yt = (Quadratic(xt).array() - y.mean()) / 0.2;
  gp.Predict(xt, &mean, &var);
  EXPECT_LT((mean - yt).cwiseAbs().mean(), 0.1);

  const Eigen::Vector2d p(0.41, 0.77);
  double m = 0, v = 0;
  Eigen::VectorXd dm, dv;
  gp.PredictWithGradient(p, &m, &v, &dm, &dv);
  Eigen::VectorXd m1, v1;
  gp.Predict(p.transpose(), &m1, &v1);
  EXPECT_NEAR(m, m1[0], 1e-10);
  EXPECT_NEAR(v, v1[0], 1e-10);
  for (int k = 0; k < 2; ++k) {
    Eigen::Vector2d pp = p, pm = p;
    pp[k] += 1e-6;
    pm[k] -= 1e-6;
    Eigen::VectorXd mp, vp, mm, vm;
    gp.Predict(pp.transpose(), &mp, &vp);
    gp.Predict(pm.transpose(), &mm, &vm);
    EXPECT_NEAR(dm[k], (mp[0] - mm[0]) / 2e-6, 1e-4 * std::max(1.0, std::abs(dm[k])));
    EXPECT_NEAR(dv[k], (vp[0] - vm[0]) / 2e-6, 1e-4 * std::max(1.0, std::abs(dv[k])));
  }
}

TEST(GaussianProcessTest, AddObservationEqualsConditioningFromScratch) {
  std::mt19937_64 rng(3);
  const Eigen::MatrixXd x = RandomPoints(12, 3, rng);
  const Eigen::VectorXd y = Quadratic(x);
  GaussianProcess gp = GaussianProcess::Fit(x.topRows(10), y.head(10), {}, rng);
  gp.AddObservation(x.row(10).transpose(), y[10]);
  gp.AddObservation(x.row(11).transpose(), y[11]);
  const GaussianProcess full = GaussianProcess::Condition(x, y, gp.hyperparameters());
  const Eigen::MatrixXd xt = RandomPoints(5, 3, rng);
  Eigen::VectorXd m1, v1, m2, v2;
  gp.Predict(xt, &m1, &v1);
  full.Predict(xt, &m2, &v2);
  EXPECT_LT((m1 - m2).lpNorm<Eigen::Infinity>(), 1e-8);
  EXPECT_LT((v1 - v2).lpNorm<Eigen::Infinity>(), 1e-8);
  // A fantasy at a point collapses the variance there.
  Eigen::VectorXd m, v;
  gp.Predict(x.row(11), &m, &v);
  EXPECT_LT(v[0], 1e-3);
}

TEST(GaussianProcessTest, UpdateExtendsTheFactorAndMatchesConditioningFromScratch) {
  std::mt19937_64 rng(4);
  const Eigen::MatrixXd x = RandomPoints(40, 3, rng);
  const Eigen::VectorXd y = Quadratic(x);
  GaussianProcess gp = GaussianProcess::Fit(x.topRows(25), y.head(25), {}, rng);
  // New rows and new outputs for every row (an output warp moves with each
  // result): the factor is extended, the solves redone.
  const Eigen::VectorXd y2 = 2 * y.array() + 1;
  EXPECT_TRUE(gp.Update(x, y2, /*profile_mean=*/true));
  EXPECT_EQ(gp.size(), 40);
  const GaussianProcess full = GaussianProcess::Condition(x, y2, gp.hyperparameters(), true);
  EXPECT_NEAR(gp.hyperparameters().mean, full.hyperparameters().mean, 1e-9);
  const Eigen::MatrixXd xt = RandomPoints(6, 3, rng);
  Eigen::VectorXd m1, v1, m2, v2;
  gp.Predict(xt, &m1, &v1);
  full.Predict(xt, &m2, &v2);
  EXPECT_LT((m1 - m2).lpNorm<Eigen::Infinity>(), 1e-8);
  EXPECT_LT((v1 - v2).lpNorm<Eigen::Infinity>(), 1e-8);
  // Rows that are not an extension of the held ones: factored from scratch.
  Eigen::MatrixXd shuffled = x;
  shuffled.row(0).swap(shuffled.row(1));
  EXPECT_FALSE(gp.Update(shuffled, y2, true));
  const GaussianProcess ref = GaussianProcess::Condition(shuffled, y2, gp.hyperparameters(), true);
  gp.Predict(xt, &m1, &v1);
  ref.Predict(xt, &m2, &v2);
  EXPECT_LT((m1 - m2).lpNorm<Eigen::Infinity>(), 1e-8);
}

// The factor keeps spare capacity and grows past it now and then: results
// added one at a time across several growths, by Update and by
// AddObservation, and a copy extended on its own, all match conditioning
// from scratch.
TEST(GaussianProcessTest, OneAtATimeExtensionsAcrossGrowthsMatchConditioningFromScratch) {
  std::mt19937_64 rng(5);
  const Eigen::MatrixXd x = RandomPoints(90, 3, rng);
  const Eigen::VectorXd y = Quadratic(x);
  GaussianProcess gp = GaussianProcess::Fit(x.topRows(5), y.head(5), {}, rng);
  for (int n = 6; n <= 80; ++n) {
    ASSERT_TRUE(gp.Update(x.topRows(n), y.head(n), /*profile_mean=*/false)) << n;
  }
  GaussianProcess copy = gp;
  for (int i = 80; i < 90; ++i) copy.AddObservation(x.row(i).transpose(), y[i]);
  const Eigen::MatrixXd xt = RandomPoints(6, 3, rng);
  auto expect_same = [&](const GaussianProcess& a, int n) {
    const GaussianProcess full =
        GaussianProcess::Condition(x.topRows(n), y.head(n), a.hyperparameters());
    Eigen::VectorXd m1, v1, m2, v2;
    a.Predict(xt, &m1, &v1);
    full.Predict(xt, &m2, &v2);
    EXPECT_LT((m1 - m2).lpNorm<Eigen::Infinity>(), 1e-7) << n;
    EXPECT_LT((v1 - v2).lpNorm<Eigen::Infinity>(), 1e-7) << n;
  };
  expect_same(copy, 90);
  expect_same(gp, 80);  // The copy's additions left the original alone.
}

TEST(AcquisitionTest, LogHMatchesDirectFormulaAndStaysFinite) {
  for (double z : {-3.0, -1.5, -1.0, -0.5, 0.0, 0.7, 2.0, 5.0}) {
    const double phi = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
    const double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
    EXPECT_NEAR(LogH(z), std::log(phi + z * cdf), 1e-9) << z;
    const double h = 1e-6;
    EXPECT_NEAR(DLogH(z), (LogH(z + h) - LogH(z - h)) / (2 * h), 1e-5) << z;
  }
  // Far below the incumbent plain EI underflows to 0; log EI keeps a slope.
  for (double z : {-20.0, -39.0, -41.0, -200.0, -1e4}) {
    EXPECT_TRUE(std::isfinite(LogH(z))) << z;
    EXPECT_GT(DLogH(z), 0) << z;
    EXPECT_LT(LogH(z), LogH(z + 0.5));
  }
  // Continuous across the branch points.
  EXPECT_NEAR(LogH(-1 - 1e-12), LogH(-1 + 1e-12), 1e-9);
  EXPECT_NEAR(LogH(-40 - 1e-9), LogH(-40 + 1e-9), 1e-6);
}

TEST(LbfgsTest, MinimizesRosenbrockAndRespectsBounds) {
  auto rosen = [](const Eigen::VectorXd& x, Eigen::VectorXd* g) {
    const double a = 1 - x[0], b = x[1] - x[0] * x[0];
    (*g)[0] = -2 * a - 400 * x[0] * b;
    (*g)[1] = 200 * b;
    return a * a + 100 * b * b;
  };
  MinimizeOptions o;
  o.max_iterations = 500;
  const MinimizeResult r = MinimizeBounded(rosen, Eigen::Vector2d(-1.2, 1), Eigen::Vector2d(-5, -5),
                                           Eigen::Vector2d(5, 5), o);
  EXPECT_NEAR(r.x[0], 1, 1e-3);
  EXPECT_NEAR(r.x[1], 1, 1e-3);
  // Optimum (1, 1) outside the box [-2, 0.5]^2: lands on the boundary.
  const MinimizeResult b = MinimizeBounded(rosen, Eigen::Vector2d(0, 0), Eigen::Vector2d(-2, -2),
                                           Eigen::Vector2d(0.5, 0.5), o);
  EXPECT_DOUBLE_EQ(b.x[0], 0.5);
  EXPECT_NEAR(b.x[1], 0.25, 1e-3);
}

}  // namespace
}  // namespace gangway::tuner
