// The sweep controller with the algorithms that need more than a loss per
// trial: multi-objective sweeps (values, the Pareto front, a restart from
// the stored sweep) and hyperband (rungs that wait). A fake TrialHost plays
// the core: trial jobs are names, and the test ends them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/sweep_controller.h"

namespace gangway::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeHost : public TrialHost {
 public:
  std::string CreateTrialJob(v1::JobSpec spec, const std::string&) override {
    const std::string id = absl::StrCat("job-", ++jobs_);
    live_.insert(id);
    specs_[id] = std::move(spec);
    return id;
  }
  void StopTrialJob(const std::string& job_id, const std::string&) override { live_.erase(job_id); }
  // Each reading is step_ms later than the one before (0: time stands still).
  int64_t NowMs() const override { return now_ms_ += step_ms; }
  int64_t step_ms = 0;
  int64_t NextSeq() override { return ++seq_; }
  bool TrialJobLive(const std::string& job_id) const override { return live_.count(job_id) > 0; }
  void End(const std::string& job_id) { live_.erase(job_id); }
  const v1::JobSpec& Spec(const std::string& job_id) { return specs_.at(job_id); }

 private:
  int jobs_ = 0;
  int64_t seq_ = 0;
  mutable int64_t now_ms_ = 0;
  std::set<std::string> live_;
  std::map<std::string, v1::JobSpec> specs_;
};

v1::MetricPoint Pt(const std::string& name, double value) {
  v1::MetricPoint p;
  p.set_name(name);
  p.set_value(value);
  p.set_step(-1);
  return p;
}

double Param(const v1::Trial& t, const std::string& name) {
  double v = 0;
  EXPECT_TRUE(absl::SimpleAtod(t.params().at(name), &v));
  return v;
}

// Ends a trial's job: Running, its metrics, Succeeded.
void Finish(SweepController& c, FakeHost& host, const v1::Trial& t,
            const std::vector<v1::MetricPoint>& points) {
  v1::Job job;
  job.set_id(t.job_id());
  job.set_state(v1::JOB_STATE_RUNNING);
  c.OnTrialJobEnded(job);
  c.OnMetrics(job, points);
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  host.End(t.job_id());
  c.OnTrialJobEnded(job);
}

constexpr char kTwoObjectives[] = R"(kind: Sweep
name: mo
objectives:
  - {metric: loss, type: minimize}
  - {metric: acc, type: maximize, value: max}
parameters:
  - {name: x, type: double, min: 0, max: 1}
algorithm: {name: nsga2, seed: 3, settings: {population: 4}}
parallelTrials: 4
maxTrials: 12
trialTemplate:
  command: [train, '${trial.x}']
)";

// A controller restarted from a stored sweep whose trials left no metric
// series (their outcomes are in the stored trials).
absl::Status RecoverWithoutMetrics(SweepController& controller, const v1::Sweep& stored) {
  return controller.Recover({stored}, [](const std::string&) {
    return absl::StatusOr<std::vector<v1::MetricPoint>>(std::vector<v1::MetricPoint>{});
  });
}

v1::SubmitSweepRequest Request(const std::string& yaml) {
  v1::SubmitSweepRequest r;
  r.set_yaml(yaml);
  return r;
}

// loss = x, acc = 1 - (x - 0.5)^2 reported twice (its max counts): the
// front is x <= 0.5, where lowering the loss costs accuracy.
std::vector<v1::MetricPoint> Points(double x) {
  return {Pt("acc", 0.5), Pt("loss", x), Pt("acc", 1 - (x - 0.5) * (x - 0.5))};
}

TEST(SweepAlgorithmsTest, MultiObjectiveTrialsCarryEveryValueAndTheFrontIsStoredAndReplayed) {
  FakeHost host;
  SweepController c(&host);
  absl::StatusOr<v1::Sweep> submitted = c.Submit(Request(kTwoObjectives));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_EQ(submitted->spec().objective().metric(), "loss");  // the first, mirrored
  // Both metrics are collected.
  EXPECT_THAT(c.CollectorFor(submitted->id())->names(), ElementsAre("acc", "loss"));
  c.Reconcile();
  v1::Sweep s = *c.Get(submitted->id());
  ASSERT_EQ(s.trials_size(), 4);
  for (const v1::Trial& t : s.trials()) Finish(c, host, t, Points(Param(t, "x")));
  s = *c.Get(submitted->id());
  std::set<int64_t> want_front;
  for (const v1::Trial& t : s.trials()) {
    const double x = Param(t, "x");
    ASSERT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    ASSERT_EQ(t.objective_values_size(), 2);
    EXPECT_DOUBLE_EQ(t.objective_values(0), x);
    EXPECT_DOUBLE_EQ(t.objective_values(1), 1 - (x - 0.5) * (x - 0.5));
    EXPECT_DOUBLE_EQ(t.objective(), x);
    bool dominated = false;
    for (const v1::Trial& o : s.trials()) {
      const double y = Param(o, "x");
      // o dominates t: lower loss and higher accuracy.
      dominated |= y < x && (y - 0.5) * (y - 0.5) < (x - 0.5) * (x - 0.5);
    }
    if (!dominated) want_front.insert(t.number());
  }
  EXPECT_EQ(std::set<int64_t>(s.pareto_front().begin(), s.pareto_front().end()), want_front);
  EXPECT_EQ(s.best_trial(), 0);

  // A trial without one of the metrics is MetricsUnavailable, naming it.
  c.Reconcile();
  s = *c.Get(submitted->id());
  Finish(c, host, s.trials(4), {Pt("loss", 0.1)});
  s = *c.Get(submitted->id());
  EXPECT_EQ(s.trials(4).state(), v1::TRIAL_STATE_METRICS_UNAVAILABLE);
  EXPECT_THAT(s.trials(4).reason(), HasSubstr("ended without reporting acc"));

  // Restart from the stored sweep: the front comes back from the replayed
  // history, and the next proposals are what the first controller asks.
  FakeHost host2;
  SweepController restarted(&host2);
  v1::Sweep stored = s;
  stored.clear_pareto_front();  // recomputed, not trusted
  ASSERT_TRUE(RecoverWithoutMetrics(restarted, stored).ok());
  v1::Sweep replayed = *restarted.Get(s.id());
  EXPECT_EQ(std::vector<int64_t>(replayed.pareto_front().begin(), replayed.pareto_front().end()),
            std::vector<int64_t>(s.pareto_front().begin(), s.pareto_front().end()));
}

TEST(SweepAlgorithmsTest, MultiObjectiveBayesianSweepRunsAndARestartProposesTheSame) {
  // bayesian with several objectives is ParEGO (tuner/parego.h): past its
  // initial points every proposal comes from the GP on a scalarization.
  std::string yaml = kTwoObjectives;
  const std::string nsga2 = "{name: nsga2, seed: 3, settings: {population: 4}}";
  yaml.replace(yaml.find(nsga2), nsga2.size(), "{name: bayesian, seed: 3}");
  FakeHost host;
  SweepController c(&host);
  absl::StatusOr<v1::Sweep> submitted = c.Submit(Request(yaml));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  std::set<int64_t> finished;
  auto finish_all = [&](SweepController& controller, FakeHost& h) {
    const v1::Sweep now = *controller.Get(submitted->id());
    for (const v1::Trial& t : now.trials()) {
      if (finished.insert(t.number()).second) Finish(controller, h, t, Points(Param(t, "x")));
    }
  };
  // Three rounds of four: the third is proposed from the model.
  for (int round = 0; round < 2; ++round) {
    c.Reconcile();
    finish_all(c, host);
  }
  v1::Sweep s = *c.Get(submitted->id());
  ASSERT_EQ(s.trials_size(), 8);
  for (const v1::Trial& t : s.trials()) {
    ASSERT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    ASSERT_EQ(t.objective_values_size(), 2);
  }
  EXPECT_FALSE(s.pareto_front().empty());

  FakeHost host2;
  SweepController restarted(&host2);
  ASSERT_TRUE(RecoverWithoutMetrics(restarted, s).ok());
  c.Reconcile();
  restarted.Reconcile();
  const v1::Sweep a = *c.Get(s.id()), b = *restarted.Get(s.id());
  ASSERT_EQ(a.trials_size(), 12);
  ASSERT_EQ(b.trials_size(), 12);
  for (int i = 8; i < 12; ++i) {
    EXPECT_EQ(a.trials(i).params().at("x"), b.trials(i).params().at("x")) << i;
  }
  // The batch is spread, not four copies of one point.
  std::set<std::string> xs;
  for (int i = 8; i < 12; ++i) xs.insert(a.trials(i).params().at("x"));
  EXPECT_EQ(xs.size(), 4u);
  finish_all(c, host);
  s = *c.Get(s.id());
  EXPECT_EQ(s.trials_size(), 12);
  for (const v1::Trial& t : s.trials()) EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED);
}

// The tuner runs on the coordinator's loop: once its proposals take long,
// a pass asks for about 50 ms of them (at least one) and the next pass
// for more, rather than for every free slot at once (AskPace).
TEST(SweepAlgorithmsTest, ASlowTunerIsAskedForFewerProposalsPerPass) {
  FakeHost host;
  SweepController c(&host);
  absl::StatusOr<v1::Sweep> submitted = c.Submit(Request(R"(kind: Sweep
name: slow
objective: {metric: loss, type: minimize}
parameters:
  - {name: x, type: double, min: 0, max: 1}
algorithm: {name: random, seed: 1}
parallelTrials: 8
maxTrials: 40
trialTemplate:
  command: [train, '${trial.x}']
)"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string id = submitted->id();
  // The first ask has nothing to go by: every slot. Its 8 proposals take
  // 200 ms, 25 ms each.
  host.step_ms = 200;
  c.Reconcile();
  v1::Sweep s = *c.Get(id);
  ASSERT_EQ(s.trials_size(), 8);
  for (const v1::Trial& t : s.trials()) Finish(c, host, t, {Pt("loss", Param(t, "x"))});
  // 8 free slots, 50 ms / 25 ms: two now (200 ms, 100 ms each), then one
  // per pass.
  c.Reconcile();
  EXPECT_EQ(c.Get(id)->trials_size(), 10);
  c.Reconcile();
  EXPECT_EQ(c.Get(id)->trials_size(), 11);
  // Fast again: the rest of the slots in one pass.
  host.step_ms = 0;
  c.Reconcile();
  EXPECT_EQ(c.Get(id)->trials_size(), 12);
  c.Reconcile();
  EXPECT_EQ(c.Get(id)->trials_size(), 16);
}

TEST(SweepAlgorithmsTest, MultiObjectiveSpecRules) {
  auto error = [](const std::string& yaml) {
    SweepController c(nullptr);
    absl::StatusOr<v1::Sweep> s = c.Submit(Request(yaml));
    return s.ok() ? std::string("ok") : std::string(s.status().message());
  };
  std::string yaml = kTwoObjectives;
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string out = yaml;
    out.replace(out.find(from), from.size(), to);
    return out;
  };
  EXPECT_THAT(error(replace("{name: nsga2, seed: 3, settings: {population: 4}}", "{name: tpe}")),
              HasSubstr("algorithm.name: tpe optimizes one objective; with several use nsga2"));
  EXPECT_THAT(error(replace("  - {metric: acc, type: maximize, value: max}\n", "")),
              HasSubstr("objectives: needs two or more objectives"));
  EXPECT_THAT(error(replace("metric: acc", "metric: loss")),
              HasSubstr("line 5: objectives[1].metric: \"loss\" is listed twice"));
  EXPECT_THAT(error(replace("type: maximize, value: max}", "type: maximize, goal: 1}")),
              HasSubstr("objectives[1].goal: not supported with several objectives"));
  EXPECT_THAT(
      error(replace("objectives:\n", "objective: {metric: x, type: minimize}\nobjectives:\n")),
      HasSubstr("objective: give objective (one metric) or objectives (several)"));
  EXPECT_THAT(error(replace("maxTrials: 12\n", "maxTrials: 12\nearlyStopping: {rule: median}\n")),
              HasSubstr("earlyStopping: not available with several objectives"));
  EXPECT_THAT(error(replace("population: 4", "population: 1")),
              HasSubstr("algorithm.settings.population: must be an integer between 2 and 10000"));
}

TEST(SweepAlgorithmsTest, HyperbandWaitsForARungWithoutEndingTheSweep) {
  FakeHost host;
  SweepController c(&host);
  absl::StatusOr<v1::Sweep> submitted = c.Submit(Request(R"(kind: Sweep
name: hb
objective: {metric: loss, type: minimize}
parameters:
  - {name: x, type: double, min: 0, max: 1}
  - {name: epochs, type: int, min: 1, max: 3}
algorithm: {name: hyperband, settings: {resourceParameter: epochs}}
parallelTrials: 10
maxTrials: 6
trialTemplate:
  command: [train, '${trial.x}', '${trial.epochs}']
)"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  // R / r = 3: brackets 3@1 -> 1@3, then 2@3. Rung 1 waits for rung 0.
  c.Reconcile();
  v1::Sweep s = *c.Get(submitted->id());
  ASSERT_EQ(s.trials_size(), 3);
  Finish(c, host, s.trials(0), {Pt("loss", 3)});
  Finish(c, host, s.trials(1), {Pt("loss", 1)});
  c.Reconcile();
  s = *c.Get(submitted->id());
  EXPECT_EQ(s.trials_size(), 3);
  EXPECT_EQ(s.state(), v1::SWEEP_STATE_RUNNING) << s.reason();
  Finish(c, host, s.trials(2), {Pt("loss", 2)});
  c.Reconcile();
  s = *c.Get(submitted->id());
  ASSERT_EQ(s.trials_size(), 6);  // the promotion and the next bracket
  EXPECT_EQ(s.trials(3).params().at("x"), s.trials(1).params().at("x"));
  EXPECT_EQ(s.trials(3).params().at("epochs"), "3");
  EXPECT_EQ(s.trials(4).params().at("epochs"), "3");
  for (int i = 3; i < 6; ++i) Finish(c, host, s.trials(i), {Pt("loss", 0.5)});
  c.Reconcile();
  EXPECT_EQ(c.Get(submitted->id())->state(), v1::SWEEP_STATE_SUCCEEDED);
}

TEST(SweepAlgorithmsTest, PbtHandsCheckpointDirectoriesAndRecordsTheLineage) {
  FakeHost host;
  SweepController c(&host);
  absl::StatusOr<v1::Sweep> submitted = c.Submit(Request(R"(kind: Sweep
name: pbt
objective: {metric: loss, type: minimize}
parameters:
  - {name: lr, type: double, min: 0.001, max: 1, scale: log}
algorithm: {name: pbt, seed: 2, settings: {checkpointRoot: /shared/ckpt/, population: 4}}
parallelTrials: 4
maxTrials: 12
trialTemplate:
  command: [train, '${trial.lr}']
)"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string id = submitted->id();
  c.Reconcile();
  v1::Sweep s = *c.Get(id);
  ASSERT_EQ(s.trials_size(), 4);
  for (const v1::Trial& t : s.trials()) {
    const auto& env = host.Spec(t.job_id()).env();
    EXPECT_EQ(env.at("GANGWAY_CHECKPOINT_DIR"), absl::StrCat("/shared/ckpt/", id, "/", t.number()));
    EXPECT_EQ(t.checkpoint_dir(), env.at("GANGWAY_CHECKPOINT_DIR"));
    EXPECT_EQ(env.count("GANGWAY_PARENT_CHECKPOINT_DIR"), 0u);
    EXPECT_EQ(t.parent_trial(), 0);
  }
  // Trial 3 is the worst and exploits trial 2, the best.
  const std::vector<double> losses = {0.5, 0.1, 0.9, 0.3};
  for (int i = 0; i < 4; ++i) Finish(c, host, s.trials(i), {Pt("loss", losses[i])});
  c.Reconcile();
  s = *c.Get(id);
  ASSERT_EQ(s.trials_size(), 8);
  const std::vector<int64_t> parents = {1, 2, 2, 4};
  for (int m = 0; m < 4; ++m) {
    const v1::Trial& t = s.trials(4 + m);
    EXPECT_EQ(t.parent_trial(), parents[m]) << m;
    EXPECT_EQ(host.Spec(t.job_id()).env().at("GANGWAY_PARENT_CHECKPOINT_DIR"),
              absl::StrCat("/shared/ckpt/", id, "/", parents[m]));
  }
  EXPECT_EQ(s.trials(4).params().at("lr"), s.trials(0).params().at("lr"));
  EXPECT_NE(s.trials(6).params().at("lr"), s.trials(1).params().at("lr"));  // explored
  for (int i = 4; i < 8; ++i) Finish(c, host, s.trials(i), {Pt("loss", 1.0 / i)});
  s = *c.Get(id);

  // A restarted controller continues the same lineages.
  FakeHost host2;
  SweepController restarted(&host2);
  ASSERT_TRUE(RecoverWithoutMetrics(restarted, s).ok());
  c.Reconcile();
  restarted.Reconcile();
  v1::Sweep a = *c.Get(id), b = *restarted.Get(id);
  ASSERT_EQ(a.trials_size(), 12);
  ASSERT_EQ(b.trials_size(), 12);
  for (int i = 8; i < 12; ++i) {
    EXPECT_EQ(a.trials(i).parent_trial(), b.trials(i).parent_trial()) << i;
    EXPECT_EQ(a.trials(i).params().at("lr"), b.trials(i).params().at("lr")) << i;
  }
}

}  // namespace
}  // namespace gangway::coordinator
