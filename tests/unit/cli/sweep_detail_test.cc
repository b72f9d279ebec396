// `gangway get SWEEP` for a multi-objective sweep: one column per
// objective, the Pareto front first and marked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/sweeps.h"

namespace gangway::cli {
namespace {

using ::testing::HasSubstr;

v1::Sweep TwoObjectiveSweep() {
  v1::Sweep s;
  s.set_id("mo-1");
  s.set_state(v1::SWEEP_STATE_SUCCEEDED);
  auto* loss = s.mutable_spec()->add_objectives();
  loss->set_metric("loss");
  auto* acc = s.mutable_spec()->add_objectives();
  acc->set_metric("acc");
  acc->set_maximize(true);
  *s.mutable_spec()->mutable_objective() = *loss;
  s.mutable_spec()->set_max_trials(3);
  const std::vector<std::vector<double>> values = {{0.5, 0.8}, {0.2, 0.6}, {0.9, 0.7}};
  for (int i = 0; i < 3; ++i) {
    v1::Trial* t = s.add_trials();
    t->set_number(i + 1);
    t->set_state(v1::TRIAL_STATE_SUCCEEDED);
    t->set_has_objective(true);
    t->set_objective(values[i][0]);
    for (double v : values[i]) t->add_objective_values(v);
    (*t->mutable_params())["x"] = std::to_string(i);
    t->set_job_id("mo-" + std::to_string(i + 2));
  }
  s.add_pareto_front(1);
  s.add_pareto_front(2);
  return s;
}

TEST(SweepDetailTest, MultiObjectiveShowsEveryObjectiveAndMarksTheFrontFirst) {
  const std::string text = SweepDetail(TwoObjectiveSweep(), 0);
  EXPECT_THAT(text, HasSubstr("PARETO FRONT 2 trials (marked *)"));
  EXPECT_THAT(text, HasSubstr("loss (min)"));
  EXPECT_THAT(text, HasSubstr("acc (max)"));
  // Front trials (2 then 1, by the first objective) before trial 3.
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find("x=") != std::string::npos) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("*"));
  EXPECT_THAT(lines[0], HasSubstr("0.2"));
  EXPECT_THAT(lines[1], HasSubstr("*"));
  EXPECT_THAT(lines[1], HasSubstr("0.5"));
  EXPECT_EQ(lines[2].find('*'), std::string::npos);
  EXPECT_THAT(lines[2], HasSubstr("0.9"));
}

}  // namespace
}  // namespace gangway::cli
