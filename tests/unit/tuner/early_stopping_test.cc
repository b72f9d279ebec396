#include "tuner/early_stopping.h"

#include "gtest/gtest.h"

namespace gangway::tuner {
namespace {

std::vector<const Series*> Ptrs(const std::vector<Series>& v) {
  std::vector<const Series*> out;
  for (const Series& s : v) out.push_back(&s);
  return out;
}

TEST(MedianStoppingTest, StopsTrialsWorseThanMedianRunningAverage) {
  // Running averages at step 5: 2.0, 3.0, 4.0 -> median 3.0.
  const std::vector<Series> done = {
      {{1, 3.0}, {3, 2.0}, {5, 1.0}, {9, 0.5}},
      {{1, 4.0}, {3, 3.0}, {5, 2.0}},
      {{1, 5.0}, {3, 4.0}, {5, 3.0}},
  };
  const MedianStoppingOptions o{.min_trials = 3, .start_step = 4};
  const auto ptrs = Ptrs(done);
  EXPECT_EQ(MedianStoppingDecision(o, {{1, 9.0}, {5, 3.5}}, ptrs), Decision::kStop);
  // Best so far counts, not the last value.
  EXPECT_EQ(MedianStoppingDecision(o, {{1, 2.5}, {5, 3.5}}, ptrs), Decision::kContinue);
  // Equal to the median is not strictly worse.
  EXPECT_EQ(MedianStoppingDecision(o, {{5, 3.0}}, ptrs), Decision::kContinue);
  // Before start_step: no decision.
  EXPECT_EQ(MedianStoppingDecision(o, {{1, 99.0}, {3, 99.0}}, ptrs), Decision::kContinue);
  // Too few completed trials.
  const std::vector<const Series*> two(ptrs.begin(), ptrs.begin() + 2);
  EXPECT_EQ(MedianStoppingDecision(o, {{5, 99.0}}, two), Decision::kContinue);
  // Running averages use only values up to the step: at step 3 the averages
  // are 2.5, 3.5, 4.5 -> median 3.5.
  const MedianStoppingOptions early{.min_trials = 3, .start_step = 0};
  EXPECT_EQ(MedianStoppingDecision(early, {{3, 3.4}}, ptrs), Decision::kContinue);
  EXPECT_EQ(MedianStoppingDecision(early, {{3, 3.6}}, ptrs), Decision::kStop);
}

TEST(AshaTest, Rungs) {
  EXPECT_EQ(AshaRungs({.min_resource = 1, .reduction_factor = 3}, 100),
            (std::vector<int64_t>{1, 3, 9, 27, 81}));
  EXPECT_EQ(AshaRungs({.min_resource = 2, .reduction_factor = 2, .max_resource = 16}, 100),
            (std::vector<int64_t>{2, 4, 8}));
}

TEST(AshaTest, PromotesTopFractionAtEachRung) {
  const AshaOptions o{.min_resource = 1, .reduction_factor = 3};
  // Values recorded at rung 1 by six other trials.
  std::vector<Series> others = {{{1, 0.1}}, {{1, 0.2}}, {{1, 0.3}},
                                {{1, 0.4}}, {{1, 0.5}}, {{1, 0.6}}};
  const auto ptrs = Ptrs(others);
  // Seven values at rung 1: the best floor(7 / 3) = 2 go on.
  EXPECT_EQ(AshaDecision(o, {{1, 0.15}}, ptrs), Decision::kContinue);
  EXPECT_EQ(AshaDecision(o, {{1, 0.25}}, ptrs), Decision::kStop);
  // Between rungs nothing is decided.
  EXPECT_EQ(AshaDecision(o, {{1, 0.15}, {2, 9.0}}, ptrs), Decision::kContinue);
  // The first trial to reach a rung goes on; the second only if better.
  EXPECT_EQ(AshaDecision(o, {{1, 0.05}, {3, 5.0}}, ptrs), Decision::kContinue);
  const std::vector<Series> one = {{{1, 0.1}, {3, 1.0}}};
  EXPECT_EQ(AshaDecision(o, {{1, 0.05}, {3, 2.0}}, Ptrs(one)), Decision::kStop);
  EXPECT_EQ(AshaDecision(o, {{1, 0.05}, {3, 0.5}}, Ptrs(one)), Decision::kContinue);
  // A report that jumps over a rung is judged there with its value.
  EXPECT_EQ(AshaDecision(o, {{5, 2.0}}, Ptrs(one)), Decision::kStop);
  // Rungs at or above max_resource are not decided on.
  const AshaOptions capped{.min_resource = 1, .reduction_factor = 3, .max_resource = 3};
  EXPECT_EQ(AshaDecision(capped, {{1, 0.05}, {3, 2.0}}, Ptrs(one)), Decision::kContinue);
}

TEST(EarlyStoppingTest, ValidatesOptions) {
  EXPECT_FALSE(Validate(MedianStoppingOptions{.min_trials = 0}).ok());
  EXPECT_FALSE(Validate(AshaOptions{.min_resource = 0}).ok());
  EXPECT_FALSE(Validate(AshaOptions{.reduction_factor = 1.5}).ok());
  EXPECT_FALSE(Validate(AshaOptions{.min_resource = 4, .max_resource = 2}).ok());
  EXPECT_TRUE(Validate(AshaOptions{}).ok());
}

}  // namespace
}  // namespace gangway::tuner
