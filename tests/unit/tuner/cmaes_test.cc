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

// Values from the cmaes 0.9.1 library's CMA (Optuna 3.1's CmaEsSampler
// runs it): x in [0, 10], y in [-1, 1], mean at the centre, sigma0 =
// min(10, 2) / 6, two generations of 6 fixed points, then should_stop()
// (which rebuilds C from its eigendecomposition). Its mean is shifted here
// so that the box starts at 0.
TEST(CmaEsTest, MatchesTheCmaesLibraryOverTwoGenerations) {
  const SearchSpace space =
      *SearchSpace::Create({ParameterSpec::Double("x", 0, 10), ParameterSpec::Double("y", -1, 1)});
  std::vector<Observation> obs = {{{0.5, 0.5}, 123.0}};  // The start-up trial: left out.
  for (int g = 0; g < 2; ++g) {
    for (int i = 0; i < 6; ++i) {
      const double u0 = ((i * 7 + g * 3) % 11 + 0.5) / 11;
      const double u1 = ((i * 5 + g * 2) % 13 + 0.5) / 13;
      const double x = u0 * 10, y = u1 * 2 - 1;
      obs.push_back({{u0, u1}, (x - 3) * (x - 3) + 10 * (y - 0.2) * (y - 0.2) + 0.5 * x * y});
    }
  }
  const CmaEsState s = ReplayCmaEs(space, {}, 0, obs);
  ASSERT_EQ(s.population, 6);
  ASSERT_EQ(s.generation, 2);
  ASSERT_EQ(s.mean.size(), 2u);
  EXPECT_NEAR(s.mean[0], 2.745210701272985, 1e-9);
  EXPECT_NEAR(s.mean[1], 0.5685689186402589, 1e-9);
  EXPECT_NEAR(s.sigma, 2.7349590669787216, 1e-9);
  EXPECT_NEAR(s.cov[0], 2.5033756756193544, 1e-9);
  EXPECT_NEAR(s.cov[1], -0.7289870532394351, 1e-9);
  EXPECT_NEAR(s.cov[2], -0.7289870532394351, 1e-9);
  EXPECT_NEAR(s.cov[3], 1.3908177037587803, 1e-9);
}

TEST(CmaEsTest, StartsAtTheCentreWithASixthOfTheSmallestRange) {
  // An int widened by half a step (Optuna's transform): k in 0..9 spans 10.
  const SearchSpace space =
      *SearchSpace::Create({ParameterSpec::Int("k", 0, 9), ParameterSpec::Double("y", -1, 1),
                            ParameterSpec::Double("lr", 1e-4, 1e-1, Scale::kLog)});
  const CmaEsState s = ReplayCmaEs(space, {}, 0, {});
  ASSERT_EQ(s.mean.size(), 3u);
  EXPECT_DOUBLE_EQ(s.mean[0], 5.0);
  EXPECT_DOUBLE_EQ(s.mean[1], 1.0);
  EXPECT_NEAR(s.mean[2], std::log(1000.0) / 2, 1e-12);
  EXPECT_NEAR(s.sigma, 2.0 / 6, 1e-15);
  EXPECT_EQ(s.population, 7);
}

TEST(CmaEsTest, AWideParameterStartsRelativelyNarrower) {
  // sigma0 = min(range) / 6 in Optuna's coordinates: 1/3 of k's 10 values
  // (so proposals sit on 4 or 5, next to the centre), 1/6 of y's range.
  double dev_k = 0, dev_y = 0;
  int count = 0;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    TunerOptions o;
    o.algorithm = Algorithm::kCmaEs;
    o.seed = seed;
    Tuner t = *Tuner::Create(
        *SearchSpace::Create({ParameterSpec::Int("k", 0, 9), ParameterSpec::Double("y", -1, 1)}),
        o);
    for (int i = 0; i < 4; ++i) {
      auto p = t.Ask(1);
      const Assignment& a = (*p)[0].assignment;
      if (i > 0) {  // The first is the random start-up trial.
        dev_k += std::pow((static_cast<double>(std::get<int64_t>(a[0])) + 0.5) / 10 - 0.5, 2);
        dev_y += std::pow(std::get<double>(a[1]) / 2, 2);
        ++count;
      }
      ASSERT_TRUE(t.Tell((*p)[0].trial_id, 1.0 + i).ok());
    }
  }
  EXPECT_LT(std::sqrt(dev_k / count), 0.08);
  EXPECT_GT(std::sqrt(dev_y / count), 0.12);
}

TEST(CmaEsTest, TheFirstTrialIsUniformRandomAndStaysOutOfTheGenerations) {
  int outside = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Tuner t = Make(2, seed);
    auto p = t.Ask(1);
    for (const auto& v : (*p)[0].assignment) {
      const double x = std::get<double>(v);
      if (x < 0.2 || x > 0.8) {
        ++outside;
        break;
      }
    }
  }
  // Uniform: 64% of points have a coordinate outside [0.2, 0.8]; around
  // the centre with sigma 1/6 about 14% would.
  EXPECT_GT(outside, 15);
  const SearchSpace space = *SearchSpace::Create(UnitBox(2));
  std::vector<Observation> obs(6, Observation{{0.5, 0.5}, 1.0});
  for (int i = 0; i < 6; ++i) obs[i].loss = i;
  EXPECT_EQ(ReplayCmaEs(space, {}, 0, obs).generation, 0);  // 5 of λ = 6.
  obs.push_back({{0.4, 0.6}, 0.5});
  EXPECT_EQ(ReplayCmaEs(space, {}, 0, obs).generation, 1);
}

TEST(CmaEsTest, OneNumericParameterIsSampledAtRandomAsOptunaDoes) {
  // The cmaes library needs two dimensions; Optuna falls back to its
  // independent (random) sampler, and so does gangway.
  TunerOptions o;
  o.algorithm = Algorithm::kCmaEs;
  o.seed = 3;
  Tuner t = *Tuner::Create(*SearchSpace::Create(UnitBox(1)), o);
  double lo = 1, hi = 0;
  for (int i = 0; i < 120; ++i) {
    auto p = t.Ask(1);
    const double x = std::get<double>((*p)[0].assignment[0]);
    if (i >= 60) lo = std::min(lo, x), hi = std::max(hi, x);
    ASSERT_TRUE(t.Tell((*p)[0].trial_id, (x - 0.3) * (x - 0.3)).ok());
  }
  EXPECT_GT(hi - lo, 0.8);
}

TEST(CmaEsTest, FlatLossesRestartOnlyOnceTheLibrarysHistoryIsFull) {
  // cmaes' should_stop(): best and worst flat over more than
  // 10 + ceil(30 d / λ) generations (20 in 2-d with λ = 6), not after one.
  Tuner t = Make(2, 4);
  std::vector<Observation> history;
  for (int i = 0; i < 1 + 6 * 21; ++i) {
    auto p = t.Ask(1);
    history.push_back({t.space().Encode((*p)[0].assignment), 1.0});
    ASSERT_TRUE(t.Tell((*p)[0].trial_id, 1.0).ok());
  }
  const std::vector<Observation> before(history.begin(), history.end() - 6);
  const CmaEsState s20 = ReplayCmaEs(t.space(), {}, 4, before);
  EXPECT_EQ(s20.restarts, 0);
  EXPECT_EQ(s20.generation, 20);
  const CmaEsState s21 = ReplayCmaEs(t.space(), {}, 4, history);
  EXPECT_EQ(s21.restarts, 1);
  EXPECT_EQ(s21.population, 12);
  EXPECT_EQ(s21.generation, 0);
}

}  // namespace
}  // namespace gangway::tuner
