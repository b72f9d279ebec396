// Studies (gangway.v1.Studies) with several objectives: Tell takes one value
// per objective, BestTrials returns the Pareto front; and BestTrials of a
// single-objective study.
#include "coordinator/studies.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gangway::coordinator {
namespace {

v1::CreateStudyRequest TwoObjectives(const std::string& algorithm) {
  v1::CreateStudyRequest req;
  req.set_name("front");
  v1::ParameterSpec* x = req.add_parameters();
  x->set_name("x");
  x->set_type(v1::ParameterSpec::TYPE_DOUBLE);
  x->set_min(0);
  x->set_max(1);
  req.add_objectives()->set_metric("error");  // minimized
  v1::ObjectiveSpec* speed = req.add_objectives();
  speed->set_metric("speed");
  speed->set_maximize(true);
  req.mutable_algorithm()->set_name(algorithm);
  req.mutable_algorithm()->set_seed(3);
  return req;
}

std::vector<int64_t> Ask(Studies& studies, const std::string& id, int n) {
  v1::AskRequest ask;
  ask.set_study_id(id);
  ask.set_count(n);
  absl::StatusOr<v1::AskResponse> asked = studies.Ask(ask);
  EXPECT_TRUE(asked.ok()) << asked.status();
  std::vector<int64_t> out;
  if (asked.ok()) {
    for (const auto& p : asked->proposals()) out.push_back(p.trial());
  }
  return out;
}

absl::Status TellValues(Studies& studies, const std::string& id, int64_t trial,
                        std::vector<double> values) {
  v1::TellRequest tell;
  tell.set_study_id(id);
  tell.set_trial(trial);
  for (double v : values) tell.add_values(v);
  return studies.Tell(tell).status();
}

TEST(StudiesTest, SeveralObjectivesTakeOneValueEachAndBestTrialsIsTheParetoFront) {
  for (const std::string algorithm : {"nsga2", "random", "bayesian"}) {
    SCOPED_TRACE(algorithm);
    Studies studies;
    absl::StatusOr<v1::Study> study = studies.Create(TwoObjectives(algorithm));
    ASSERT_TRUE(study.ok()) << study.status();
    const std::vector<int64_t> t = Ask(studies, study->id(), 4);
    ASSERT_EQ(t.size(), 4u);
    // (error, speed): error minimized, speed maximized. The last is worse
    // than the first on both, so it is dominated; the others trade off.
    ASSERT_TRUE(TellValues(studies, study->id(), t[0], {1, 1}).ok());
    ASSERT_TRUE(TellValues(studies, study->id(), t[1], {2, 3}).ok());
    ASSERT_TRUE(TellValues(studies, study->id(), t[2], {0.5, 0.5}).ok());
    ASSERT_TRUE(TellValues(studies, study->id(), t[3], {3, 0}).ok());

    v1::BestTrialsRequest best;
    best.set_study_id(study->id());
    absl::StatusOr<v1::BestTrialsResponse> front = studies.BestTrials(best);
    ASSERT_TRUE(front.ok()) << front.status();
    ASSERT_EQ(front->trials_size(), 3);
    const std::vector<std::vector<double>> want = {{1, 1}, {2, 3}, {0.5, 0.5}};
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(front->trials(i).trial(), t[i]);
      EXPECT_EQ(
          std::vector<double>(front->trials(i).values().begin(), front->trials(i).values().end()),
          want[i]);
      EXPECT_TRUE(front->trials(i).params().contains("x"));
    }
    // Asks go on past the initial points (for bayesian, from the GP on a
    // scalarization of the two objectives).
    EXPECT_EQ(Ask(studies, study->id(), 3).size(), 3u);
  }
}

// With a clock (the server's), a study whose proposals took long hands out
// about 50 ms of them per Ask, at least one, so a client asking for a large
// batch does not hold the coordinator's loop; once they are fast again, all.
TEST(StudiesTest, ASlowStudyHandsOutFewerProposalsPerAskWithAClock) {
  Studies studies;
  int64_t now = 0, step = 0;
  studies.set_clock([&] { return now += step; });
  absl::StatusOr<v1::Study> study = studies.Create(TwoObjectives("random"));
  ASSERT_TRUE(study.ok()) << study.status();
  step = 100;                                           // every ask takes 100 ms
  EXPECT_EQ(Ask(studies, study->id(), 4).size(), 4u);   // nothing to go by yet
  EXPECT_EQ(Ask(studies, study->id(), 10).size(), 2u);  // 25 ms each before
  EXPECT_EQ(Ask(studies, study->id(), 10).size(), 1u);  // 50 ms each before
  EXPECT_EQ(Ask(studies, study->id(), 10).size(), 1u);
  step = 0;
  EXPECT_EQ(Ask(studies, study->id(), 10).size(), 1u);  // 100 ms before
  EXPECT_EQ(Ask(studies, study->id(), 10).size(), 10u);
}

TEST(StudiesTest, ATellWithTheWrongNumberOfValuesNamesHowManyTheStudyHas) {
  Studies studies;
  absl::StatusOr<v1::Study> study = studies.Create(TwoObjectives("nsga2"));
  ASSERT_TRUE(study.ok()) << study.status();
  const std::vector<int64_t> t = Ask(studies, study->id(), 1);
  ASSERT_EQ(t.size(), 1u);
  absl::Status one = TellValues(studies, study->id(), t[0], {1});
  EXPECT_EQ(one.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(one.message().find("has 2 objectives, so Tell needs 2 values"), std::string::npos)
      << one.message();
  // `value` alone is one value too.
  v1::TellRequest plain;
  plain.set_study_id(study->id());
  plain.set_trial(t[0]);
  plain.set_value(0.5);
  EXPECT_EQ(studies.Tell(plain).status().code(), absl::StatusCode::kInvalidArgument);
  // The trial is still pending: a right Tell lands.
  EXPECT_TRUE(TellValues(studies, study->id(), t[0], {1, 2}).ok());
}

TEST(StudiesTest, SeveralObjectivesNeedAnAlgorithmThatTakesThemAndAtLeastTwo) {
  Studies studies;
  absl::StatusOr<v1::Study> tpe = studies.Create(TwoObjectives("tpe"));
  EXPECT_EQ(tpe.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tpe.status().message().find("tpe optimizes one objective"), std::string::npos)
      << tpe.status().message();

  v1::CreateStudyRequest lone = TwoObjectives("nsga2");
  lone.mutable_objectives()->RemoveLast();
  absl::StatusOr<v1::Study> single = studies.Create(lone);
  EXPECT_EQ(single.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(single.status().message().find("needs two or more objectives"), std::string::npos)
      << single.status().message();

  // Metrics may be left out (values are told, not read from metrics); two
  // that are named alike are refused as in a sweep.
  v1::CreateStudyRequest unnamed = TwoObjectives("nsga2");
  for (auto& o : *unnamed.mutable_objectives()) o.clear_metric();
  EXPECT_TRUE(studies.Create(unnamed).ok());
  v1::CreateStudyRequest twice = TwoObjectives("nsga2");
  twice.mutable_objectives(1)->set_metric("error");
  absl::StatusOr<v1::Study> dup = studies.Create(twice);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("listed twice"), std::string::npos)
      << dup.status().message();
}

TEST(StudiesTest, BestTrialsOfOneObjectiveIsTheBestTrial) {
  Studies studies;
  v1::CreateStudyRequest req = TwoObjectives("random");
  req.clear_objectives();
  req.mutable_objective()->set_metric("loss");
  absl::StatusOr<v1::Study> study = studies.Create(req);
  ASSERT_TRUE(study.ok()) << study.status();
  const std::vector<int64_t> t = Ask(studies, study->id(), 3);
  ASSERT_EQ(t.size(), 3u);
  const std::vector<double> losses = {0.7, 0.2, 0.9};
  for (int i = 0; i < 3; ++i) {
    v1::TellRequest tell;
    tell.set_study_id(study->id());
    tell.set_trial(t[i]);
    tell.set_value(losses[i]);
    ASSERT_TRUE(studies.Tell(tell).ok());
  }
  v1::BestTrialsRequest best;
  best.set_study_id(study->id());
  absl::StatusOr<v1::BestTrialsResponse> out = studies.BestTrials(best);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->trials_size(), 1);
  EXPECT_EQ(out->trials(0).trial(), t[1]);
  ASSERT_EQ(out->trials(0).values_size(), 1);
  EXPECT_EQ(out->trials(0).values(0), 0.2);
  // Two values for one objective are refused.
  const std::vector<int64_t> more = Ask(studies, study->id(), 1);
  ASSERT_EQ(more.size(), 1u);
  absl::Status two = TellValues(studies, study->id(), more[0], {0.1, 0.2});
  EXPECT_EQ(two.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(two.message().find("has one objective"), std::string::npos) << two.message();

  best.set_study_id("no-such-study");
  EXPECT_EQ(studies.BestTrials(best).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gangway::coordinator
