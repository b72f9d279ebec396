// NSGA-II's proposals against the trials already known: repeats are drawn
// again (multi_objective_test.cc has its quality and replay).
#include <cmath>
#include <set>

#include "gtest/gtest.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

// Two ints of six values each: 36 points, so children often copy a parent
// or snap back onto one.
Tuner SmallGrid(uint64_t seed) {
  TunerOptions o;
  o.algorithm = Algorithm::kNsga2;
  o.seed = seed;
  o.nsga2.population = 6;
  o.objectives = {Direction::kMinimize, Direction::kMinimize};
  return *Tuner::Create(
      *SearchSpace::Create({ParameterSpec::Int("a", 0, 5), ParameterSpec::Int("b", 0, 5)}), o);
}

std::vector<double> TradeOff(const Assignment& x) {
  const double a = static_cast<double>(std::get<int64_t>(x[0]));
  const double b = static_cast<double>(std::get<int64_t>(x[1]));
  return {a + 0.1 * b, (5 - a) + 0.1 * b};
}

TEST(Nsga2Test, NoProposalRepeatsATriedAssignmentWhileUntriedOnesRemain) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    SCOPED_TRACE(seed);
    Tuner t = SmallGrid(seed);
    std::set<Assignment> seen;
    // Batches of 3 (so repeats within a batch count too), 24 of 36 points.
    for (int i = 0; i < 8; ++i) {
      auto ps = *t.Ask(3);
      for (const Proposal& p : ps) {
        EXPECT_TRUE(seen.insert(p.assignment).second) << "trial " << p.trial_id << " repeats";
        ASSERT_TRUE(t.Tell(p.trial_id, TradeOff(p.assignment)).ok());
      }
    }
  }
}

// A log-scale double beside an int, as a learning rate and a width: a
// child that copies a parent decodes to within a bit of the parent's value,
// and is a repeat all the same.
TEST(Nsga2Test, NoCopyOfAParentOnALogScale) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    SCOPED_TRACE(seed);
    TunerOptions o;
    o.algorithm = Algorithm::kNsga2;
    o.seed = seed;
    o.nsga2.population = 8;
    o.objectives = {Direction::kMinimize, Direction::kMinimize};
    Tuner t =
        *Tuner::Create(*SearchSpace::Create({ParameterSpec::Double("lr", 1e-4, 1, Scale::kLog),
                                             ParameterSpec::Int("width", 8, 512, Scale::kLog)}),
                       o);
    std::vector<std::pair<double, int64_t>> seen;
    for (int i = 0; i < 40; ++i) {
      auto ps = *t.Ask(1);
      const double lr = std::get<double>(ps[0].assignment[0]);
      const int64_t width = std::get<int64_t>(ps[0].assignment[1]);
      for (const auto& [l, w] : seen) {
        EXPECT_FALSE(w == width && std::abs(std::log(l / lr)) < 1e-9)
            << "trial " << ps[0].trial_id << " repeats lr=" << lr << " width=" << width;
      }
      seen.push_back({lr, width});
      const double d = std::log10(lr / 0.01);
      ASSERT_TRUE(
          t.Tell(ps[0].trial_id, std::vector<double>{d * d + 8.0 / static_cast<double>(width),
                                                     0.5 + static_cast<double>(width) / 64})
              .ok());
    }
  }
}

TEST(Nsga2Test, AnExhaustedSpaceStillGetsProposals) {
  TunerOptions o;
  o.algorithm = Algorithm::kNsga2;
  o.nsga2.population = 2;
  o.objectives = {Direction::kMinimize, Direction::kMinimize};
  Tuner t = *Tuner::Create(*SearchSpace::Create({ParameterSpec::Int("a", 0, 1)}), o);
  for (int i = 0; i < 6; ++i) {
    auto ps = t.Ask(1);
    ASSERT_TRUE(ps.ok()) << ps.status();
    ASSERT_EQ(ps->size(), 1u);
    const double a = static_cast<double>(std::get<int64_t>((*ps)[0].assignment[0]));
    ASSERT_TRUE(t.Tell((*ps)[0].trial_id, std::vector<double>{a, 1 - a}).ok());
  }
}

}  // namespace
}  // namespace gangway::tuner
