#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "tests/unit/tuner/zdt1.h"
#include "tuner/pareto.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

TEST(ParetoTest, FrontsAndCrowding) {
  const std::vector<Losses> points = {{1, 5}, {2, 2}, {5, 1}, {3, 3}, {6, 6}, {2, 2}};
  auto fronts = NonDominatedFronts(points);
  ASSERT_EQ(fronts.size(), 3u);
  EXPECT_EQ(fronts[0], (std::vector<int>{0, 1, 2, 5}));  // Equal points do not dominate.
  EXPECT_EQ(fronts[1], (std::vector<int>{3}));
  EXPECT_EQ(fronts[2], (std::vector<int>{4}));
  EXPECT_TRUE(Dominates(points[1], points[3]));
  EXPECT_FALSE(Dominates(points[1], points[5]));
  std::vector<double> d = CrowdingDistance(points, {0, 1, 2});
  EXPECT_TRUE(std::isinf(d[0]));
  EXPECT_TRUE(std::isinf(d[2]));
  EXPECT_DOUBLE_EQ(d[1], (5.0 - 1.0) / 4.0 + (5.0 - 1.0) / 4.0);
}

TEST(ParetoTest, HypervolumeMatchesHandComputedBoxes) {
  // Two objectives: the union of [1,4]x[3,4], [2,4]x[2,4], [3,4]x[1,4].
  EXPECT_DOUBLE_EQ(Hypervolume({{1, 3}, {2, 2}, {3, 1}}, {4, 4}), 3 + 2 + 1);
  // A dominated point and one outside the box add nothing.
  EXPECT_DOUBLE_EQ(Hypervolume({{1, 3}, {2, 2}, {3, 1}, {3, 3}, {5, 0}}, {4, 4}), 6);
  // Three objectives: one point is a box; two overlapping boxes by
  // inclusion-exclusion: 1*2*2 + 2*1*2 - 1*1*2.
  EXPECT_DOUBLE_EQ(Hypervolume({{1, 1, 1}}, {2, 3, 4}), 1 * 2 * 3);
  EXPECT_DOUBLE_EQ(Hypervolume({{1, 0, 0}, {0, 1, 0}}, {2, 2, 2}), 4 + 4 - 2);
  EXPECT_DOUBLE_EQ(Hypervolume({}, {1, 1}), 0);
}

using mo_test::Box;
using mo_test::MultiTuner;
using mo_test::Zdt1;

double RunZdt1(Tuner& t, int trials, int batch) {
  std::vector<Losses> seen;
  for (int done = 0; done < trials; done += batch) {
    auto ps = t.Ask(batch);
    for (const Proposal& p : *ps) {
      std::vector<double> f = Zdt1(p.assignment);
      seen.push_back(f);
      EXPECT_TRUE(t.Tell(p.trial_id, f).ok());
    }
  }
  return Hypervolume(seen, {1.1, 11});
}

TEST(MultiObjectiveTest, Nsga2BeatsRandomOnZdt1ByHypervolume) {
  int wins = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    Tuner nsga = MultiTuner(Algorithm::kNsga2, seed);
    Tuner random = MultiTuner(Algorithm::kRandom, seed);
    wins += RunZdt1(nsga, 100, 4) > RunZdt1(random, 100, 4);
  }
  EXPECT_GE(wins, 4);
}

TEST(MultiObjectiveTest, ParetoFrontHoldsTheNonDominatedTrialsWithEveryValue) {
  TunerOptions o;
  o.algorithm = Algorithm::kRandom;
  o.objectives = {Direction::kMinimize, Direction::kMaximize};
  Tuner t = *Tuner::Create(Box(1), o);
  auto ps = *t.Ask(4);
  // (loss, accuracy): trial 0 (1, 0.9) and trial 2 (0.5, 0.5) trade off;
  // trial 1 (2, 0.8) is dominated by trial 0; trial 3 failed.
  ASSERT_TRUE(t.Tell(ps[0].trial_id, std::vector<double>{1, 0.9}).ok());
  ASSERT_TRUE(t.Tell(ps[1].trial_id, std::vector<double>{2, 0.8}).ok());
  ASSERT_TRUE(t.Tell(ps[2].trial_id, std::vector<double>{0.5, 0.5}).ok());
  ASSERT_TRUE(t.TellFailed(ps[3].trial_id).ok());
  std::vector<BestTrial> front = t.pareto_front();
  ASSERT_EQ(front.size(), 2u);
  EXPECT_EQ(front[0].trial_id, ps[0].trial_id);
  EXPECT_EQ(front[0].objectives, (std::vector<double>{1, 0.9}));
  EXPECT_EQ(front[1].trial_id, ps[2].trial_id);
  EXPECT_FALSE(t.best().has_value());
}

TEST(MultiObjectiveTest, WrongValueCountsAndSingleObjectiveAlgorithmsAreRefused) {
  Tuner t = MultiTuner(Algorithm::kNsga2, 1);
  auto ps = *t.Ask(1);
  EXPECT_EQ(t.Tell(ps[0].trial_id, 1.0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Tell(ps[0].trial_id, std::vector<double>{1, NAN}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(t.Tell(ps[0].trial_id, std::vector<double>{1, 2}).ok());
  TunerOptions o;
  o.objectives = {Direction::kMinimize, Direction::kMinimize};
  o.algorithm = Algorithm::kTpe;
  auto bad = Tuner::Create(Box(2), o);
  EXPECT_NE(bad.status().message().find("tpe optimizes one objective"), std::string::npos)
      << bad.status();
  o.algorithm = Algorithm::kNsga2;
  o.early_stopping = MedianStoppingOptions{};
  EXPECT_EQ(Tuner::Create(Box(2), o).status().code(), absl::StatusCode::kInvalidArgument);
  o.early_stopping = {};
  o.nsga2.population = 1;
  EXPECT_NE(Tuner::Create(Box(2), o).status().message().find("population"), std::string::npos);
}

TEST(MultiObjectiveTest, Nsga2ReplaysFromTheHistoryAndSeedsReproduce) {
  Tuner a = MultiTuner(Algorithm::kNsga2, 9);
  std::vector<std::pair<int64_t, Assignment>> history;
  for (int i = 0; i < 15; ++i) {
    auto ps = *a.Ask(3);
    for (const Proposal& p : ps) {
      history.push_back({p.trial_id, p.assignment});
      ASSERT_TRUE(a.Tell(p.trial_id, Zdt1(p.assignment)).ok());
    }
  }
  Tuner b = MultiTuner(Algorithm::kNsga2, 9);
  for (const auto& [id, assignment] : history) {
    ASSERT_TRUE(b.Register(id, assignment).ok());
    ASSERT_TRUE(b.Tell(id, Zdt1(assignment)).ok());
  }
  auto next_a = *a.Ask(5);
  auto next_b = *b.Ask(5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(next_a[i].assignment, next_b[i].assignment) << i;
  // The children are not random draws: past generation 0 they differ from
  // what another seed's tuner proposes after the same history.
  Tuner c = MultiTuner(Algorithm::kNsga2, 10);
  for (const auto& [id, assignment] : history) {
    ASSERT_TRUE(c.Register(id, assignment).ok());
    ASSERT_TRUE(c.Tell(id, Zdt1(assignment)).ok());
  }
  EXPECT_NE((*c.Ask(1))[0].assignment, next_a[0].assignment);
}

TEST(MultiObjectiveTest, Nsga2HandlesCategoricalsAndOneObjective) {
  TunerOptions o;
  o.algorithm = Algorithm::kNsga2;
  o.seed = 2;
  Tuner t = *Tuner::Create(*SearchSpace::Create({ParameterSpec::Double("x", 0, 1),
                                                 ParameterSpec::Categorical("c", {"a", "b", "c"})}),
                           o);
  double best = INFINITY;
  for (int i = 0; i < 100; ++i) {
    auto p = (*t.Ask(1))[0];
    const double x = std::get<double>(p.assignment[0]);
    const double y =
        (x - 0.7) * (x - 0.7) + (std::get<std::string>(p.assignment[1]) == "b" ? 0 : 1);
    best = std::min(best, y);
    ASSERT_TRUE(t.Tell(p.trial_id, y).ok());
  }
  EXPECT_LT(best, 0.01);
  EXPECT_EQ(std::get<std::string>(t.best()->assignment[1]), "b");
}

}  // namespace
}  // namespace gangway::tuner
