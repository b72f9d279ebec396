// Sweeps driven through the coordinator core: the test plays the agents
// (answers every LaunchGang with GangStarted, every StopGang with the ranks
// exiting 143) and the trials (rank 0 reports metric points, then every rank
// exits). Time is a FakeClock; nothing sleeps.
//
// Invariant checked after every Settle() of every test: no sweep has more
// trial jobs that are not terminal than its parallelTrials.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/rank_env.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"
#include "coordinator/sqlite_store.h"
#include "coordinator/studies.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

using ::gangway::coordinator::fakes::FakeStore;
using ::gangway::coordinator::fakes::RecordingSink;
using ::gangway::coordinator::fakes::Sent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

constexpr int64_t kGi = int64_t{1} << 30;
constexpr int32_t kPort = 29500;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

v1::NodeInventory Inventory(int64_t milli_cpus = 64000, int64_t memory = 256 * kGi) {
  v1::NodeInventory inv;
  inv.set_milli_cpus(milli_cpus);
  inv.set_memory_bytes(memory);
  return inv;
}

v1::MetricPoint Pt(const std::string& name, double value, int64_t step = -1) {
  v1::MetricPoint p;
  p.set_name(name);
  p.set_value(value);
  p.set_step(step);
  return p;
}

// A sweep spec in YAML; every field a test may change.
struct SweepYaml {
  std::string name = "sw";
  std::string type = "minimize";
  std::string objective_extra;  // lines under objective:, indented 2
  std::string parameters = "  - {name: x, type: double, min: 0, max: 1}\n";
  std::string algorithm = "random";
  std::string algorithm_extra = "  seed: 7\n";
  int parallel = 1;
  int max_trials = 4;
  int max_failed = 0;
  std::string extra;  // top-level lines (earlyStopping, metricsCollector)
  std::string trial_template =
      "  resources: {cpus: 1, memory: 1Gi}\n"
      "  command: [train, '--x=${trial.x}']\n";

  std::string Text() const {
    return absl::StrCat(
        "kind: Sweep\nname: ", name, "\nobjective:\n  metric: loss\n  type: ", type, "\n",
        objective_extra, "parameters:\n", parameters, "algorithm:\n  name: ", algorithm, "\n",
        algorithm_extra, "parallelTrials: ", parallel, "\nmaxTrials: ", max_trials,
        "\nmaxFailedTrials: ", max_failed, "\n", extra, "trialTemplate:\n", trial_template);
  }
};

// What a trial does once running: the points its rank 0 reports (one
// RankMetrics message each), then every rank exits with `code`.
struct Outcome {
  std::vector<v1::MetricPoint> points;
  int code = 0;
};
Outcome Loss(double v) { return {{Pt("loss", v)}, 0}; }

double Num(const std::string& text) {
  double v = kNaN;
  EXPECT_TRUE(absl::SimpleAtod(text, &v)) << "'" << text << "' is not a number";
  return v;
}

// ---------------------------------------------------------------------------
// Fixture

class SweepTest : public ::testing::Test {
 protected:
  SweepTest() { MakeCore(&store_); }

  static CoreOptions Options() {
    CoreOptions o;
    o.heartbeat_interval_ms = 1000;
    o.node_timeout_ms = 5000;
    o.stop_grace_ms = 2000;
    o.rendezvous_endpoint = "coord:7070";
    return o;
  }

  void MakeCore(Store* store) {
    core_ = std::make_unique<Core>(store, &sink_, &clock_, Options());
    sessions_.clear();
  }

  // ---- Agents ----------------------------------------------------------------

  void Register(const std::string& name, int64_t session, v1::NodeInventory inv = Inventory(),
                const std::vector<v1::RankRecord>& ranks = {}) {
    v1::Register reg;
    reg.set_node_name(name);
    reg.set_address(name + ".cluster");
    *reg.mutable_inventory() = std::move(inv);
    for (const auto& r : ranks) *reg.add_ranks() = r;
    absl::StatusOr<v1::RegisterAck> ack = core_->OnRegister(session, reg);
    ASSERT_TRUE(ack.ok()) << ack.status();
    sessions_[name] = session;
  }
  // Two large nodes: every test's trials fit many times over.
  void TwoNodes() {
    Register("a", 1);
    Register("b", 2);
  }

  int64_t SessionOf(const std::string& node) const {
    auto it = sessions_.find(node);
    return it == sessions_.end() ? -1 : it->second;
  }
  std::string NodeOf(int64_t session) const {
    for (const auto& [node, s] : sessions_) {
      if (s == session) return node;
    }
    return "";
  }

  void Started(int64_t session, const v1::LaunchGang& launch, int32_t port) {
    core_->OnAgentMessage(session, fakes::GangStartedMessage(launch, port));
  }

  void Exited(int64_t session, const std::string& job, int32_t attempt, int32_t rank, int code) {
    core_->OnAgentMessage(session, fakes::RankExitedMessage(job, attempt, rank, code));
  }

  // Nodes a and b, and a one-trial sweep whose trial is a 2-replica gang
  // with one replica on each; returns the sweep's id.
  std::string TwoNodeSweep() {
    Register("a", 1, Inventory(4000));
    Register("b", 2, Inventory(4000));
    SweepYaml y;
    y.max_trials = 1;
    y.trial_template =
        "  replicas: 2\n  resources: {cpus: 4, memory: 1Gi}\n  command: [train, '${trial.x}']\n";
    return MustSubmit(y);
  }

  // The agent of `session` reports `point` for a rank (its own or not).
  void ReportAs(int64_t session, const std::string& job, int32_t attempt, int32_t rank,
                const v1::MetricPoint& point) {
    v1::AgentMessage msg;
    v1::RankMetrics* m = msg.mutable_metrics();
    m->set_job_id(job);
    m->set_attempt(attempt);
    m->set_rank(rank);
    *m->add_points() = point;
    core_->OnAgentMessage(session, msg);
  }

  // Rank 0's agent reports `points` of the current attempt.
  void Report(const std::string& id, const std::vector<v1::MetricPoint>& points) {
    const v1::Job job = Get(id);
    ASSERT_GT(job.ranks_size(), 0) << id;
    v1::AgentMessage msg;
    v1::RankMetrics* m = msg.mutable_metrics();
    m->set_job_id(id);
    m->set_attempt(job.attempt());
    m->set_rank(0);
    for (const auto& p : points) *m->add_points() = p;
    core_->OnAgentMessage(SessionOf(job.ranks(0).node()), msg);
  }

  // Every live rank of `id`'s attempt on `node` exits with `code`.
  void ExitLive(const std::string& id, int32_t attempt, const std::string& node, int code) {
    const v1::Job job = Get(id);
    if (job.attempt() != attempt) return;
    for (const auto& r : job.ranks()) {
      if (r.node() == node &&
          (r.state() == v1::RANK_STATE_RUNNING || r.state() == v1::RANK_STATE_LAUNCHING)) {
        Exited(SessionOf(node), id, attempt, r.rank(), code);
      }
    }
  }

  std::vector<v1::RankRecord> RecordsOn(const std::string& id, const std::string& node) {
    std::vector<v1::RankRecord> out;
    const v1::Job job = Get(id);
    for (const auto& r : job.ranks()) {
      if (r.node() != node) continue;
      v1::RankRecord rec;
      rec.set_job_id(id);
      rec.set_attempt(job.attempt());
      rec.set_rank(r.rank());
      rec.set_pid(1000 + r.rank());
      out.push_back(rec);
    }
    return out;
  }

  // Ends the loop turn as the server does, then plays the agents until the
  // core has nothing more to say: LaunchGang is answered with GangStarted,
  // StopGang with the ranks exiting 143 (SIGTERM). Every message is kept.
  void Settle() {
    for (int turn = 0; turn < 1000; ++turn) {
      core_->Settle();
      CheckParallelTrials();
      std::vector<Sent> sent = sink_.Take();
      if (sent.empty()) return;
      for (const Sent& s : sent) {
        const std::string node = NodeOf(s.session);
        if (s.msg.has_launch()) {
          const v1::LaunchGang& launch = s.msg.launch();
          launches_.emplace_back(node, launch);
          Started(s.session, launch, launch.master_port() == 0 ? kPort : launch.master_port());
        } else if (s.msg.has_stop()) {
          stops_.push_back(s.msg.stop());
          if (exit_on_stop_) {
            ExitLive(s.msg.stop().job_id(), s.msg.stop().attempt(), node, 143);
          }
        }
      }
    }
    ADD_FAILURE() << "the core kept sending messages";
  }

  // parallelTrials is never exceeded: trial jobs that are not terminal.
  void CheckParallelTrials() {
    std::map<std::string, int> live;
    for (const v1::Job& job : core_->ListJobs(false)) {
      if (!job.sweep().empty() && !IsTerminal(job.state())) ++live[job.sweep()];
    }
    for (const v1::Sweep& sweep : core_->ListSweeps(true)) {
      const int n = live[sweep.id()];
      max_live_[sweep.id()] = std::max(max_live_[sweep.id()], n);
      EXPECT_LE(n, sweep.spec().parallel_trials())
          << sweep.id() << " has " << n << " live trial jobs";
    }
  }

  // ---- Control ---------------------------------------------------------------

  absl::StatusOr<v1::Sweep> SubmitSweep(const std::string& yaml) {
    std::optional<absl::StatusOr<v1::Sweep>> answer;
    v1::SubmitSweepRequest req;
    req.set_yaml(yaml);
    core_->SubmitSweep(req, [&](absl::StatusOr<v1::Sweep> s) {
      EXPECT_FALSE(answer.has_value()) << "answered twice";
      answer = std::move(s);
    });
    Settle();
    if (!answer) return absl::InternalError("SubmitSweep was not answered by Settle");
    return *std::move(answer);
  }
  std::string MustSubmit(const SweepYaml& spec) {
    absl::StatusOr<v1::Sweep> sweep = SubmitSweep(spec.Text());
    EXPECT_TRUE(sweep.ok()) << sweep.status() << "\n" << spec.Text();
    return sweep.ok() ? sweep->id() : "";
  }
  // The oldest running trial job of `sweep`; a test failure (and "") when
  // none runs.
  std::string First(const std::string& sweep) {
    std::vector<std::string> running = TrialJobs(sweep);
    EXPECT_FALSE(running.empty()) << "no trial of '" << sweep << "' runs";
    return running.empty() ? "" : running[0];
  }

  v1::Job Get(const std::string& id) const {
    absl::StatusOr<v1::Job> job = core_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::Job();
  }
  v1::Sweep Sweep(const std::string& id) const {
    absl::StatusOr<v1::Sweep> sweep = core_->GetSweep(id);
    EXPECT_TRUE(sweep.ok()) << sweep.status();
    return sweep.ok() ? *sweep : v1::Sweep();
  }
  const v1::Trial* TrialOfJob(const v1::Sweep& sweep, const std::string& job_id) {
    for (const auto& t : sweep.trials()) {
      if (t.job_id() == job_id) return &t;
    }
    return nullptr;
  }

  // Trial jobs of `sweep` in `state`, oldest first.
  std::vector<std::string> TrialJobs(const std::string& sweep,
                                     v1::JobState state = v1::JOB_STATE_RUNNING) {
    std::vector<std::string> out;
    for (const v1::Job& job : core_->ListJobs(true)) {
      if (job.sweep() == sweep && job.state() == state) out.push_back(job.id());
    }
    return out;
  }

  // One running trial job does what `outcome` says.
  void RunTrial(const std::string& id, const Outcome& outcome) {
    const v1::Job job = Get(id);
    ASSERT_EQ(job.state(), v1::JOB_STATE_RUNNING) << id;
    for (const auto& p : outcome.points) Report(id, {p});
    const v1::Job now = Get(id);
    if (now.state() == v1::JOB_STATE_RUNNING && now.attempt() == job.attempt()) {
      for (const auto& r : job.ranks()) {
        Exited(SessionOf(r.node()), id, job.attempt(), r.rank(), outcome.code);
      }
    }
    Settle();
  }

  // Runs the sweep's trials one at a time, oldest first, until it ends.
  void Drive(const std::string& sweep, const std::function<Outcome(const v1::Trial&)>& fn,
             int max_trials = 200) {
    for (int i = 0; i < max_trials; ++i) {
      v1::Sweep s = Sweep(sweep);
      if (s.state() != v1::SWEEP_STATE_RUNNING) return;
      std::vector<std::string> running = TrialJobs(sweep);
      ASSERT_FALSE(running.empty()) << sweep << " is Running but no trial runs: " << s.reason();
      const v1::Trial* t = TrialOfJob(s, running[0]);
      ASSERT_NE(t, nullptr) << running[0];
      ASSERT_NO_FATAL_FAILURE(RunTrial(running[0], fn(*t)));
    }
    FAIL() << sweep << " did not end after " << max_trials << " trials";
  }

  // The launches sent for `job_id`, with the node each went to.
  std::vector<std::pair<std::string, v1::LaunchGang>> LaunchesOf(const std::string& job_id) {
    std::vector<std::pair<std::string, v1::LaunchGang>> out;
    for (const auto& [node, l] : launches_) {
      if (l.job_id() == job_id) out.emplace_back(node, l);
    }
    return out;
  }
  bool StopSentFor(const std::string& job_id) {
    return std::any_of(stops_.begin(), stops_.end(),
                       [&](const v1::StopGang& s) { return s.job_id() == job_id; });
  }

  common::FakeClock clock_;
  FakeStore store_;
  RecordingSink sink_;
  std::unique_ptr<Core> core_;
  std::map<std::string, int64_t> sessions_;
  bool exit_on_stop_ = true;  // else the test makes stopped ranks exit
  std::vector<std::pair<std::string, v1::LaunchGang>> launches_;
  std::vector<v1::StopGang> stops_;
  std::map<std::string, int> max_live_;  // sweep -> most live trial jobs seen
};

// The params of every trial, as (name -> text) maps.
std::vector<std::map<std::string, std::string>> ParamsOf(const v1::Sweep& sweep) {
  std::vector<std::map<std::string, std::string>> out;
  for (const auto& t : sweep.trials()) out.emplace_back(t.params().begin(), t.params().end());
  return out;
}

std::vector<int64_t> NumbersOf(const v1::Sweep& sweep) {
  std::vector<int64_t> out;
  for (const auto& t : sweep.trials()) out.push_back(t.number());
  return out;
}

int CountState(const v1::Sweep& sweep, v1::TrialState state) {
  return static_cast<int>(std::count_if(sweep.trials().begin(), sweep.trials().end(),
                                        [&](const v1::Trial& t) { return t.state() == state; }));
}

// ---------------------------------------------------------------------------
// Grid

TEST_F(SweepTest, GridRunsEveryPointExactlyOnceAndSucceeds) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = "grid";
  y.algorithm_extra = "";
  y.parameters =
      "  - {name: a, type: int, min: -1, max: 2}\n"
      "  - {name: opt, type: categorical, values: [sgd, adam]}\n"
      "  - {name: lr, type: double, min: 0.1, max: 0.3, step: 0.1}\n";
  y.parallel = 3;
  y.max_trials = 24;
  y.trial_template = "  resources: {cpus: 1, memory: 1Gi}\n  command: [train, '${trial.a}']\n";
  const std::string id = MustSubmit(y);
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial& t) {
    const double a = Num(t.params().at("a"));
    return Loss((a - 1) * (a - 1) + (t.params().at("opt") == "adam" ? 0 : 1) +
                Num(t.params().at("lr")));
  }));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_THAT(sweep.reason(),
              testing::AnyOf(HasSubstr("the grid is done"), HasSubstr("maxTrials")));
  ASSERT_EQ(sweep.trials_size(), 24);
  std::set<std::tuple<int, std::string, int>> seen;
  for (const auto& t : sweep.trials()) {
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.number();
    EXPECT_TRUE(t.has_objective());
    const int lr_tenths = static_cast<int>(std::lround(Num(t.params().at("lr")) * 10));
    EXPECT_NEAR(Num(t.params().at("lr")), lr_tenths / 10.0, 1e-12);
    EXPECT_TRUE(
        seen.emplace(static_cast<int>(Num(t.params().at("a"))), t.params().at("opt"), lr_tenths)
            .second)
        << "trial " << t.number() << " repeats a point";
  }
  std::set<std::tuple<int, std::string, int>> want;
  for (int a = -1; a <= 2; ++a) {
    for (std::string opt : {"sgd", "adam"}) {
      for (int lr = 1; lr <= 3; ++lr) want.emplace(a, opt, lr);
    }
  }
  EXPECT_EQ(seen, want);
  EXPECT_EQ(max_live_[id], 3) << "parallelTrials is used in full";
  // The best: a=1, adam, lr=0.1.
  ASSERT_GT(sweep.best_trial(), 0);
  const v1::Trial& best = sweep.trials(sweep.best_trial() - 1);
  EXPECT_EQ(best.number(), sweep.best_trial());
  EXPECT_EQ(best.params().at("a"), "1");
  EXPECT_EQ(best.params().at("opt"), "adam");
  EXPECT_NEAR(best.objective(), 0.1, 1e-12);
  // Every trial job ended and nothing is left to run.
  EXPECT_THAT(TrialJobs(id), IsEmpty());
  EXPECT_EQ(TrialJobs(id, v1::JOB_STATE_SUCCEEDED).size(), 24u);
}

TEST_F(SweepTest, GridSmallerThanMaxTrialsEndsWhenTheGridIsDone) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = "grid";
  y.algorithm_extra = "";
  y.parameters = "  - {name: x, type: discrete, values: [1, 2, 4]}\n";
  y.parallel = 2;
  y.max_trials = 10;
  const std::string id = MustSubmit(y);
  ASSERT_NO_FATAL_FAILURE(
      Drive(id, [](const v1::Trial& t) { return Loss(Num(t.params().at("x"))); }));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_THAT(sweep.reason(), HasSubstr("the grid is done (3 trials)"));
  std::vector<std::string> xs;
  for (const auto& t : sweep.trials()) xs.push_back(t.params().at("x"));
  EXPECT_THAT(xs, UnorderedElementsAreArray({"1", "2", "4"}));
}

// ---------------------------------------------------------------------------
// Samplers: parameters within their bounds and of their types

class SweepSamplerTest : public SweepTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(SweepSamplerTest, TrialParamsRespectBoundsAndTypes) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = GetParam();
  y.algorithm_extra =
      y.algorithm == "bayesian" ? "  seed: 3\n  settings: {initialPoints: 3}\n" : "  seed: 3\n";
  // p's bounds need more than 6 significant digits.
  y.parameters =
      "  - {name: x, type: double, min: -5, max: 10}\n"
      "  - {name: lr, type: double, min: 1.0e-5, max: 1.0e-1, scale: log}\n"
      "  - {name: p, type: double, min: 100.0001, max: 100.0009}\n"
      "  - {name: n, type: int, min: 2, max: 64, step: 2}\n"
      "  - {name: layers, type: int, min: 1, max: 128, scale: log}\n"
      "  - {name: opt, type: categorical, values: [sgd, adam, rmsprop]}\n"
      "  - {name: bs, type: discrete, values: [16, 32, 64]}\n";
  y.parallel = 2;
  y.max_trials = 10;
  const std::string id = MustSubmit(y);
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial& t) {
    const double x = Num(t.params().at("x"));
    return Loss((x - 2) * (x - 2) + std::log10(Num(t.params().at("lr"))));
  }));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 10);
  std::set<std::string> xs;
  for (const auto& t : sweep.trials()) {
    SCOPED_TRACE(absl::StrCat("trial ", t.number()));
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED);
    ASSERT_EQ(t.params_size(), 7);
    const double x = Num(t.params().at("x"));
    EXPECT_GE(x, -5);
    EXPECT_LE(x, 10);
    xs.insert(t.params().at("x"));
    const double lr = Num(t.params().at("lr"));
    EXPECT_GE(lr, 1e-5);
    EXPECT_LE(lr, 1e-1);
    const double p = Num(t.params().at("p"));
    EXPECT_GE(p, 100.0001) << t.params().at("p");
    EXPECT_LE(p, 100.0009) << t.params().at("p");
    int64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(t.params().at("n"), &n)) << "int: " << t.params().at("n");
    EXPECT_GE(n, 2);
    EXPECT_LE(n, 64);
    EXPECT_EQ(n % 2, 0);
    int64_t layers = 0;
    ASSERT_TRUE(absl::SimpleAtoi(t.params().at("layers"), &layers)) << t.params().at("layers");
    EXPECT_GE(layers, 1);
    EXPECT_LE(layers, 128);
    EXPECT_THAT(t.params().at("opt"), testing::AnyOf("sgd", "adam", "rmsprop"));
    EXPECT_THAT(t.params().at("bs"), testing::AnyOf("16", "32", "64"));
    // The job runs with what the trial shows.
    const v1::Job job = Get(t.job_id());
    EXPECT_EQ(job.spec().params().at("x"), t.params().at("x"));
    EXPECT_EQ(job.spec().command(1), "--x=" + t.params().at("x"));
  }
  // Random and Sobol points never repeat a continuous value (printing it
  // with too few digits would); the bayesian sampler may well revisit a
  // bound.
  if (y.algorithm != "bayesian") {
    EXPECT_EQ(xs.size(), 10u) << "a continuous parameter repeats a value";
  }
}

INSTANTIATE_TEST_SUITE_P(Algorithms, SweepSamplerTest,
                         ::testing::Values("random", "sobol", "bayesian"));

// ---------------------------------------------------------------------------
// Limits: parallelTrials, maxTrials, maxFailedTrials

TEST_F(SweepTest, ParallelTrialsIsNeverExceededEvenWithSpareCapacity) {
  TwoNodes();
  SweepYaml y;
  y.parallel = 3;
  y.max_trials = 9;
  const std::string id = MustSubmit(y);
  EXPECT_EQ(TrialJobs(id).size(), 3u);
  EXPECT_EQ(Sweep(id).trials_size(), 3);
  // A trial ending lets exactly one more start.
  RunTrial(First(id), Loss(1));
  EXPECT_EQ(TrialJobs(id).size(), 3u);
  EXPECT_EQ(Sweep(id).trials_size(), 4);
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial&) { return Loss(1); }));
  EXPECT_EQ(max_live_[id], 3);
  EXPECT_EQ(Sweep(id).trials_size(), 9);
}

TEST_F(SweepTest, MaxTrialsEndsTheSweepSucceeded) {
  TwoNodes();
  SweepYaml y;
  y.parallel = 2;
  y.max_trials = 5;
  const std::string id = MustSubmit(y);
  ASSERT_NO_FATAL_FAILURE(
      Drive(id, [](const v1::Trial& t) { return Loss(Num(t.params().at("x"))); }));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.reason(), "maxTrials (5) ran");
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_SUCCEEDED), 5);
  EXPECT_GT(sweep.end_time_ms(), 0);
  // The best trial is the one with the smallest loss.
  double best = 1e9;
  int64_t best_number = 0;
  for (const auto& t : sweep.trials()) {
    if (t.objective() < best) best = t.objective(), best_number = t.number();
  }
  EXPECT_EQ(sweep.best_trial(), best_number);
  // Stored as it ended.
  EXPECT_EQ(store_.sweeps.at(id).state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(store_.sweeps.at(id).trials_size(), 5);
}

TEST_F(SweepTest, MoreThanMaxFailedTrialsFailuresFailTheSweep) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 10;
  y.max_failed = 1;
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {{}, 1});
  // One failure is allowed.
  v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_RUNNING);
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_FAILED);
  EXPECT_EQ(Get(sweep.trials(0).job_id()).state(), v1::JOB_STATE_FAILED);
  ASSERT_EQ(TrialJobs(id).size(), 1u);
  RunTrial(First(id), {{Pt("loss", 0.5)}, 1});  // a value does not save a failed run
  sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FAILED);
  EXPECT_THAT(sweep.reason(), HasSubstr("2 trials failed, more than maxFailedTrials 1"));
  EXPECT_EQ(sweep.trials_size(), 2);
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_FAILED), 2);
  EXPECT_EQ(sweep.best_trial(), 0);
  EXPECT_THAT(TrialJobs(id, v1::JOB_STATE_PENDING), IsEmpty());
  EXPECT_THAT(TrialJobs(id), IsEmpty());
}

TEST_F(SweepTest, TrialWithoutTheObjectiveIsMetricsUnavailableAndCountsAsFailed) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 5;
  y.max_failed = 1;
  y.objective_extra = "  additionalMetrics: [acc]\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {{Pt("acc", 0.9)}, 0});
  v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(Get(sweep.trials(0).job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_METRICS_UNAVAILABLE);
  EXPECT_THAT(sweep.trials(0).reason(), HasSubstr("without reporting loss"));
  EXPECT_FALSE(sweep.trials(0).has_objective());
  EXPECT_EQ(sweep.trials(0).metrics().at("acc"), 0.9);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_RUNNING);
  // A second one is one more than maxFailedTrials.
  RunTrial(First(id), {{}, 0});
  sweep = Sweep(id);
  EXPECT_EQ(sweep.trials(1).state(), v1::TRIAL_STATE_METRICS_UNAVAILABLE);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_FAILED);
  EXPECT_THAT(sweep.reason(), HasSubstr("more than maxFailedTrials 1"));
}

// ---------------------------------------------------------------------------
// Goal and cancel

TEST_F(SweepTest, GoalReachedEndsTheSweepAndCancelsRunningTrials) {
  TwoNodes();
  SweepYaml y;
  y.objective_extra = "  goal: 0.5\n";
  y.parallel = 3;
  y.max_trials = 20;
  const std::string id = MustSubmit(y);
  std::vector<std::string> running = TrialJobs(id);
  ASSERT_EQ(running.size(), 3u);
  RunTrial(running[0], Loss(2.0));  // not yet
  EXPECT_EQ(Sweep(id).state(), v1::SWEEP_STATE_RUNNING);
  running = TrialJobs(id);
  ASSERT_EQ(running.size(), 3u);
  RunTrial(running[1], Loss(0.25));  // reached
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED);
  const v1::Trial* winner = TrialOfJob(sweep, running[1]);
  ASSERT_NE(winner, nullptr);
  EXPECT_THAT(sweep.reason(), HasSubstr(absl::StrCat("goal reached by trial ", winner->number())));
  EXPECT_EQ(sweep.best_trial(), winner->number());
  EXPECT_EQ(sweep.trials_size(), 4) << "no trial is created once the goal is reached";
  for (const std::string& job : {running[0], running[2]}) {
    SCOPED_TRACE(job);
    EXPECT_TRUE(StopSentFor(job));
    EXPECT_EQ(Get(job).state(), v1::JOB_STATE_CANCELLED);
    EXPECT_EQ(TrialOfJob(sweep, job)->state(), v1::TRIAL_STATE_CANCELLED);
  }
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_SUCCEEDED), 2);
  EXPECT_THAT(TrialJobs(id), IsEmpty());
  // Nothing starts later either.
  clock_.Advance(10000);
  Settle();
  EXPECT_EQ(Sweep(id).trials_size(), 4);
}

TEST_F(SweepTest, GoalOfAMaximizedObjective) {
  TwoNodes();
  SweepYaml y;
  y.type = "maximize";
  y.objective_extra = "  goal: 0.9\n";
  y.max_trials = 10;
  const std::string id = MustSubmit(y);
  RunTrial(First(id), Loss(0.5));
  EXPECT_EQ(Sweep(id).state(), v1::SWEEP_STATE_RUNNING);
  RunTrial(First(id), Loss(0.95));
  EXPECT_EQ(Sweep(id).state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(Sweep(id).best_trial(), 2);
}

TEST_F(SweepTest, CancelSweepCancelsItsTrials) {
  // Room for two trials at once: the third waits Pending.
  Register("a", 1, Inventory(2000));
  Register("b", 2, Inventory(2000));
  SweepYaml y;
  y.parallel = 3;
  y.max_trials = 10;
  y.trial_template = "  resources: {cpus: 2, memory: 1Gi}\n  command: [train, '${trial.x}']\n";
  const std::string id = MustSubmit(y);
  const std::vector<std::string> running = TrialJobs(id);
  const std::vector<std::string> pending = TrialJobs(id, v1::JOB_STATE_PENDING);
  ASSERT_EQ(running.size(), 2u);
  ASSERT_EQ(pending.size(), 1u);
  absl::StatusOr<v1::Sweep> cancelled = core_->CancelSweep(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  Settle();
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_CANCELLED);
  EXPECT_EQ(sweep.trials_size(), 3);
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_CANCELLED), 3);
  for (const std::string& job : running) {
    EXPECT_TRUE(StopSentFor(job)) << job;
    EXPECT_EQ(Get(job).state(), v1::JOB_STATE_CANCELLED) << job;
  }
  EXPECT_EQ(Get(pending[0]).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(store_.sweeps.at(id).state(), v1::SWEEP_STATE_CANCELLED);
  // Over: no more trials, and it can be neither cancelled nor extended.
  clock_.Advance(10000);
  Settle();
  EXPECT_EQ(Sweep(id).trials_size(), 3);
  EXPECT_EQ(core_->CancelSweep(id).status().code(), absl::StatusCode::kFailedPrecondition);
  v1::UpdateSweepRequest update;
  update.set_id(id);
  update.set_max_trials(20);
  EXPECT_EQ(core_->UpdateSweep(update).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(core_->CancelSweep("nope").status().code(), absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// Early stopping

// Steps 0..4 of a good curve, as a series of points.
std::vector<v1::MetricPoint> Curve(double value, int steps) {
  std::vector<v1::MetricPoint> out;
  for (int s = 0; s < steps; ++s) out.push_back(Pt("loss", value, s));
  return out;
}

TEST_F(SweepTest, MedianRuleStopsABadTrialWhichEndsEarlyStopped) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 4;
  y.extra = "earlyStopping: {rule: median, minTrials: 2, startStep: 1}\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {Curve(1.0, 5), 0});
  RunTrial(First(id), {Curve(1.2, 5), 0});
  // Trial 3 is worse than the median at step 1: stopped there.
  const std::string bad = First(id);
  Report(bad, {Pt("loss", 5.0, 0)});
  Settle();
  EXPECT_FALSE(StopSentFor(bad)) << "step 0 is before startStep";
  EXPECT_EQ(Get(bad).state(), v1::JOB_STATE_RUNNING);
  exit_on_stop_ = false;  // the ranks exit only when the test says
  Report(bad, {Pt("loss", 4.0, 1)});
  Settle();
  EXPECT_TRUE(StopSentFor(bad));
  EXPECT_EQ(Get(bad).state(), v1::JOB_STATE_STOPPING);
  ExitLive(bad, Get(bad).attempt(), Get(bad).ranks(0).node(), 143);
  exit_on_stop_ = true;
  Settle();
  EXPECT_EQ(Get(bad).state(), v1::JOB_STATE_CANCELLED);
  v1::Sweep sweep = Sweep(id);
  const v1::Trial* t = TrialOfJob(sweep, bad);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state(), v1::TRIAL_STATE_EARLY_STOPPED) << t->reason();
  EXPECT_THAT(t->reason(), HasSubstr("early stopped at step 1"));
  EXPECT_TRUE(t->has_objective());
  EXPECT_EQ(t->objective(), 4.0);
  // Not a failure: the sweep goes on (maxFailedTrials is 0).
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_RUNNING);
  RunTrial(First(id), {Curve(0.5, 5), 0});
  sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_SUCCEEDED), 3);
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_EARLY_STOPPED), 1);
  EXPECT_EQ(sweep.best_trial(), 4);
}

TEST_F(SweepTest, MedianRuleWithStartStepZeroDecidesAtStepZero) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.extra = "earlyStopping: {rule: median, minTrials: 1, startStep: 0}\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {Curve(1.0, 3), 0});
  const std::string bad = First(id);
  Report(bad, {Pt("loss", 9.0, 0)});
  Settle();
  EXPECT_TRUE(StopSentFor(bad)) << "startStep 0 allows a decision at step 0";
  const v1::Sweep sweep = Sweep(id);
  const v1::Trial* t = TrialOfJob(sweep, bad);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state(), v1::TRIAL_STATE_EARLY_STOPPED) << t->reason();
}

TEST_F(SweepTest, MedianRuleWaitsForMinTrials) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.extra = "earlyStopping: {rule: median, minTrials: 2, startStep: 0}\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {Curve(1.0, 3), 0});
  // One completed trial is fewer than minTrials: no verdict, however bad.
  const std::string second = First(id);
  RunTrial(second, {Curve(50.0, 3), 0});
  EXPECT_FALSE(StopSentFor(second));
  EXPECT_EQ(TrialOfJob(Sweep(id), second)->state(), v1::TRIAL_STATE_SUCCEEDED);
}

TEST_F(SweepTest, AshaStopsATrialThatIsNotAmongTheBestAtARung) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.extra = "earlyStopping: {rule: asha, minResource: 1, reductionFactor: 2}\n";
  const std::string id = MustSubmit(y);
  // The first at each rung goes on.
  const std::string first = First(id);
  RunTrial(first, {{Pt("loss", 1.0, 1), Pt("loss", 0.8, 2), Pt("loss", 0.6, 4)}, 0});
  EXPECT_FALSE(StopSentFor(first));
  EXPECT_EQ(TrialOfJob(Sweep(id), first)->state(), v1::TRIAL_STATE_SUCCEEDED);
  // The second is worse at rung 1: of 2 values only the best goes on.
  const std::string second = First(id);
  RunTrial(second, {{Pt("loss", 3.0, 1), Pt("loss", 0.1, 2)}, 0});
  EXPECT_TRUE(StopSentFor(second));
  const v1::Sweep sweep = Sweep(id);
  const v1::Trial* t = TrialOfJob(sweep, second);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Get(second).state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(t->state(), v1::TRIAL_STATE_EARLY_STOPPED) << t->reason();
  EXPECT_THAT(t->reason(), HasSubstr("rule asha"));
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_RUNNING);
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_FAILED), 0);
}

TEST_F(SweepTest, EarlyStoppingUsesItsOwnMetric) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.extra = "earlyStopping: {rule: median, metric: val, minTrials: 1, startStep: 1}\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id),
           {{Pt("val", 1.0, 0), Pt("val", 1.0, 1), Pt("val", 1.0, 2), Pt("loss", 3.0)}, 0});
  const std::string second = First(id);
  // Bad loss intermediate values are not what the rule reads.
  Report(second, {Pt("loss", 100.0, 1), Pt("loss", 100.0, 2)});
  Settle();
  EXPECT_FALSE(StopSentFor(second));
  Report(second, {Pt("val", 7.0, 1)});
  Settle();
  EXPECT_TRUE(StopSentFor(second));
  const v1::Sweep sweep = Sweep(id);
  const v1::Trial* t = TrialOfJob(sweep, second);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state(), v1::TRIAL_STATE_EARLY_STOPPED);
  EXPECT_EQ(t->objective(), 100.0);  // the objective's last value
}

// ---------------------------------------------------------------------------
// The objective value

struct ModeCase {
  std::string value;  // objective.value
  std::string type;   // minimize | maximize
  double want;
};

void PrintTo(const ModeCase& c, std::ostream* os) {
  *os << "value " << c.value << ", " << c.type << " -> " << c.want;
}

class SweepObjectiveTest : public SweepTest, public ::testing::WithParamInterface<ModeCase> {};

TEST_P(SweepObjectiveTest, ReducesTheSeries) {
  TwoNodes();
  SweepYaml y;
  y.type = GetParam().type;
  y.objective_extra = absl::StrCat("  value: ", GetParam().value, "\n");
  y.max_trials = 1;
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {{Pt("loss", 3, 0), Pt("loss", 1, 1), Pt("loss", kNaN, 2), Pt("loss", 4, 3),
                        Pt("loss", 2, 4)},
                       0});
  const v1::Sweep sweep = Sweep(id);
  ASSERT_EQ(sweep.trials_size(), 1);
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_TRUE(sweep.trials(0).has_objective());
  EXPECT_EQ(sweep.trials(0).objective(), GetParam().want);
  EXPECT_EQ(sweep.trials(0).metrics().at("loss"), 2);  // the last value
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.best_trial(), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, SweepObjectiveTest,
    ::testing::Values(ModeCase{"last", "minimize", 2}, ModeCase{"min", "minimize", 1},
                      ModeCase{"max", "minimize", 4}, ModeCase{"best", "minimize", 1},
                      ModeCase{"best", "maximize", 4}, ModeCase{"min", "maximize", 1},
                      ModeCase{"last", "maximize", 2}),
    [](const auto& info) { return absl::StrCat(info.param.value, "_", info.param.type); });

TEST_F(SweepTest, NaNObjectiveIsNotASuccess) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.max_failed = 3;
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {{Pt("loss", 1.0), Pt("loss", kNaN)}, 0});
  const v1::Sweep sweep = Sweep(id);
  EXPECT_NE(sweep.trials(0).state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_METRICS_UNAVAILABLE);
  EXPECT_THAT(sweep.trials(0).reason(), HasSubstr("loss was nan"));
  EXPECT_EQ(sweep.best_trial(), 0);
  // With value min, only NaN is no value at all.
  SweepYaml m;
  m.name = "swmin";
  m.objective_extra = "  value: min\n";
  m.max_trials = 2;
  m.max_failed = 2;
  const std::string id2 = MustSubmit(m);
  RunTrial(First(id2), {{Pt("loss", kNaN)}, 0});
  EXPECT_EQ(Sweep(id2).trials(0).state(), v1::TRIAL_STATE_METRICS_UNAVAILABLE);
  // Infinity is no success either.
  RunTrial(First(id), {{Pt("loss", std::numeric_limits<double>::infinity())}, 0});
  EXPECT_EQ(Sweep(id).trials(1).state(), v1::TRIAL_STATE_METRICS_UNAVAILABLE);
}

// One trial whose job restarts on failure, objective the min of its series.
SweepYaml OneRestartableTrial() {
  SweepYaml y;
  y.objective_extra = "  value: min\n";
  y.max_trials = 1;
  y.trial_template =
      "  resources: {cpus: 1, memory: 1Gi}\n  restartPolicy: OnFailure\n  backoffLimit: 2\n"
      "  command: [train, '${trial.x}']\n";
  return y;
}

// A trial job that restarts runs again from the start: the objective is the
// series of the attempt that ended, not the one thrown away.
TEST_F(SweepTest, ObjectiveIsFromTheAttemptThatEnded) {
  TwoNodes();
  const std::string id = MustSubmit(OneRestartableTrial());
  const std::string job = First(id);
  RunTrial(job, {{Pt("loss", 0.1, 0)}, 1});
  ASSERT_EQ(Get(job).state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(Get(job).attempt(), 2);
  RunTrial(job, {{Pt("loss", 5.0, 0), Pt("loss", 3.0, 1)}, 0});
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.trials(0).objective(), 3.0);
}

// Early stopping judges the attempt running now: a good value reported by a
// run that failed and restarted does not keep a bad new run going.
TEST_F(SweepTest, EarlyStoppingForgetsARestartedAttemptsValues) {
  TwoNodes();
  SweepYaml y = OneRestartableTrial();
  y.max_trials = 2;
  y.extra = "earlyStopping: {rule: median, minTrials: 1, startStep: 1}\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {Curve(1.0, 3), 0});
  const std::string job = First(id);
  RunTrial(job, {{Pt("loss", 0.01, 1)}, 1});  // a good start, then the job fails
  ASSERT_EQ(Get(job).state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(Get(job).attempt(), 2);
  exit_on_stop_ = false;
  Report(job, {Pt("loss", 6.0, 1)});
  Settle();
  EXPECT_TRUE(StopSentFor(job)) << "judged on 6.0, not on the old run's 0.01";
}

// ---------------------------------------------------------------------------
// Update

TEST_F(SweepTest, RaisingMaxTrialsOfAFinishedSweepRunsItOnWithItsHistory) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.parallel = 1;
  y.algorithm = "bayesian";
  y.algorithm_extra = "  seed: 5\n  settings: {initialPoints: 2}\n";
  const std::string id = MustSubmit(y);
  auto loss = [](const v1::Trial& t) {
    const double x = Num(t.params().at("x"));
    return Loss((x - 0.3) * (x - 0.3));
  };
  ASSERT_NO_FATAL_FAILURE(Drive(id, loss));
  const v1::Sweep before = Sweep(id);
  ASSERT_EQ(before.state(), v1::SWEEP_STATE_SUCCEEDED);
  ASSERT_EQ(before.trials_size(), 3);

  v1::UpdateSweepRequest req;
  req.set_id(id);
  req.set_max_trials(2);
  EXPECT_EQ(core_->UpdateSweep(req).status().code(), absl::StatusCode::kInvalidArgument);
  req.set_id("nope");
  req.set_max_trials(6);
  EXPECT_EQ(core_->UpdateSweep(req).status().code(), absl::StatusCode::kNotFound);
  req.set_id(id);
  req.set_parallel_trials(2);
  absl::StatusOr<v1::Sweep> updated = core_->UpdateSweep(req);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->state(), v1::SWEEP_STATE_RUNNING);
  EXPECT_EQ(updated->spec().max_trials(), 6);
  EXPECT_EQ(updated->end_time_ms(), 0);
  Settle();
  EXPECT_EQ(Sweep(id).trials_size(), 5);
  EXPECT_EQ(TrialJobs(id).size(), 2u);
  ASSERT_NO_FATAL_FAILURE(Drive(id, loss));
  const v1::Sweep after = Sweep(id);
  EXPECT_EQ(after.state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(after.reason(), "maxTrials (6) ran");
  EXPECT_THAT(NumbersOf(after), ElementsAre(1, 2, 3, 4, 5, 6));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(after.trials(i).job_id(), before.trials(i).job_id());
    EXPECT_EQ(ParamsOf(after)[i], ParamsOf(before)[i]);
    EXPECT_EQ(after.trials(i).objective(), before.trials(i).objective());
    EXPECT_EQ(LaunchesOf(before.trials(i).job_id()).size(), 1u) << "trial " << i + 1 << " re-ran";
  }
  std::set<std::string> xs;
  for (const auto& p : ParamsOf(after)) xs.insert(p.at("x"));
  EXPECT_EQ(xs.size(), 6u);
}

TEST_F(SweepTest, RaisingMaxFailedTrialsOfAFailedSweepRunsItOn) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 4;
  y.max_failed = 0;
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {{}, 1});
  ASSERT_EQ(Sweep(id).state(), v1::SWEEP_STATE_FAILED);
  v1::UpdateSweepRequest req;
  req.set_id(id);
  req.set_max_failed_trials(1);
  ASSERT_TRUE(core_->UpdateSweep(req).ok());
  Settle();
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial&) { return Loss(1); }));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_FAILED);
}

TEST_F(SweepTest, NewParallelTrialsAloneLeavesAFinishedSweepFinished) {
  TwoNodes();
  SweepYaml y;
  y.objective_extra = "  goal: 0.5\n";
  y.max_trials = 5;
  const std::string id = MustSubmit(y);
  RunTrial(First(id), Loss(0.1));
  ASSERT_EQ(Sweep(id).state(), v1::SWEEP_STATE_SUCCEEDED);
  v1::UpdateSweepRequest req;
  req.set_id(id);
  req.set_parallel_trials(3);
  absl::StatusOr<v1::Sweep> updated = core_->UpdateSweep(req);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(updated->spec().parallel_trials(), 3);
  Settle();
  EXPECT_EQ(Sweep(id).trials_size(), 1);
}

// The goal cancels the running trials at once, but their jobs take the stop
// grace to end: extending the sweep meanwhile must count them.
TEST_F(SweepTest, ExtendingWhileCancelledTrialsStillStopKeepsParallelTrials) {
  TwoNodes();
  SweepYaml y;
  y.objective_extra = "  goal: 0.5\n";
  y.parallel = 3;
  y.max_trials = 5;
  const std::string id = MustSubmit(y);
  std::vector<std::string> running = TrialJobs(id);
  ASSERT_EQ(running.size(), 3u);
  exit_on_stop_ = false;  // the cancelled trials' ranks do not exit yet
  RunTrial(running[0], Loss(0.1));
  ASSERT_EQ(Sweep(id).state(), v1::SWEEP_STATE_SUCCEEDED);
  ASSERT_EQ(Get(running[1]).state(), v1::JOB_STATE_STOPPING);
  ASSERT_EQ(Get(running[2]).state(), v1::JOB_STATE_STOPPING);

  v1::UpdateSweepRequest req;
  req.set_id(id);
  req.set_max_trials(8);
  ASSERT_TRUE(core_->UpdateSweep(req).ok());
  Settle();  // CheckParallelTrials: 2 stopping + new ones <= 3
  EXPECT_EQ(Sweep(id).trials_size(), 4) << "one slot is free";
  // The stopping jobs end: their slots are free again.
  ExitLive(running[1], 1, Get(running[1]).ranks(0).node(), 143);
  ExitLive(running[2], 1, Get(running[2]).ranks(0).node(), 143);
  exit_on_stop_ = true;
  Settle();
  EXPECT_EQ(Sweep(id).trials_size(), 6);
  EXPECT_EQ(TrialJobs(id).size(), 3u);
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial&) { return Loss(1); }));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.trials_size(), 8);
  EXPECT_EQ(CountState(sweep, v1::TRIAL_STATE_CANCELLED), 2);
}

TEST_F(SweepTest, ExtendedGridRunsOnlyPointsNotTriedYet) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = "grid";
  y.algorithm_extra = "";
  y.parameters = "  - {name: a, type: int, min: 0, max: 5}\n";
  y.objective_extra = "  goal: 0\n";
  y.trial_template = "  resources: {cpus: 1, memory: 1Gi}\n  command: [train, '${trial.a}']\n";
  y.max_trials = 6;
  const std::string id = MustSubmit(y);
  // Loss a: the grid's first point, a = 0, reaches the goal.
  auto loss = [](const v1::Trial& t) { return Loss(Num(t.params().at("a"))); };
  ASSERT_NO_FATAL_FAILURE(Drive(id, loss));
  v1::Sweep sweep = Sweep(id);
  ASSERT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 1) << sweep.reason();
  EXPECT_EQ(sweep.trials(0).params().at("a"), "0");

  v1::UpdateSweepRequest req;
  req.set_id(id);
  req.set_max_trials(6);
  req.set_parallel_trials(2);
  ASSERT_TRUE(core_->UpdateSweep(req).ok());
  Settle();
  ASSERT_NO_FATAL_FAILURE(Drive(id, loss));
  sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3, 4, 5, 6));
  std::vector<std::string> as;
  for (const auto& p : ParamsOf(sweep)) as.push_back(p.at("a"));
  EXPECT_THAT(as, UnorderedElementsAreArray({"0", "1", "2", "3", "4", "5"}));
  EXPECT_EQ(sweep.best_trial(), 1);
}

// ---------------------------------------------------------------------------
// Trial jobs: placeholders and the metrics collector

TEST_F(SweepTest, TrialParamsAreSubstitutedIntoCommandArgsEnvAndWorkingDir) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = "grid";
  y.algorithm_extra = "";
  y.parameters =
      "  - {name: lr, type: discrete, values: [0.01]}\n"
      "  - {name: opt, type: categorical, values: [adam]}\n";
  y.max_trials = 1;
  y.trial_template =
      "  resources: {cpus: 1, memory: 1Gi}\n"
      "  command: [python, 'train-${trial.opt}.py']\n"
      "  args: ['--lr=${trial.lr}', '${trial.opt}', '${HOME}', '${trial.lr}${trial.opt}']\n"
      "  env:\n"
      "    LR: '${trial.lr}'\n"
      "    OPT_NAME: 'opt-${trial.opt}'\n"
      "  workingDir: /tmp/${trial.opt}\n";
  const std::string id = MustSubmit(y);
  const v1::Sweep sweep = Sweep(id);
  ASSERT_EQ(sweep.trials_size(), 1);
  const std::string job = sweep.trials(0).job_id();
  auto launches = LaunchesOf(job);
  ASSERT_EQ(launches.size(), 1u);
  const v1::LaunchGang& l = launches[0].second;
  ASSERT_EQ(l.ranks_size(), 1);
  EXPECT_THAT(common::LaunchArgv(l, l.ranks(0)),
              ElementsAre("python", "train-adam.py", "--lr=0.01", "adam", "${HOME}", "0.01adam"));
  const common::EnvList merged = common::LaunchEnvironment(l, l.ranks(0));
  std::map<std::string, std::string> env(merged.begin(), merged.end());
  EXPECT_EQ(env["LR"], "0.01");
  EXPECT_EQ(env["OPT_NAME"], "opt-adam");
  EXPECT_EQ(env["GANGWAY_PARAM_LR"], "0.01");
  EXPECT_EQ(env["GANGWAY_PARAM_OPT"], "adam");
  EXPECT_EQ(env["GANGWAY_TRIAL"], id + "-1");
  EXPECT_EQ(env["GANGWAY_JOB"], job);
  EXPECT_EQ(l.working_dir(), "/tmp/adam");
  // The job shows its real command line.
  const v1::Job j = Get(job);
  EXPECT_THAT(j.spec().args(), ElementsAre("--lr=0.01", "adam", "${HOME}", "0.01adam"));
  EXPECT_EQ(j.sweep(), id);
  EXPECT_EQ(j.spec().trial(), id + "-1");
}

TEST_F(SweepTest, MetricsCollectorGoesOnlyToRankZerosNode) {
  // One replica per node: a 2-replica trial spans both nodes.
  Register("a", 1, Inventory(4000));
  Register("b", 2, Inventory(4000));
  SweepYaml y;
  y.max_trials = 1;
  y.objective_extra = "  additionalMetrics: [acc]\n";
  y.extra =
      "earlyStopping: {rule: median, metric: val}\n"
      "metricsCollector: {kind: stdout, regex: '(?P<name>\\w+)=(?P<value>\\S+)'}\n";
  y.trial_template =
      "  replicas: 2\n  resources: {cpus: 4, memory: 1Gi}\n  command: [train, '${trial.x}']\n";
  const std::string id = MustSubmit(y);
  const std::string job = Sweep(id).trials(0).job_id();
  ASSERT_EQ(Get(job).state(), v1::JOB_STATE_RUNNING);
  auto launches = LaunchesOf(job);
  ASSERT_EQ(launches.size(), 2u);
  const std::string rank0_node = Get(job).ranks(0).node();
  int with_rank0 = 0;
  for (const auto& [node, l] : launches) {
    const bool has_rank0 = std::any_of(l.ranks().begin(), l.ranks().end(),
                                       [](const v1::RankLaunch& r) { return r.rank() == 0; });
    SCOPED_TRACE(node);
    if (has_rank0) {
      ++with_rank0;
      EXPECT_EQ(node, rank0_node);
      ASSERT_TRUE(l.has_metrics());
      EXPECT_EQ(l.metrics().kind(), "stdout");
      EXPECT_EQ(l.metrics().regex(), "(?P<name>\\w+)=(?P<value>\\S+)");
      EXPECT_THAT(l.metrics().names(), ElementsAre("acc", "loss", "val"));
    } else {
      EXPECT_FALSE(l.has_metrics()) << "the collector went to a node without rank 0";
    }
  }
  EXPECT_EQ(with_rank0, 1);
  RunTrial(job, Loss(1));
  EXPECT_EQ(Sweep(id).state(), v1::SWEEP_STATE_SUCCEEDED);
  // A job that is no trial gets no collector.
  v1::SubmitJobRequest plain;
  plain.set_yaml("name: plain\nresources: {cpus: 1, memory: 1Gi}\ncommand: [echo]\n");
  std::optional<absl::StatusOr<v1::Job>> answer;
  core_->Submit(plain, [&](absl::StatusOr<v1::Job> j) { answer = std::move(j); });
  Settle();
  ASSERT_TRUE(answer.has_value() && answer->ok());
  auto plain_launches = LaunchesOf((*answer)->id());
  ASSERT_EQ(plain_launches.size(), 1u);
  EXPECT_FALSE(plain_launches[0].second.has_metrics());
}

TEST_F(SweepTest, MetricsOfOtherRanksAreStoredButDoNotMakeTheObjective) {
  const std::string id = TwoNodeSweep();
  const std::string job = Sweep(id).trials(0).job_id();
  const v1::Job j = Get(job);
  ASSERT_EQ(j.ranks_size(), 2);
  ReportAs(SessionOf(j.ranks(1).node()), job, j.attempt(), 1, Pt("loss", -100));
  RunTrial(job, Loss(2.5));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.trials(0).objective(), 2.5);
  absl::StatusOr<std::vector<v1::MetricPoint>> points = core_->GetMetrics(job, "loss");
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 2u);
}

TEST_F(SweepTest, MetricsFromANodeThatDoesNotRunTheRankAreIgnored) {
  const std::string id = TwoNodeSweep();
  const std::string job = Sweep(id).trials(0).job_id();
  const v1::Job j = Get(job);
  ASSERT_EQ(j.ranks_size(), 2);
  ASSERT_NE(j.ranks(0).node(), j.ranks(1).node());
  // Rank 1's node claims rank 0's objective, and a job it has nothing of.
  for (const std::string& target : {job, std::string("no-such-job-9")}) {
    ReportAs(SessionOf(j.ranks(1).node()), target, j.attempt(), 0, Pt("loss", -1000));
  }
  RunTrial(job, Loss(2.5));
  EXPECT_EQ(Sweep(id).trials(0).objective(), 2.5);
  absl::StatusOr<std::vector<v1::MetricPoint>> points = core_->GetMetrics(job, "loss");
  ASSERT_TRUE(points.ok());
  EXPECT_EQ(points->size(), 1u);
}

TEST_F(SweepTest, BadSweepSpecIsRefusedNamingFieldAndLine) {
  TwoNodes();
  SweepYaml y;
  y.trial_template = "  command: [train, '${trial.y}']\n";
  absl::StatusOr<v1::Sweep> sweep = SubmitSweep(y.Text());
  ASSERT_FALSE(sweep.ok());
  EXPECT_EQ(sweep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(sweep.status().message()), HasSubstr("trialTemplate.command[1]"));
  EXPECT_THAT(std::string(sweep.status().message()), HasSubstr("${trial.y} is not a parameter"));
  EXPECT_THAT(std::string(sweep.status().message()), testing::ContainsRegex("line [0-9]+"));
  EXPECT_THAT(core_->ListSweeps(true), IsEmpty());
  EXPECT_THAT(store_.sweeps, IsEmpty());
  // A trial that fits no node is refused too.
  SweepYaml big;
  big.trial_template = "  resources: {cpus: 1000, memory: 1Gi}\n  command: [train]\n";
  sweep = SubmitSweep(big.Text());
  ASSERT_FALSE(sweep.ok());
  EXPECT_THAT(std::string(sweep.status().message()), HasSubstr("trialTemplate.resources.cpus"));
  EXPECT_THAT(core_->ListSweeps(true), IsEmpty());
}

TEST_F(SweepTest, WatchSweepSeesEveryStoredChange) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 2;
  const std::string id = MustSubmit(y);
  std::vector<v1::Sweep> seen;
  absl::StatusOr<int64_t> w = core_->WatchSweep(id, [&](const v1::Sweep& s) { seen.push_back(s); });
  ASSERT_TRUE(w.ok());
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial&) { return Loss(1); }));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_EQ(seen.back().trials_size(), 2);
  EXPECT_EQ(core_->WatchSweep("nope", [](const v1::Sweep&) {}).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// Coordinator restart over SQLite

class SweepRecoveryTest : public SweepTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(OpenSqlite()); }
  void TearDown() override { core_.reset(); }

  // A fresh store handle and core over the same file, as after a restart.
  void OpenSqlite() {
    core_.reset();
    absl::Status error;
    SqliteStore* store = sqlite_.Reopen(&error);
    ASSERT_NE(store, nullptr) << error;
    MakeCore(store);
  }

  fakes::SqliteDir sqlite_;
};

TEST_F(SweepRecoveryTest, SweepContinuesAfterARestartWithoutRepeatingTrials) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = "sobol";
  y.parameters =
      "  - {name: x, type: double, min: 0, max: 1}\n"
      "  - {name: p, type: double, min: 100.0001, max: 100.0009}\n";
  y.parallel = 2;
  y.max_trials = 5;
  y.trial_template =
      "  resources: {cpus: 1, memory: 1Gi}\n  command: [train, '${trial.x}', '${trial.p}']\n";
  const std::string id = MustSubmit(y);
  auto loss = [](const v1::Trial& t) { return Loss(Num(t.params().at("x"))); };
  // Trials 1 and 2 finish, 3 and 4 run (3 has reported a value).
  for (int i = 0; i < 2; ++i) {
    const std::string job = First(id);
    RunTrial(job, loss(*TrialOfJob(Sweep(id), job)));
  }
  std::vector<std::string> running = TrialJobs(id);
  ASSERT_EQ(running.size(), 2u);
  Report(running[0], {Pt("loss", 0.75)});
  Settle();
  const v1::Sweep before = Sweep(id);
  ASSERT_EQ(before.trials_size(), 4);
  std::map<std::string, std::string> node_of;
  for (const std::string& job : running) node_of[job] = Get(job).ranks(0).node();
  const size_t launches_before = launches_.size();

  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  absl::Status recovered = core_->Recover();
  ASSERT_TRUE(recovered.ok()) << recovered;
  v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_RUNNING);
  ASSERT_EQ(sweep.trials_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(sweep.trials(i).state(), before.trials(i).state());
    EXPECT_EQ(ParamsOf(sweep)[i], ParamsOf(before)[i]);
  }
  // The nodes come back reporting the running trials' ranks.
  for (const std::string node : {"a", "b"}) {
    std::vector<v1::RankRecord> records;
    for (const std::string& job : running) {
      if (node_of[job] == node) {
        auto r = RecordsOn(job, node);
        records.insert(records.end(), r.begin(), r.end());
      }
    }
    Register(node, node == "a" ? 11 : 12, Inventory(), records);
  }
  Settle();
  EXPECT_EQ(launches_.size(), launches_before) << "nothing is launched again, no trial added";
  EXPECT_TRUE(stops_.empty());
  for (const std::string& job : running) EXPECT_EQ(Get(job).state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Sweep(id).trials_size(), 4);
  clock_.Advance(1000);
  Settle();
  // Trial 3 ends without a new point: its value from before the restart
  // counts.
  RunTrial(running[0], {{}, 0});
  sweep = Sweep(id);
  const v1::Trial* t3 = TrialOfJob(sweep, running[0]);
  ASSERT_NE(t3, nullptr);
  EXPECT_EQ(t3->state(), v1::TRIAL_STATE_SUCCEEDED) << t3->reason();
  EXPECT_EQ(t3->objective(), 0.75);
  ASSERT_NO_FATAL_FAILURE(Drive(id, loss));
  sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3, 4, 5));
  std::set<std::string> points;
  for (const auto& p : ParamsOf(sweep)) points.insert(p.at("x") + "," + p.at("p"));
  EXPECT_EQ(points.size(), 5u) << "a trial's point was proposed again";
  for (const auto& t : before.trials()) {
    EXPECT_EQ(LaunchesOf(t.job_id()).size(), 1u) << "trial " << t.number() << " re-ran";
  }
  // Every job id is new: no trial job reuses an old one.
  std::set<std::string> jobs;
  for (const auto& t : sweep.trials()) jobs.insert(t.job_id());
  EXPECT_EQ(jobs.size(), 5u);

  // And all of it is on disk.
  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED);
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3, 4, 5));
  Register("a", 21);
  Register("b", 22);
  Settle();
  EXPECT_EQ(Sweep(id).trials_size(), 5);
}

TEST_F(SweepRecoveryTest, GridRestartedMidwayRunsEachPointOnce) {
  TwoNodes();
  SweepYaml y;
  y.algorithm = "grid";
  y.algorithm_extra = "";
  y.parameters =
      "  - {name: a, type: int, min: 0, max: 2}\n"
      "  - {name: lr, type: double, min: 0.1, max: 0.3, step: 0.1}\n";
  y.parallel = 2;
  y.max_trials = 9;
  y.trial_template = "  resources: {cpus: 1, memory: 1Gi}\n  command: [train, '${trial.a}']\n";
  const std::string id = MustSubmit(y);
  auto loss = [](const v1::Trial& t) { return Loss(Num(t.params().at("a"))); };
  for (int i = 0; i < 4; ++i) {
    const std::string job = First(id);
    RunTrial(job, loss(*TrialOfJob(Sweep(id), job)));
  }
  // Two running; the coordinator restarts and the nodes come back with
  // them: the grid goes on from the points not tried, none twice.
  std::vector<std::string> running = TrialJobs(id);
  ASSERT_EQ(running.size(), 2u);
  std::map<std::string, std::vector<v1::RankRecord>> records;
  for (const std::string& job : running) {
    auto r = RecordsOn(job, Get(job).ranks(0).node());
    auto& to = records[Get(job).ranks(0).node()];
    to.insert(to.end(), r.begin(), r.end());
  }
  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  Register("a", 11, Inventory(), records["a"]);
  Register("b", 12, Inventory(), records["b"]);
  Settle();
  ASSERT_NO_FATAL_FAILURE(Drive(id, loss));
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
  std::set<std::pair<std::string, std::string>> points;
  for (const auto& p : ParamsOf(sweep)) points.emplace(p.at("a"), p.at("lr"));
  EXPECT_EQ(points.size(), 9u);
}

// A trial the rule stopped is still EarlyStopped when its ranks exit only
// after a coordinator restart.
// The stored points of a restarted trial hold both attempts; after a
// coordinator restart the objective still comes from the running attempt.
TEST_F(SweepRecoveryTest, RecoveredTrialSeriesIsTheRunningAttemptsOnly) {
  TwoNodes();
  const std::string id = MustSubmit(OneRestartableTrial());
  const std::string job = First(id);
  RunTrial(job, {{Pt("loss", 0.1, 0)}, 1});  // attempt 1 fails; its 0.1 must not count
  ASSERT_EQ(Get(job).state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(Get(job).attempt(), 2);
  Report(job, {Pt("loss", 5.0, 0)});
  Settle();
  const std::string node = Get(job).ranks(0).node();
  const std::vector<v1::RankRecord> records = RecordsOn(job, node);

  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  Register(node, 31, Inventory(), records);
  Register(node == "a" ? "b" : "a", 32);
  Settle();
  ASSERT_EQ(Get(job).state(), v1::JOB_STATE_RUNNING);
  Report(job, {Pt("loss", 3.0, 1)});
  ExitLive(job, 2, node, 0);
  Settle();
  const v1::Sweep sweep = Sweep(id);
  EXPECT_EQ(sweep.trials(0).state(), v1::TRIAL_STATE_SUCCEEDED);
  EXPECT_EQ(sweep.trials(0).objective(), 3.0);
}

TEST_F(SweepRecoveryTest, EarlyStopVerdictSurvivesARestart) {
  TwoNodes();
  SweepYaml y;
  y.max_trials = 3;
  y.extra = "earlyStopping: {rule: median, minTrials: 1, startStep: 1}\n";
  const std::string id = MustSubmit(y);
  RunTrial(First(id), {Curve(1.0, 3), 0});
  const std::string bad = First(id);
  exit_on_stop_ = false;
  Report(bad, {Pt("loss", 6.0, 1)});
  Settle();
  ASSERT_TRUE(StopSentFor(bad));
  ASSERT_EQ(Get(bad).state(), v1::JOB_STATE_STOPPING);
  const std::string node = Get(bad).ranks(0).node();
  const std::vector<v1::RankRecord> records = RecordsOn(bad, node);
  stops_.clear();

  ASSERT_NO_FATAL_FAILURE(OpenSqlite());
  ASSERT_TRUE(core_->Recover().ok());
  Register(node, 31, Inventory(), records);
  Register(node == "a" ? "b" : "a", 32);
  Settle();
  EXPECT_TRUE(StopSentFor(bad)) << "the stop is sent again";
  ExitLive(bad, 1, node, 143);
  exit_on_stop_ = true;
  Settle();
  v1::Sweep sweep = Sweep(id);
  const v1::Trial* t = TrialOfJob(sweep, bad);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state(), v1::TRIAL_STATE_EARLY_STOPPED) << t->reason();
  EXPECT_EQ(t->objective(), 6.0);
  ASSERT_NO_FATAL_FAILURE(Drive(id, [](const v1::Trial&) { return Loss(0.5); }));
  sweep = Sweep(id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  EXPECT_THAT(NumbersOf(sweep), ElementsAre(1, 2, 3));
}

// ---------------------------------------------------------------------------
// Studies: ask/tell without trial jobs

v1::CreateStudyRequest StudyRequest(const std::string& algorithm) {
  v1::CreateStudyRequest req;
  req.set_name("study");
  v1::ParameterSpec* x = req.add_parameters();
  x->set_name("x");
  x->set_type(v1::ParameterSpec::TYPE_DOUBLE);
  x->set_min(-1);
  x->set_max(1);
  v1::ParameterSpec* n = req.add_parameters();
  n->set_name("n");
  n->set_type(v1::ParameterSpec::TYPE_INT);
  n->set_min(1);
  n->set_max(3);
  v1::ParameterSpec* p = req.add_parameters();
  p->set_name("p");
  p->set_type(v1::ParameterSpec::TYPE_DOUBLE);
  p->set_min(100.0001);
  p->set_max(100.0009);
  req.mutable_objective()->set_metric("loss");
  req.mutable_algorithm()->set_name(algorithm);
  req.mutable_algorithm()->set_seed(1);
  return req;
}

TEST(SweepStudiesTest, CreateAskTell) {
  Studies studies;
  absl::StatusOr<v1::Study> study = studies.Create(StudyRequest("random"));
  ASSERT_TRUE(study.ok()) << study.status();
  EXPECT_FALSE(study->id().empty());
  absl::StatusOr<v1::Study> other = studies.Create(StudyRequest("random"));
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->id(), study->id());

  v1::AskRequest ask;
  ask.set_study_id(study->id());
  ask.set_count(3);
  absl::StatusOr<v1::AskResponse> asked = studies.Ask(ask);
  ASSERT_TRUE(asked.ok()) << asked.status();
  ASSERT_EQ(asked->proposals_size(), 3);
  std::set<int64_t> ids;
  for (const auto& p : asked->proposals()) {
    ids.insert(p.trial());
    ASSERT_EQ(p.params_size(), 3);
    const double x = Num(p.params().at("x"));
    EXPECT_GE(x, -1);
    EXPECT_LE(x, 1);
    int64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(p.params().at("n"), &n)) << p.params().at("n");
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 3);
    const double pv = Num(p.params().at("p"));
    EXPECT_GE(pv, 100.0001) << p.params().at("p");
    EXPECT_LE(pv, 100.0009) << p.params().at("p");
  }
  EXPECT_EQ(ids.size(), 3u);

  for (const auto& p : asked->proposals()) {
    v1::TellRequest tell;
    tell.set_study_id(study->id());
    tell.set_trial(p.trial());
    tell.set_value(Num(p.params().at("x")) * Num(p.params().at("x")));
    absl::StatusOr<v1::TellResponse> told = studies.Tell(tell);
    EXPECT_TRUE(told.ok()) << told.status();
    // Told twice.
    EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  // The next ids are new.
  ask.set_count(2);
  asked = studies.Ask(ask);
  ASSERT_TRUE(asked.ok());
  ASSERT_EQ(asked->proposals_size(), 2);
  for (const auto& p : asked->proposals()) EXPECT_EQ(ids.count(p.trial()), 0u);
  // A failure, an intermediate value (no rule: continue), an unknown trial.
  v1::TellRequest tell;
  tell.set_study_id(study->id());
  tell.set_trial(asked->proposals(0).trial());
  tell.set_intermediate(true);
  tell.set_step(1);
  tell.set_value(0.5);
  absl::StatusOr<v1::TellResponse> told = studies.Tell(tell);
  ASSERT_TRUE(told.ok()) << told.status();
  EXPECT_FALSE(told->stop());
  tell.set_intermediate(false);
  tell.set_failed(true);
  EXPECT_TRUE(studies.Tell(tell).ok());
  tell.set_trial(12345);
  EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kNotFound);
  tell.set_failed(false);
  tell.set_trial(asked->proposals(1).trial());
  tell.set_value(kNaN);
  EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kInvalidArgument);

  ask.set_count(0);
  EXPECT_EQ(studies.Ask(ask).status().code(), absl::StatusCode::kInvalidArgument);
  ask.set_count(1001);
  EXPECT_EQ(studies.Ask(ask).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SweepStudiesTest, UnknownStudyIsNotFound) {
  Studies studies;
  v1::AskRequest ask;
  ask.set_study_id("nope-1");
  ask.set_count(1);
  EXPECT_EQ(studies.Ask(ask).status().code(), absl::StatusCode::kNotFound);
  v1::TellRequest tell;
  tell.set_study_id("nope-1");
  tell.set_trial(0);
  tell.set_value(1);
  EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kNotFound);
  tell.set_intermediate(true);
  EXPECT_EQ(studies.Tell(tell).status().code(), absl::StatusCode::kNotFound);
}

TEST(SweepStudiesTest, BadSpecsAreRefused) {
  Studies studies;
  v1::CreateStudyRequest req = StudyRequest("random");
  req.mutable_algorithm()->set_name("annealing");
  EXPECT_EQ(studies.Create(req).status().code(), absl::StatusCode::kInvalidArgument);
  req = StudyRequest("random");
  req.mutable_parameters(0)->set_min(5);  // min > max
  EXPECT_EQ(studies.Create(req).status().code(), absl::StatusCode::kInvalidArgument);
  req = StudyRequest("random");
  req.clear_parameters();
  EXPECT_EQ(studies.Create(req).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SweepStudiesTest, GridStudyEndsWithFewerProposals) {
  Studies studies;
  v1::CreateStudyRequest req;
  v1::ParameterSpec* a = req.add_parameters();
  a->set_name("a");
  a->set_type(v1::ParameterSpec::TYPE_CATEGORICAL);
  a->add_values("u");
  a->add_values("v");
  req.mutable_algorithm()->set_name("grid");
  absl::StatusOr<v1::Study> study = studies.Create(req);
  ASSERT_TRUE(study.ok()) << study.status();
  v1::AskRequest ask;
  ask.set_study_id(study->id());
  ask.set_count(5);
  absl::StatusOr<v1::AskResponse> asked = studies.Ask(ask);
  ASSERT_TRUE(asked.ok());
  std::vector<std::string> values;
  for (const auto& p : asked->proposals()) values.push_back(p.params().at("a"));
  EXPECT_THAT(values, ElementsAre("u", "v"));
  asked = studies.Ask(ask);
  ASSERT_TRUE(asked.ok());
  EXPECT_EQ(asked->proposals_size(), 0);
}

}  // namespace
}  // namespace gangway::coordinator
