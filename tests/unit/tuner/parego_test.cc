#include "tuner/parego.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/tuner/zdt1.h"
#include "tuner/pareto.h"
#include "tuner/tuner.h"

namespace gangway::tuner {
namespace {

TEST(ParEgoTest, WeightsLieOnTheSimplexUniformlyAndFollowSeedAndIndex) {
  double mean0 = 0;
  int below_quarter = 0;
  const int draws = 4000;
  for (int i = 0; i < draws; ++i) {
    const std::vector<double> w = ParEgoWeights(7, i, 2);
    ASSERT_EQ(w.size(), 2u);
    EXPECT_GE(w[0], 0);
    EXPECT_GE(w[1], 0);
    EXPECT_NEAR(w[0] + w[1], 1, 1e-12);
    mean0 += w[0] / draws;
    below_quarter += w[0] < 0.25;
  }
  // Uniform on the 2-simplex: w0 is uniform on [0, 1].
  EXPECT_NEAR(mean0, 0.5, 0.02);
  EXPECT_NEAR(below_quarter / double{draws}, 0.25, 0.025);
  const std::vector<double> w3 = ParEgoWeights(7, 3, 3);
  EXPECT_NEAR(w3[0] + w3[1] + w3[2], 1, 1e-12);
  EXPECT_EQ(ParEgoWeights(7, 3, 3), w3);
  EXPECT_NE(ParEgoWeights(7, 4, 3), w3);
  EXPECT_NE(ParEgoWeights(8, 3, 3), w3);
}

TEST(ParEgoTest, NormalizesEachObjectiveOverTheTrials) {
  const std::vector<std::vector<double>> n = NormalizeLosses({{1, 10, 5}, {3, 30, 5}, {2, 25, 5}});
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(n[0], (std::vector<double>{0, 0, 0}));
  EXPECT_EQ(n[1], (std::vector<double>{1, 1, 0}));  // A constant objective maps to 0.
  EXPECT_DOUBLE_EQ(n[2][0], 0.5);
  EXPECT_DOUBLE_EQ(n[2][1], 0.75);
  EXPECT_TRUE(NormalizeLosses({}).empty());
}

TEST(ParEgoTest, AugmentedChebyshevMatchesAHandComputedCase) {
  // w.f = (0.14, 0.24): max 0.24, sum 0.38.
  const std::vector<double> f = {0.2, 0.8}, w = {0.7, 0.3};
  EXPECT_DOUBLE_EQ(AugmentedChebyshev(f, w), 0.24 + 0.05 * 0.38);
  EXPECT_DOUBLE_EQ(AugmentedChebyshev(f, w, 0), 0.24);
  // A weakly dominated point ties on the max and loses on the sum.
  const std::vector<double> g = {0.3, 0.8};
  EXPECT_GT(AugmentedChebyshev(g, w), AugmentedChebyshev(f, w));
}

using mo_test::Box;
using mo_test::MultiTuner;
using mo_test::Zdt1;

TEST(ParEgoTest, ProposesWhatTheGpSamplerDoesOnTheScalarizedLosses) {
  // Completed, failed and pending trials interleaved: the scalar loss of
  // each completed trial must come from its own objective values.
  const SearchSpace space = Box(2);
  const std::vector<UnitPoint> units = {{0.1, 0.2}, {0.5, 0.5}, {0.9, 0.1}, {0.3, 0.7},
                                        {0.6, 0.9}, {0.2, 0.4}, {0.8, 0.6}};
  std::vector<Assignment> assignments;
  for (const UnitPoint& u : units) assignments.push_back(space.Decode(u));
  std::vector<std::vector<double>> losses(units.size());
  SamplerInput in;
  in.space = &space;
  in.trial_count = units.size();
  for (size_t i = 0; i < units.size(); ++i) {
    const UnitPoint u = space.Encode(assignments[i]);
    in.all.push_back(&assignments[i]);
    if (i == 2) {
      in.trials.push_back({int64_t(i), &assignments[i], KnownTrial::State::kFailed, 0, nullptr});
    } else if (i == 4) {
      in.trials.push_back({int64_t(i), &assignments[i], KnownTrial::State::kPending, 0, nullptr});
      in.pending.push_back(u);
    } else {
      losses[i] = {u[0] + u[1], 10 * (1 - u[0]) * (1 - u[0]) + u[1]};
      in.trials.push_back(
          {int64_t(i), &assignments[i], KnownTrial::State::kCompleted, losses[i][0], &losses[i]});
      in.completed.push_back({u, losses[i][0]});
    }
  }
  BayesianOptions options;
  options.initial_points = 3;
  const std::vector<Assignment> got = MakeParEgoSampler(options, 4)->Propose(in, 1);

  std::vector<std::vector<double>> done;
  for (const auto& l : losses) {
    if (!l.empty()) done.push_back(l);
  }
  const std::vector<std::vector<double>> n = NormalizeLosses(done);
  const std::vector<double> w = ParEgoWeights(4, in.trial_count, 2);
  SamplerInput scalar = in;
  for (size_t i = 0; i < n.size(); ++i) scalar.completed[i].loss = AugmentedChebyshev(n[i], w);
  const std::vector<Assignment> want = MakeBayesianSampler(space, options, 4)->Propose(scalar, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got, want);
  // Not the first objective's losses (what the plain GP sampler would see).
  EXPECT_NE(got, MakeBayesianSampler(space, options, 4)->Propose(in, 1));
}

TEST(ParEgoTest, SeedsReproduceAndAReplayedTunerProposesTheSame) {
  auto run = [](uint64_t seed) {
    Tuner t = MultiTuner(Algorithm::kBayesian, seed, 3);
    std::vector<Assignment> out;
    for (int i = 0; i < 12; ++i) {
      Proposal p = (*t.Ask(1))[0];
      out.push_back(p.assignment);
      EXPECT_TRUE(t.Tell(p.trial_id, Zdt1(p.assignment)).ok());
    }
    return out;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));

  Tuner a = MultiTuner(Algorithm::kBayesian, 5, 3);
  Tuner b = MultiTuner(Algorithm::kBayesian, 5, 3);
  for (int i = 0; i < 6; ++i) {
    const std::vector<Proposal> ps = *a.Ask(2);
    for (const Proposal& p : ps) {
      ASSERT_TRUE(a.Tell(p.trial_id, Zdt1(p.assignment)).ok());
      ASSERT_TRUE(b.Register(p.trial_id, p.assignment).ok());
      ASSERT_TRUE(b.Tell(p.trial_id, Zdt1(p.assignment)).ok());
    }
  }
  const std::vector<Proposal> next_a = *a.Ask(2), next_b = *b.Ask(2);
  ASSERT_EQ(next_a.size(), 2u);
  ASSERT_EQ(next_b.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(next_a[i].trial_id, next_b[i].trial_id);
    EXPECT_EQ(next_a[i].assignment, next_b[i].assignment) << i;
  }
}

TEST(ParEgoTest, ABatchIsTheSameAsAskingOneAtATimeAndSpreads) {
  Tuner a = MultiTuner(Algorithm::kBayesian, 6, 3);
  Tuner b = MultiTuner(Algorithm::kBayesian, 6, 3);
  for (int i = 0; i < 10; ++i) {
    Proposal p = (*a.Ask(1))[0];
    ASSERT_TRUE(a.Tell(p.trial_id, Zdt1(p.assignment)).ok());
    ASSERT_TRUE(b.Register(p.trial_id, p.assignment).ok());
    ASSERT_TRUE(b.Tell(p.trial_id, Zdt1(p.assignment)).ok());
  }
  const std::vector<Proposal> batch = *a.Ask(3);
  ASSERT_EQ(batch.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*b.Ask(1))[0].assignment, batch[i].assignment) << i;
  EXPECT_NE(batch[0].assignment, batch[1].assignment);
  EXPECT_NE(batch[1].assignment, batch[2].assignment);
  EXPECT_NE(batch[0].assignment, batch[2].assignment);
}

double Zdt1Hypervolume(Algorithm algorithm, uint64_t seed, int d, int trials) {
  Tuner t = MultiTuner(algorithm, seed, d);
  std::vector<Losses> seen;
  for (int k = 0; k < trials; ++k) {
    Proposal p = (*t.Ask(1))[0];
    seen.push_back(Zdt1(p.assignment));
    EXPECT_TRUE(t.Tell(p.trial_id, seen.back()).ok());
  }
  return Hypervolume(seen, {1.1, 11});
}

TEST(ParEgoTest, BeatsRandomSearchOnZdt1ByHypervolume) {
  // 4 variables, 40 evaluations, 5 seeds. Measured over seeds 0-19: ParEGO
  // ahead on all 20, by 0.4 to 2.9 (mean 1.96) over random search's ~9.4.
  int wins = 0;
  double parego_sum = 0, random_sum = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const double parego = Zdt1Hypervolume(Algorithm::kBayesian, seed, 4, 40);
    const double random = Zdt1Hypervolume(Algorithm::kRandom, seed, 4, 40);
    wins += parego > random;
    parego_sum += parego;
    random_sum += random;
  }
  EXPECT_GE(wins, 4) << parego_sum << " vs " << random_sum;
  EXPECT_GT(parego_sum, random_sum + 5 * 1.0) << parego_sum << " vs " << random_sum;
}

TEST(ParEgoTest, CreateTakesBayesianWithSeveralObjectivesButNotTheSingleObjectiveOnes) {
  TunerOptions o;
  o.objectives = {Direction::kMinimize, Direction::kMaximize};
  o.algorithm = Algorithm::kBayesian;
  EXPECT_TRUE(Tuner::Create(Box(2), o).ok());
  for (Algorithm a : {Algorithm::kTpe, Algorithm::kMultivariateTpe, Algorithm::kCmaEs,
                      Algorithm::kHyperband, Algorithm::kPbt}) {
    o.algorithm = a;
    absl::StatusOr<Tuner> t = Tuner::Create(Box(2), o);
    const std::string want = std::string(AlgorithmName(a)) +
                             " optimizes one objective; with several use nsga2, bayesian, random, "
                             "sobol or grid";
    EXPECT_NE(t.status().message().find(want), std::string::npos) << t.status();
  }
  // Early stopping stays refused with several objectives.
  o.algorithm = Algorithm::kBayesian;
  o.early_stopping = MedianStoppingOptions{};
  EXPECT_EQ(Tuner::Create(Box(2), o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gangway::tuner
