// The expected values were computed once with Optuna 3.1's own estimator
// (optuna.samplers._tpe.parzen_estimator._ParzenEstimator with
// TPESampler's defaults: prior, prior_weight 1, magic clip, no endpoints,
// default_weights) on the same observations.
#include "tuner/tpe_parzen.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace gangway::tuner {
namespace {

constexpr double kTol = 1e-12;

struct Group {
  SearchSpace space;
  std::vector<UnitPoint> points;
  std::vector<const UnitPoint*> Pointers() const {
    std::vector<const UnitPoint*> out;
    for (const UnitPoint& u : points) out.push_back(&u);
    return out;
  }
};

Group Make(std::vector<ParameterSpec> specs, const std::vector<Assignment>& values) {
  Group g{*SearchSpace::Create(std::move(specs)), {}};
  for (const Assignment& a : values) g.points.push_back(g.space.Encode(a));
  return g;
}

TEST(TpeParzenTest, UnivariateBandwidthsWeightsAndDensityEqualOptunas) {
  std::vector<Assignment> obs;
  for (double x : {-4.0, -3.25, 5.5, 5.8, 8.5}) obs.push_back({x});
  const Group g = Make({ParameterSpec::Double("x", -5, 10)}, obs);
  const ParzenEstimator pe(g.space, g.Pointers(), /*multivariate=*/false, 1.0);
  // Optuna's sigmas divided by the range (15): the first is the magic clip
  // 1 / 7, the last two the inner gap (consider_endpoints = false), the
  // prior the whole range.
  const std::vector<double> sigmas = {0.14285714285714285, 0.38333333333333336, 0.2,
                                      0.18000000000000002, 0.18000000000000002, 1.0};
  for (int c = 0; c < 6; ++c) {
    EXPECT_NEAR(pe.sigmas(0)[c], sigmas[c], kTol) << c;
    EXPECT_NEAR(pe.weights()[c], 1.0 / 6, kTol) << c;
  }
  EXPECT_NEAR(pe.mus(0)[5], 0.5, kTol);
  // Optuna 3.1's log_pdf at x = 5 and -4.9: its kernels leave out the
  // 1 / sigma, which makes the figure the same on any scale.
  EXPECT_NEAR(pe.LogPdfDim(0, g.space.Encode({5.0})[0]), -0.9451497349818622, 1e-9);
  EXPECT_NEAR(pe.LogPdfDim(0, g.space.Encode({-4.9})[0]), -1.0546865402325378, 1e-9);
  // The normalised density (scipy's truncnorm.pdf mixture, plus log(15) for
  // the unit scale).
  const ParzenEstimator normalised(g.space, g.Pointers(), false, 1.0, /*optuna31_density=*/false);
  EXPECT_NEAR(normalised.LogPdfDim(0, g.space.Encode({5.0})[0]), 0.2028791053186163, 1e-9);
  EXPECT_NEAR(normalised.LogPdfDim(0, g.space.Encode({-4.9})[0]), 0.0536671429268849, 1e-9);
}

TEST(TpeParzenTest, MultivariateUsesScottsRuleAndMatchesOptunasDensity) {
  const double a[] = {0.1, 0.2, 0.3, 0.5, 0.6, 0.8, 0.95};
  const double b[] = {0.9, 0.1, 0.5, 0.4, 0.3, 0.2, 0.05};
  std::vector<Assignment> obs;
  for (int i = 0; i < 7; ++i) obs.push_back({a[i], b[i]});
  const Group g = Make({ParameterSpec::Double("a", 0, 1), ParameterSpec::Double("b", 0, 1)}, obs);
  const ParzenEstimator pe(g.space, g.Pointers(), /*multivariate=*/true, 1.0);
  for (int k = 0; k < 2; ++k) {
    for (int c = 0; c < 7; ++c) EXPECT_NEAR(pe.sigmas(k)[c], 0.14460400527989678, kTol);
    EXPECT_NEAR(pe.sigmas(k)[7], 1.0, kTol);
  }
  EXPECT_NEAR(pe.LogPdf({0.25, 0.6}), -1.895939923931607, 1e-9);
  const ParzenEstimator normalised(g.space, g.Pointers(), true, 1.0, /*optuna31_density=*/false);
  EXPECT_NEAR(normalised.LogPdf({0.25, 0.6}), 0.05385710970011345, 1e-9);
}

TEST(TpeParzenTest, OlderObservationsWeighLessPast25) {
  std::vector<Assignment> obs;
  for (int i = 0; i < 30; ++i) obs.push_back({i / 29.0});
  const Group g = Make({ParameterSpec::Double("x", 0, 1)}, obs);
  const ParzenEstimator pe(g.space, g.Pointers(), false, 1.0);
  ASSERT_EQ(pe.weights().size(), 31u);
  const double first[] = {0.00116618075801749, 0.00962099125364431, 0.01807580174927114,
                          0.02653061224489795, 0.03498542274052478};
  for (int c = 0; c < 5; ++c) EXPECT_NEAR(pe.weights()[c], first[c], kTol) << c;
  for (int c = 5; c < 31; ++c) EXPECT_NEAR(pe.weights()[c], 0.03498542274052478, kTol) << c;
}

TEST(TpeParzenTest, CategoricalKernelsEqualOptunas) {
  std::vector<Assignment> obs;
  for (const char* v : {"b", "b", "c", "a"}) obs.push_back({std::string(v)});
  const Group g = Make({ParameterSpec::Categorical("c", {"a", "b", "c"})}, obs);
  for (bool multivariate : {false, true}) {
    const ParzenEstimator pe(g.space, g.Pointers(), multivariate, 1.0);
    // prior_weight / (n + 1) = 0.2 on every choice plus 1 on the observed.
    const auto& rows = pe.categorical(0);
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_NEAR(rows[0][1], 0.75, kTol);
    EXPECT_NEAR(rows[0][0], 0.125, kTol);
    EXPECT_NEAR(rows[2][2], 0.75, kTol);
    EXPECT_NEAR(rows[3][0], 0.75, kTol);
    for (double p : rows[4]) EXPECT_NEAR(p, 1.0 / 3, kTol);
    const double expected[] = {-1.2321436812926323, -0.8754687373538997, -1.2321436812926323};
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(pe.LogPdfDim(0, (i + 0.5) / 3), expected[i], 1e-9) << i;
    }
  }
}

TEST(TpeParzenTest, IntsGetDiscretizedKernelsAndLatticeSamples) {
  std::vector<Assignment> obs;
  for (int64_t k : {2, 3, 7}) obs.push_back({k});
  const Group g = Make({ParameterSpec::Int("k", 0, 10)}, obs);
  const ParzenEstimator pe(g.space, g.Pointers(), false, 1.0);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(pe.sigmas(0)[c], 0.2, kTol);  // magic clip
  // Optuna's log_pdf is the mass of the value's cell [k - 0.5, k + 0.5].
  const double expected[] = {-2.5888323462775573, -2.0647714156916215, -3.1979056610106396};
  const int64_t at[] = {0, 3, 10};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(pe.LogPdfDim(0, g.space.Encode({at[i]})[0]), expected[i], 1e-9) << at[i];
    // Anywhere in the cell scores the same: the value, not the coordinate.
    EXPECT_NEAR(pe.LogPdfDim(0, (at[i] + 0.01) / 11.0), expected[i], 1e-9) << at[i];
  }
  // The masses of all cells add up to one.
  double total = 0;
  for (int k = 0; k <= 10; ++k) total += std::exp(pe.LogPdfDim(0, (k + 0.5) / 11));
  EXPECT_NEAR(total, 1.0, 1e-9);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    const double u = pe.SampleDim(0, rng);
    const double cell = u * 11 - 0.5;
    EXPECT_NEAR(cell, std::round(cell), 1e-9) << u;
  }
}

TEST(TpeParzenTest, LogIntSamplesAreLatticePoints) {
  // Optuna rounds a log-scale int's sample before scoring it; the sample is
  // then the coordinate of a value, not a point between two.
  std::vector<Assignment> obs;
  for (int64_t k : {3, 40, 90}) obs.push_back({k});
  const Group g = Make({ParameterSpec::Int("k", 1, 100, Scale::kLog)}, obs);
  const ParzenEstimator pe(g.space, g.Pointers(), false, 1.0);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100; ++i) {
    const double u = pe.SampleDim(0, rng);
    EXPECT_DOUBLE_EQ(u, g.space.Encode(g.space.Decode({u}))[0]) << u;
  }
}

TEST(TpeParzenTest, MultivariateSamplesShareOneComponent) {
  // Two observations far apart in both coordinates and narrow kernels:
  // a point drawn from one component has both coordinates near it, never
  // one near each (independent draws would mix them half the time).
  std::vector<Assignment> obs;
  for (int i = 0; i < 40; ++i) obs.push_back({i % 2 ? 0.05 : 0.95, i % 2 ? 0.05 : 0.95});
  const Group g = Make({ParameterSpec::Double("a", 0, 1), ParameterSpec::Double("b", 0, 1)}, obs);
  const ParzenEstimator pe(g.space, g.Pointers(), true, 1.0);
  std::mt19937_64 rng(7);
  int mixed = 0, prior = 0;
  for (int i = 0; i < 400; ++i) {
    const UnitPoint u = pe.Sample(rng);
    const bool a_low = u[0] < 0.5, b_low = u[1] < 0.5;
    mixed += a_low != b_low;
    prior += std::abs(u[0] - 0.5) < 0.2;
  }
  // Only the prior component (weight 1 / 41) mixes.
  EXPECT_LE(mixed, 40) << prior;
}

}  // namespace
}  // namespace gangway::tuner
