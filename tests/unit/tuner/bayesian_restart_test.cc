// The bayesian sampler's trust-region restart (TuRBO): once the region
// around the best result has collapsed, the next proposal leaves it and a
// new region forms around the results after the restart.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

std::vector<double> Doubles(const Assignment& a) {
  std::vector<double> x;
  for (const auto& v : a) x.push_back(std::get<double>(v));
  return x;
}

double LInf(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t k = 0; k < a.size(); ++k) d = std::max(d, std::abs(a[k] - b[k]));
  return d;
}

// A needle at the centre of the box (the first proposal) on a flat floor:
// every model-based proposal fails, so the region around the centre halves
// after max(4, d) = 4 failures, which with these settings is a collapse.
// Returns the proposals of a 14-trial sweep.
std::vector<std::vector<double>> NeedleSweep(TrustRegionRestart restart, uint64_t seed = 5) {
  TunerOptions o;
  o.algorithm = Algorithm::kBayesian;
  o.seed = seed;
  o.bayesian.centre_first = true;
  o.bayesian.trust_region_length = 0.2;
  o.bayesian.trust_region_min_length = 0.15;
  o.bayesian.trust_region_restart = restart;
  Tuner t = *Tuner::Create(
      *SearchSpace::Create({ParameterSpec::Double("a", 0, 1), ParameterSpec::Double("b", 0, 1)}),
      o);
  std::vector<std::vector<double>> xs;
  for (int i = 0; i < 14; ++i) {
    auto p = t.Ask(1);
    EXPECT_TRUE(p.ok());
    const std::vector<double> x = Doubles((*p)[0].assignment);
    xs.push_back(x);
    const double y = LInf(x, {0.5, 0.5}) < 1e-12 ? 0.0 : 1.0 + 0.01 * x[0];
    EXPECT_TRUE(t.Tell((*p)[0].trial_id, y).ok());
  }
  return xs;
}

constexpr int kInit = 5;       // DefaultInitialPoints(2).
constexpr int kCollapse = 9;   // First ask after 4 model-based failures.
constexpr double kHalf = 0.1;  // Half the region's side around the centre.

TEST(BayesianRestartTest, WithoutRestartTheRegionStaysAroundTheBest) {
  const auto xs = NeedleSweep(TrustRegionRestart::kNone);
  for (int i = kInit; i < 14; ++i) {
    EXPECT_LE(LInf(xs[i], {0.5, 0.5}), kHalf + 1e-12) << "trial " << i;
  }
}

void ExpectRestartLeavesTheCollapsedRegion(TrustRegionRestart restart) {
  const auto xs = NeedleSweep(restart);
  for (int i = kInit; i < kCollapse; ++i) {
    EXPECT_LE(LInf(xs[i], {0.5, 0.5}), kHalf + 1e-12) << "trial " << i;
  }
  // The collapsed region is the initial side around the best result.
  EXPECT_GT(LInf(xs[kCollapse], {0.5, 0.5}), kHalf) << "trial " << kCollapse;
  // The new region is centred on the best result since the restart (the
  // lowest x[0], by the floor's slope), not on the needle; its side can
  // only have doubled after 3 improvements.
  int best = kCollapse;
  for (int i = kCollapse + 1; i < kCollapse + 4; ++i) {
    EXPECT_LE(LInf(xs[i], xs[best]), kHalf + 1e-12) << "trial " << i;
    if (xs[i][0] < xs[best][0]) best = i;
  }
}

TEST(BayesianRestartTest, GlobalRestartLeavesTheCollapsedRegion) {
  ExpectRestartLeavesTheCollapsedRegion(TrustRegionRestart::kGlobal);
}

TEST(BayesianRestartTest, SobolRestartLeavesTheCollapsedRegion) {
  ExpectRestartLeavesTheCollapsedRegion(TrustRegionRestart::kSobol);
}

TEST(BayesianRestartTest, ProposalsAreAFunctionOfSeedAndHistory) {
  for (TrustRegionRestart r : {TrustRegionRestart::kGlobal, TrustRegionRestart::kSobol}) {
    EXPECT_EQ(NeedleSweep(r, 7), NeedleSweep(r, 7));
    EXPECT_NE(NeedleSweep(r, 7), NeedleSweep(r, 8));
  }
}

TEST(BayesianRestartTest, RejectsAMinimumSideOutsideTheUnitRange) {
  for (double bad : {0.0, -0.1, 1.0, std::nan("")}) {
    TunerOptions o;
    o.algorithm = Algorithm::kBayesian;
    o.bayesian.trust_region_min_length = bad;
    const auto t = Tuner::Create(*SearchSpace::Create({ParameterSpec::Double("a", 0, 1)}), o);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_NE(t.status().message().find("trust_region_min_length"), std::string::npos);
  }
}

}  // namespace
}  // namespace gangway::tuner
