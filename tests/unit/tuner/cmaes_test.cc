#include "tuner/cmaes.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "gtest/gtest.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

std::vector<ParameterSpec> UnitBox(int d) {
  std::vector<ParameterSpec> ps;
  for (int i = 0; i < d; ++i) ps.push_back(ParameterSpec::Double("x" + std::to_string(i), 0, 1));
  return ps;
}

double Quadratic(const Assignment& a) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = std::get<double>(a[i]);
    s += (x - 0.3 - 0.1 * i) * (x - 0.3 - 0.1 * i);
  }
  return s;
}

Tuner Make(int d, uint64_t seed, CmaEsOptions cmaes = {}) {
  TunerOptions o;
  o.algorithm = Algorithm::kCmaEs;
  o.seed = seed;
  o.cmaes = cmaes;
  return *Tuner::Create(*SearchSpace::Create(UnitBox(d)), o);
}

TEST(CmaEsTest, ConvergesOnAQuadraticWhereRandomSearchDoesNot) {
  for (uint64_t seed = 0; seed < 4; ++seed) {
    Tuner t = Make(4, seed, {.restarts = false});
    double best = INFINITY;
    for (int i = 0; i < 200; ++i) {
      auto p = t.Ask(1);
      const double y = Quadratic((*p)[0].assignment);
      best = std::min(best, y);
      ASSERT_TRUE(t.Tell((*p)[0].trial_id, y).ok());
    }
    // Random search at 200 points in 4-d gets ~1e-2.
    EXPECT_LT(best, 1e-3) << "seed " << seed;
  }
}

TEST(CmaEsTest, AReplayedHistoryProposesExactlyTheSame) {
  Tuner a = Make(3, 5);
  Tuner b = Make(3, 5);
  for (int i = 0; i < 23; ++i) {  // Past three generations of 7.
    auto p = a.Ask(1);
    const double y = Quadratic((*p)[0].assignment);
    ASSERT_TRUE(a.Tell((*p)[0].trial_id, y).ok());
    ASSERT_TRUE(b.Register((*p)[0].trial_id, (*p)[0].assignment).ok());
    ASSERT_TRUE(b.Tell((*p)[0].trial_id, y).ok());
  }
  auto pa = a.Ask(3);
  auto pb = b.Ask(3);
  ASSERT_TRUE(pa.ok() && pb.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*pa)[i].assignment, (*pb)[i].assignment);
}

TEST(CmaEsTest, RestartsWidenTheSearchAfterConvergence) {
  // Once a run has converged on the quadratic's optimum (step size or the
  // spread of losses collapsed), IPOP starts a larger population from a
  // random mean, so late proposals land far away again; without restarts
  // they stay at the optimum.
  auto far = [](bool restarts) {
    Tuner t = Make(2, 1, {.restarts = restarts});
    double far = 0;
    for (int i = 0; i < 600; ++i) {
      auto p = t.Ask(1);
      const auto& a = (*p)[0].assignment;
      const double y = Quadratic(a);
      if (i >= 400) far = std::max(far, y);
      EXPECT_TRUE(t.Tell((*p)[0].trial_id, y).ok());
    }
    return far;
  };
  EXPECT_GT(far(true), 1e-2);
  EXPECT_LT(far(false), 1e-6);
}

TEST(CmaEsTest, CategoricalsAreSampledIndependentlyAndIntsSnapped) {
  TunerOptions o;
  o.algorithm = Algorithm::kCmaEs;
  o.seed = 2;
  Tuner t = *Tuner::Create(
      *SearchSpace::Create({ParameterSpec::Double("x", -2, 2), ParameterSpec::Int("k", 0, 10),
                            ParameterSpec::Categorical("c", {"a", "b"})}),
      o);
  std::set<std::string> seen;
  for (int i = 0; i < 80; ++i) {
    auto p = t.Ask(1);
    const Assignment& a = (*p)[0].assignment;
    ASSERT_TRUE(t.space().Check(a).ok());
    seen.insert(std::get<std::string>(a[2]));
    const double x = std::get<double>(a[0]);
    const double k = static_cast<double>(std::get<int64_t>(a[1]));
    ASSERT_TRUE(t.Tell((*p)[0].trial_id, (x - 0.5) * (x - 0.5) + 0.05 * (k - 7) * (k - 7)).ok());
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(std::get<int64_t>(t.best()->assignment[1]), 7);
  EXPECT_NEAR(std::get<double>(t.best()->assignment[0]), 0.5, 0.05);
}

}  // namespace
}  // namespace gangway::tuner
