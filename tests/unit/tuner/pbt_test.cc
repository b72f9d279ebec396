#include "tuner/pbt.h"

#include <algorithm>
#include <cmath>

#include "gtest/gtest.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

SearchSpace Space() {
  return *SearchSpace::Create({ParameterSpec::Double("lr", 1e-4, 1, Scale::kLog),
                               ParameterSpec::Int("width", 1, 64),
                               ParameterSpec::Categorical("opt", {"sgd", "adam", "lamb"})});
}

Tuner MakeTuner(uint64_t seed, int population = 4) {
  TunerOptions o;
  o.algorithm = Algorithm::kPbt;
  o.seed = seed;
  o.pbt.population = population;
  return *Tuner::Create(Space(), o);
}

double Loss(const Assignment& a) { return std::abs(std::log10(std::get<double>(a[0]) / 0.01)); }

TEST(PbtTest, GenerationsWaitThenTheWorstExploitTheBestAndTheRestContinue) {
  Tuner t = MakeTuner(1);
  auto gen0 = *t.Ask(10);
  ASSERT_EQ(gen0.size(), 4u);  // one generation
  for (const Proposal& p : gen0) EXPECT_FALSE(p.parent.has_value());
  const std::vector<double> losses = {0.3, 0.1, 0.9, 0.5};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.Tell(gen0[i].trial_id, losses[i]).ok());
  EXPECT_TRUE(t.Ask(4)->empty());  // member 3 still runs
  ASSERT_TRUE(t.Tell(gen0[3].trial_id, losses[3]).ok());
  auto gen1 = *t.Ask(10);
  ASSERT_EQ(gen1.size(), 4u);
  // Population 4, truncation 1/4: member 2 (worst) exploits member 1 (best);
  // the others continue from their own trial with the same parameters.
  for (int m : {0, 1, 3}) {
    EXPECT_EQ(gen1[m].parent, gen0[m].trial_id) << m;
    EXPECT_EQ(gen1[m].assignment, gen0[m].assignment) << m;
  }
  EXPECT_EQ(gen1[2].parent, gen0[1].trial_id);
  EXPECT_NE(gen1[2].assignment, gen0[1].assignment);  // explored
  EXPECT_TRUE(Space().Check(gen1[2].assignment).ok());
}

TEST(PbtTest, AFailedMemberExploitsAndAllFailedStartsOver) {
  Tuner t = MakeTuner(2);
  auto gen0 = *t.Ask(4);
  ASSERT_TRUE(t.TellFailed(gen0[0].trial_id).ok());
  for (int i = 1; i < 4; ++i) ASSERT_TRUE(t.Tell(gen0[i].trial_id, i).ok());
  auto gen1 = *t.Ask(4);
  EXPECT_EQ(gen1[0].parent, gen0[1].trial_id);
  for (const Proposal& p : gen1) ASSERT_TRUE(t.TellFailed(p.trial_id).ok());
  auto gen2 = *t.Ask(4);
  ASSERT_EQ(gen2.size(), 4u);
  for (const Proposal& p : gen2) EXPECT_FALSE(p.parent.has_value());
}

TEST(PbtTest, ExploringMovesTheLearningRateTowardsTheOptimum) {
  // The best member continues with its parameters, so the last generation
  // is never worse than the first; exploring should make it better.
  int better = 0;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    Tuner t = MakeTuner(seed, 8);
    double first = INFINITY, last = INFINITY;
    for (int g = 0; g < 12; ++g) {
      auto ps = *t.Ask(8);
      ASSERT_EQ(ps.size(), 8u);
      for (const Proposal& p : ps) {
        const double y = Loss(p.assignment);
        (g == 0 ? first : last) = std::min(g == 0 ? first : last, y);
        ASSERT_TRUE(t.Tell(p.trial_id, y).ok());
      }
      if (g != 11) last = INFINITY;
    }
    EXPECT_LE(last, first) << seed;
    better += last < first;
  }
  EXPECT_GE(better, 6);
}

TEST(PbtTest, ARestartedTunerReplaysTheHistoryWithTheSameParents) {
  Tuner a = MakeTuner(5);
  std::vector<Proposal> history;
  for (int g = 0; g < 3; ++g) {
    auto ps = *a.Ask(4);
    for (const Proposal& p : ps) {
      history.push_back(p);
      ASSERT_TRUE(a.Tell(p.trial_id, Loss(p.assignment)).ok());
    }
  }
  Tuner b = MakeTuner(5);
  for (const Proposal& p : history) {
    ASSERT_TRUE(b.Register(p.trial_id, p.assignment).ok());
    ASSERT_TRUE(b.Tell(p.trial_id, Loss(p.assignment)).ok());
  }
  auto next_a = *a.Ask(4);
  auto next_b = *b.Ask(4);
  ASSERT_EQ(next_a.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(next_a[i].assignment, next_b[i].assignment) << i;
    EXPECT_EQ(next_a[i].parent, next_b[i].parent) << i;
  }
}

TEST(PbtTest, BadSettingsNameTheSetting) {
  TunerOptions o;
  o.algorithm = Algorithm::kPbt;
  o.pbt.population = 1;
  EXPECT_NE(Tuner::Create(Space(), o).status().message().find("population"), std::string::npos);
  o.pbt.population = 4;
  o.pbt.truncation = 0.9;
  EXPECT_NE(Tuner::Create(Space(), o).status().message().find("truncationPercent"),
            std::string::npos);
  EXPECT_EQ(ParseAlgorithm("PBT").value(), Algorithm::kPbt);
}

}  // namespace
}  // namespace gangway::tuner
