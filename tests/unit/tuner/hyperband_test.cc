#include "tuner/hyperband.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "gtest/gtest.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

SearchSpace Space(int64_t max_epochs) {
  return *SearchSpace::Create({ParameterSpec::Double("x", 0, 1),
                               ParameterSpec::Int("epochs", 1, max_epochs),
                               ParameterSpec::Categorical("opt", {"sgd", "adam"})});
}

Tuner MakeTuner(int64_t max_epochs, uint64_t seed = 1) {
  TunerOptions o;
  o.algorithm = Algorithm::kHyperband;
  o.seed = seed;
  o.hyperband.resource_parameter = "epochs";
  return *Tuner::Create(Space(max_epochs), o);
}

// Lower with more epochs and x near 0.3.
double Loss(const Assignment& a) {
  const double x = std::get<double>(a[0]);
  return (x - 0.3) * (x - 0.3) + 1.0 / static_cast<double>(std::get<int64_t>(a[1]));
}

int64_t Epochs(const Proposal& p) { return std::get<int64_t>(p.assignment[1]); }

TEST(HyperbandTest, ScheduleIsThePapersTableForR81Eta3) {
  HyperbandOptions o;
  o.resource_parameter = "epochs";
  auto brackets = HyperbandSchedule(Space(81), o);
  ASSERT_TRUE(brackets.ok()) << brackets.status();
  ASSERT_EQ(brackets->size(), 5u);
  EXPECT_EQ((*brackets)[0].sizes, (std::vector<int>{81, 27, 9, 3, 1}));
  EXPECT_EQ((*brackets)[0].resources, (std::vector<double>{1, 3, 9, 27, 81}));
  EXPECT_EQ((*brackets)[1].sizes, (std::vector<int>{34, 11, 3, 1}));
  EXPECT_EQ((*brackets)[2].sizes, (std::vector<int>{15, 5, 1}));
  EXPECT_EQ((*brackets)[3].sizes, (std::vector<int>{8, 2}));
  EXPECT_EQ((*brackets)[4].sizes, (std::vector<int>{5}));
  EXPECT_EQ((*brackets)[4].resources, (std::vector<double>{81}));
}

TEST(HyperbandTest, RungsWaitAndPromoteTheBestWithEtaTimesTheResource) {
  Tuner t = MakeTuner(9);  // Brackets: 9@1 -> 3@3 -> 1@9; 5@3 -> 1@9; 3@9.
  auto first = t.Ask(100);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 9u);  // Rung 1 waits for all of rung 0.
  for (const Proposal& p : *first) EXPECT_EQ(Epochs(p), 1);
  std::vector<std::pair<double, int64_t>> losses;
  for (size_t i = 0; i + 1 < first->size(); ++i) {
    const double y = Loss((*first)[i].assignment);
    losses.push_back({y, static_cast<int64_t>(i)});
    ASSERT_TRUE(t.Tell((*first)[i].trial_id, y).ok());
  }
  EXPECT_TRUE(t.Ask(5)->empty());  // One trial of rung 0 still runs.
  ASSERT_TRUE(t.TellFailed(first->back().trial_id).ok());
  std::sort(losses.begin(), losses.end());
  auto second = t.Ask(100);
  ASSERT_EQ(second->size(), 3u);
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(Epochs((*second)[j]), 3);
    // Same configuration as the j-th best of rung 0, only the resource grew.
    const Assignment& parent = (*first)[losses[j].second].assignment;
    EXPECT_EQ((*second)[j].assignment[0], parent[0]);
    EXPECT_EQ((*second)[j].assignment[2], parent[2]);
  }
  for (const Proposal& p : *second) ASSERT_TRUE(t.Tell(p.trial_id, Loss(p.assignment)).ok());
  // The bracket's last trial, and beside it the next bracket's first rung
  // (5 new configurations at 3 epochs): a last rung holds nothing up.
  auto third = t.Ask(100);
  ASSERT_EQ(third->size(), 6u);
  EXPECT_EQ(Epochs((*third)[0]), 9);
  EXPECT_EQ((*third)[0].assignment[0], (*second)[0].assignment[0]);
  for (size_t i = 1; i < third->size(); ++i) EXPECT_EQ(Epochs((*third)[i]), 3);
}

TEST(HyperbandTest, FailedTrialsAreNotPromotedAndAnAllFailedRungEndsTheBracket) {
  Tuner t = MakeTuner(9);
  auto rung0 = t.Ask(9);
  // Only two complete: rung 1 gets two trials, not three.
  for (size_t i = 0; i < rung0->size(); ++i) {
    ASSERT_TRUE(
        (i < 2 ? t.Tell((*rung0)[i].trial_id, 1.0 * i) : t.TellFailed((*rung0)[i].trial_id)).ok());
  }
  auto rung1 = t.Ask(100);
  ASSERT_EQ(rung1->size(), 2u);
  for (const Proposal& p : *rung1) ASSERT_TRUE(t.TellFailed(p.trial_id).ok());
  // Rung 1 all failed: no rung 2; bracket 2 starts (5 at 3 epochs).
  auto next = t.Ask(100);
  ASSERT_EQ(next->size(), 5u);
  for (const Proposal& p : *next) EXPECT_EQ(Epochs(p), 3);
}

TEST(HyperbandTest, RoundsRepeatAndEveryTrialGetsAValidResource) {
  Tuner t = MakeTuner(27);
  std::map<int64_t, int> per_resource;
  int asked = 0;
  while (asked < 200) {
    auto ps = t.Ask(4);
    ASSERT_TRUE(ps.ok());
    ASSERT_FALSE(ps->empty()) << "nothing pending, yet hyperband waits";
    for (const Proposal& p : *ps) {
      ++per_resource[Epochs(p)];
      ASSERT_TRUE(t.Tell(p.trial_id, Loss(p.assignment)).ok());
    }
    asked += ps->size();
  }
  std::vector<int64_t> resources;
  for (const auto& [r, n] : per_resource) resources.push_back(r);
  EXPECT_EQ(resources, (std::vector<int64_t>{1, 3, 9, 27}));
  // One round of R = 27, eta = 3 is 27+9+3+1 + 12+4+1 + 6+2 + 4 = 69 trials.
  EXPECT_GT(asked, 2 * 69);
}

// Runs `total` trials, `parallel` at a time, completing the oldest first.
std::vector<Assignment> Drive(Tuner& t, int total, int parallel, std::vector<Proposal>* running) {
  std::vector<Assignment> seen;
  int asked = 0;
  while (asked < total) {
    auto ps = t.Ask(std::min(parallel - static_cast<int>(running->size()), total - asked));
    for (const Proposal& p : *ps) {
      running->push_back(p);
      seen.push_back(p.assignment);
    }
    asked += ps->size();
    if (running->empty()) break;
    const Proposal done = running->front();
    running->erase(running->begin());
    EXPECT_TRUE(t.Tell(done.trial_id, Loss(done.assignment)).ok());
  }
  return seen;
}

TEST(HyperbandTest, ARestartedTunerReplaysTheHistoryAndProposesTheSame) {
  Tuner a = MakeTuner(27, 5);
  std::vector<Proposal> running;
  Drive(a, 40, 3, &running);
  // Rebuild from the history a store would hold: trials in id order,
  // finished ones told, running ones left pending.
  Tuner b = MakeTuner(27, 5);
  Tuner c = MakeTuner(27, 5);
  std::vector<Proposal> running_c;
  std::vector<Assignment> seen_c = Drive(c, 40, 3, &running_c);
  for (size_t i = 0; i < seen_c.size(); ++i) {
    ASSERT_TRUE(b.Register(static_cast<int64_t>(i), seen_c[i]).ok());
    const bool still_running =
        std::any_of(running_c.begin(), running_c.end(),
                    [&](const Proposal& p) { return p.trial_id == static_cast<int64_t>(i); });
    if (!still_running) {
      ASSERT_TRUE(b.Tell(static_cast<int64_t>(i), Loss(seen_c[i])).ok());
    }
  }
  std::vector<Proposal> running_b = running_c;
  std::vector<Assignment> after_a = Drive(a, 30, 3, &running);
  std::vector<Assignment> after_b = Drive(b, 30, 3, &running_b);
  EXPECT_EQ(after_a, after_b);
}

TEST(HyperbandTest, SameSeedSameProposalsOtherSeedOthers) {
  auto run = [](uint64_t seed) {
    Tuner t = MakeTuner(27, seed);
    std::vector<Proposal> running;
    return Drive(t, 60, 2, &running);
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

TEST(HyperbandTest, BadSettingsNameTheSetting) {
  TunerOptions o;
  o.algorithm = Algorithm::kHyperband;
  auto missing = Tuner::Create(Space(9), o);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("resourceParameter: required"), std::string::npos)
      << missing.status();
  o.hyperband.resource_parameter = "opt";
  EXPECT_NE(Tuner::Create(Space(9), o).status().message().find("must be an int or a double"),
            std::string::npos);
  o.hyperband.resource_parameter = "x";  // min 0
  EXPECT_NE(Tuner::Create(Space(9), o).status().message().find("needs min > 0"), std::string::npos);
  o.hyperband.resource_parameter = "nope";
  EXPECT_NE(Tuner::Create(Space(9), o).status().message().find("no parameter named \"nope\""),
            std::string::npos);
  o.hyperband.resource_parameter = "epochs";
  o.hyperband.reduction_factor = 1;
  EXPECT_NE(Tuner::Create(Space(9), o).status().message().find("reductionFactor"),
            std::string::npos);
  o.hyperband.reduction_factor = 2;
  auto huge = Tuner::Create(Space(int64_t{1} << 40), o);
  EXPECT_NE(huge.status().message().find("more than 100000 trials"), std::string::npos)
      << huge.status();
}

}  // namespace
}  // namespace gangway::tuner
