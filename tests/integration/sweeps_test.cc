// Sweeps on a real coordinator and real agents: a grid through the CLI
// (submit, watch, get, best), a refused spec, `gangway local` on the Branin
// example, a multi-objective bayesian sweep, hyperband's brackets,
// population-based training with a trainer that checkpoints, and a
// coordinator restart in the middle of a sweep.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "tests/integration/sweep_calls.h"

namespace gangway::itest {
namespace {

std::optional<v1::ListSweepsResponse> ListSweeps(const Cluster& cluster) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::ListSweepsRequest req;
  req.set_all(true);
  v1::ListSweepsResponse resp;
  if (!SweepsStub(cluster)->ListSweeps(&ctx, req, &resp).ok()) return std::nullopt;
  return resp;
}

int64_t Int(const std::string& text) {
  int64_t v = 0;
  EXPECT_TRUE(absl::SimpleAtoi(text, &v)) << text;
  return v;
}

double Double(const std::string& text) {
  double v = 0;
  EXPECT_TRUE(absl::SimpleAtod(text, &v)) << text;
  return v;
}

// Plaintext on loopback, and the same with TLS and tokens (as JobsEndToEnd).
class GridSweep : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Transport, GridSweep, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tls" : "Plaintext"; });

TEST_P(GridSweep, ThroughTheCli) {
  ClusterOptions options;
  options.secure = GetParam();
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());

  RunResult submit = cluster.Cli({"submit", SourcePath("examples/sweeps/quadratic-grid.yaml")});
  ASSERT_EQ(submit.code, 0) << submit.out << submit.err;
  const std::string id = SubmittedId(submit);
  ASSERT_FALSE(id.empty()) << submit.out;

  RunResult watch = cluster.Cli({"watch", id}, 25s);
  EXPECT_EQ(watch.code, 0) << watch.out << watch.err;
  EXPECT_NE(watch.out.find("Succeeded"), std::string::npos) << watch.out;

  RunResult get = cluster.Cli({"get", id, "-o", "json"});
  ASSERT_EQ(get.code, 0) << get.err;
  v1::Sweep sweep;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(get.out, &sweep).ok()) << get.out;
  EXPECT_EQ(sweep.id(), id);
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 35);
  std::set<std::pair<int64_t, int64_t>> points;
  std::set<int64_t> numbers;
  for (const v1::Trial& t : sweep.trials()) {
    SCOPED_TRACE(t.number());
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    EXPECT_TRUE(t.has_objective());
    const int64_t a = Int(t.params().at("a"));
    const int64_t b = Int(t.params().at("b"));
    EXPECT_EQ(t.objective(), static_cast<double>((a - 1) * (a - 1) + (b - 2) * (b - 2)));
    points.emplace(a, b);
    numbers.insert(t.number());
  }
  EXPECT_EQ(points.size(), 35u) << "a grid point ran twice";
  EXPECT_EQ(numbers.size(), 35u);
  EXPECT_EQ(*numbers.begin(), 1);
  EXPECT_EQ(*numbers.rbegin(), 35);

  RunResult best = cluster.Cli({"best", id, "-o", "json"});
  ASSERT_EQ(best.code, 0) << best.err;
  v1::Trial trial;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(best.out, &trial).ok()) << best.out;
  EXPECT_EQ(trial.params().at("a"), "1");
  EXPECT_EQ(trial.params().at("b"), "2");
  EXPECT_EQ(trial.objective(), 0);
  EXPECT_EQ(trial.number(), sweep.best_trial());

  // The trial jobs are ordinary jobs, and their metrics are stored.
  const v1::Trial& first = sweep.trials(0);
  std::optional<v1::Job> job = cluster.GetJob(first.job_id());
  ASSERT_TRUE(job);
  EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->sweep(), id);
  RunResult metrics = cluster.Cli({"metrics", first.job_id(), "-o", "json"});
  ASSERT_EQ(metrics.code, 0) << metrics.err;
  v1::GetMetricsResponse points_of;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(metrics.out, &points_of).ok())
      << metrics.out;
  ASSERT_EQ(points_of.points_size(), 1);
  EXPECT_EQ(points_of.points(0).name(), "loss");
  EXPECT_EQ(points_of.points(0).value(), first.objective());
}

TEST(SweepsIntegration, SpecWithAnUnknownPlaceholderIsRefusedNamingFieldAndLine) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string spec = cluster.WriteSpec("bad.yaml",
                                             "kind: Sweep\n"
                                             "name: bad\n"
                                             "objective: {metric: loss, type: minimize}\n"
                                             "parameters:\n"
                                             "  - {name: x, type: double, min: 0, max: 1}\n"
                                             "algorithm: {name: random}\n"
                                             "trialTemplate:\n"
                                             "  command: [sh, -c, 'echo loss=${trial.y}']\n");
  RunResult submit = cluster.Cli({"submit", spec});
  EXPECT_EQ(submit.code, 2) << submit.out << submit.err;
  EXPECT_NE(submit.err.find("line 8"), std::string::npos) << submit.err;
  EXPECT_NE(submit.err.find("trialTemplate.command[2]"), std::string::npos) << submit.err;
  EXPECT_NE(submit.err.find("${trial.y} is not a parameter"), std::string::npos) << submit.err;
  std::optional<v1::ListSweepsResponse> sweeps = ListSweeps(cluster);
  ASSERT_TRUE(sweeps);
  EXPECT_EQ(sweeps->sweeps_size(), 0);
  std::optional<v1::ListJobsResponse> jobs = cluster.ListJobs(true);
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->jobs_size(), 0);
}

TEST(SweepsIntegration, LocalRunsTheBraninExample) {
  TempDir dir;
  RunResult local = RunCommand(dir,
                               {CliBinary(), "local", SourcePath("examples/sweeps/branin.yaml"),
                                "--state", dir.Sub("local"), "--node-cpus", "2"},
                               28s);
  EXPECT_EQ(local.code, 0) << local.out << local.err;
  EXPECT_NE(local.out.find("sweep/branin-"), std::string::npos) << local.out;
  EXPECT_NE(local.out.find("Succeeded"), std::string::npos) << local.out;
}

// What a trial prints last is its objective, however it prints it: without
// a final newline (x = 1), or right after more output than the agent reads
// in one go (x = 2: 3 MB, then the line).
TEST(SweepsIntegration, ObjectivePrintedLastIsCollected) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string spec =
      cluster.WriteSpec("last-line.yaml",
                        "kind: Sweep\n"
                        "name: last-line\n"
                        "objective: {metric: loss, type: minimize}\n"
                        "parameters:\n"
                        "  - {name: x, type: discrete, values: [1, 2]}\n"
                        "algorithm: {name: grid}\n"
                        "parallelTrials: 2\n"
                        "maxTrials: 2\n"
                        "maxFailedTrials: 2\n"
                        "trialTemplate:\n"
                        "  resources: {cpus: 1, memory: 64Mi}\n"
                        "  command:\n"
                        "    - sh\n"
                        "    - -c\n"
                        "    - >-\n"
                        "      if [ \"${trial.x}\" = 1 ]; then printf \"loss=1\"; else\n"
                        "      head -c 3000000 /dev/zero | tr \"\\000\" \".\"; echo;\n"
                        "      echo \"loss=${trial.x}\"; fi\n");
  std::string id;
  v1::Sweep sweep;
  ASSERT_TRUE(RunSweep(cluster, spec, 20s, &id, &sweep));
  ASSERT_EQ(sweep.trials_size(), 2);
  for (const v1::Trial& t : sweep.trials()) {
    SCOPED_TRACE("x=" + t.params().at("x"));
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    EXPECT_EQ(t.objective(), Double(t.params().at("x")));
  }
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
}

// Several objectives with the bayesian algorithm (ParEGO) end to end: every
// trial carries both values, the stored front is the non-dominated trials,
// and `gangway best` prints each of them.
TEST(SweepsIntegration, MultiObjectiveBayesianSweepKeepsTheParetoFront) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  // loss = x, acc = 1 - (x - 0.5)^2: the front is x <= 0.5.
  const std::string spec = cluster.WriteSpec(
      "mo-bayesian.yaml",
      "kind: Sweep\n"
      "name: mo-bayesian\n"
      "objectives:\n"
      "  - {metric: loss, type: minimize}\n"
      "  - {metric: acc, type: maximize}\n"
      "parameters:\n"
      "  - {name: x, type: double, min: 0, max: 1}\n"
      "algorithm: {name: bayesian, seed: 5}\n"
      "parallelTrials: 2\n"
      "maxTrials: 8\n"
      "maxFailedTrials: 0\n"
      "trialTemplate:\n"
      "  resources: {cpus: 0.1, memory: 64Mi}\n"
      "  command: [awk, -v, 'x=${trial.x}',\n"
      "            'BEGIN { printf \"loss=%.9f acc=%.9f\\n\", x, 1 - (x - 0.5) * (x - 0.5) }']\n");
  std::string id;
  v1::Sweep sweep;
  ASSERT_TRUE(RunSweep(cluster, spec, 60s, &id, &sweep));
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 8);
  std::set<int64_t> want_front;
  std::set<std::string> xs;
  for (const v1::Trial& t : sweep.trials()) {
    ASSERT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    ASSERT_EQ(t.objective_values_size(), 2);
    const double x = Double(t.params().at("x"));
    xs.insert(t.params().at("x"));
    EXPECT_NEAR(t.objective_values(0), x, 1e-6);
    EXPECT_NEAR(t.objective_values(1), 1 - (x - 0.5) * (x - 0.5), 1e-6);
    bool dominated = false;
    for (const v1::Trial& o : sweep.trials()) {
      dominated |= o.objective_values(0) < t.objective_values(0) &&
                   o.objective_values(1) > t.objective_values(1);
    }
    if (!dominated) want_front.insert(t.number());
  }
  EXPECT_EQ(xs.size(), 8u) << "a point ran twice";
  EXPECT_EQ(std::set<int64_t>(sweep.pareto_front().begin(), sweep.pareto_front().end()),
            want_front);
  RunResult best = cluster.Cli({"best", id});
  ASSERT_EQ(best.code, 0) << best.err;
  for (int64_t n : want_front) {
    EXPECT_NE(best.out.find(absl::StrCat("trial ", n, ": loss=")), std::string::npos) << best.out;
  }
}

// Hyperband end to end: one round of epochs 1..9, reduction factor 3 (22
// trials in three brackets). Every rung after the first runs the best
// configurations of the rung before with three times the epochs.
TEST(SweepsIntegration, HyperbandRunsItsBracketsAndPromotesTheBest) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string spec = cluster.WriteSpec(
      "hyperband.yaml",
      "kind: Sweep\n"
      "name: hb\n"
      "objective: {metric: loss, type: minimize}\n"
      "parameters:\n"
      "  - {name: x, type: double, min: 0, max: 1}\n"
      "  - {name: epochs, type: int, min: 1, max: 9}\n"
      "algorithm: {name: hyperband, seed: 3, settings: {resourceParameter: epochs}}\n"
      "parallelTrials: 4\n"
      "maxTrials: 22\n"
      "maxFailedTrials: 0\n"
      "trialTemplate:\n"
      "  resources: {cpus: 0.1, memory: 64Mi}\n"
      "  command: [awk, -v, 'x=${trial.x}', -v, 'e=${trial.epochs}',\n"
      "            'BEGIN { printf \"loss=%.9f\\n\", (x - 0.3) * (x - 0.3) + 1 / e }']\n");
  std::string id;
  v1::Sweep sweep;
  ASSERT_TRUE(RunSweep(cluster, spec, 60s, &id, &sweep));
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 22);
  std::vector<const v1::Trial*> trials;
  for (const v1::Trial& t : sweep.trials()) trials.push_back(&t);
  std::sort(trials.begin(), trials.end(),
            [](const v1::Trial* a, const v1::Trial* b) { return a->number() < b->number(); });
  std::vector<int64_t> epochs;
  for (const v1::Trial* t : trials) {
    EXPECT_EQ(t->state(), v1::TRIAL_STATE_SUCCEEDED) << t->reason();
    epochs.push_back(Int(t->params().at("epochs")));
  }
  // Bracket 2: 9 at 1, 3 at 3, 1 at 9; bracket 1: 5 at 3, 1 at 9; bracket 0: 3 at 9.
  const std::vector<int64_t> want = {1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3,
                                     3, 9, 3, 3, 3, 3, 3, 9, 9, 9, 9};
  EXPECT_EQ(epochs, want);
  // Rung 1 of bracket 2 runs the three best x of rung 0, best first.
  std::vector<std::pair<double, std::string>> rung0;
  for (int i = 0; i < 9; ++i)
    rung0.push_back({trials[i]->objective(), trials[i]->params().at("x")});
  std::sort(rung0.begin(), rung0.end());
  for (int j = 0; j < 3; ++j) EXPECT_EQ(trials[9 + j]->params().at("x"), rung0[j].second) << j;
  EXPECT_EQ(trials[12]->params().at("x"), rung0[0].second);
}

// Population-based training with a trainer that checkpoints: each trial
// starts from the state its parent saved in GANGWAY_PARENT_CHECKPOINT_DIR
// and saves its own in GANGWAY_CHECKPOINT_DIR; the lineage is recorded.
TEST(SweepsIntegration, PbtTrialsStartFromTheirParentsCheckpoints) {
  // Ranks run as an unprivileged user: the checkpoint root is world-writable.
  char root_template[] = "/tmp/gangway-pbt-XXXXXX";
  ASSERT_NE(mkdtemp(root_template), nullptr);
  const std::string root = root_template;
  ASSERT_EQ(chmod(root.c_str(), 0777), 0);
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string spec = cluster.WriteSpec(
      "pbt.yaml",
      "kind: Sweep\n"
      "name: pbt\n"
      "objective: {metric: loss, type: minimize, additionalMetrics: [start, w]}\n"
      "parameters:\n"
      "  - {name: lr, type: double, min: 0.01, max: 0.9, scale: log}\n"
      "algorithm: {name: pbt, seed: 4, settings: {checkpointRoot: " +
          root +
          ", population: 4}}\n"
          "parallelTrials: 4\n"
          "maxTrials: 12\n"
          "maxFailedTrials: 0\n"
          "trialTemplate:\n"
          "  resources: {cpus: 0.1, memory: 64Mi}\n"
          "  command:\n"
          "    - sh\n"
          "    - -c\n"
          "    - >-\n"
          "      w=1; p=\"$GANGWAY_PARENT_CHECKPOINT_DIR\";\n"
          "      if [ -n \"$p\" ]; then w=$(cat \"$p/w\"); fi; echo start=$w;\n"
          "      w=$(awk -v w=$w -v lr=${trial.lr} 'BEGIN { printf \"%.9g\", w * (1 - lr) }');\n"
          "      mkdir -p \"$GANGWAY_CHECKPOINT_DIR\" && echo $w > \"$GANGWAY_CHECKPOINT_DIR/w\";\n"
          "      echo w=$w; echo loss=$w\n");
  std::string id;
  v1::Sweep sweep;
  ASSERT_TRUE(RunSweep(cluster, spec, 60s, &id, &sweep));
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 12);
  std::map<int64_t, const v1::Trial*> by_number;
  for (const v1::Trial& t : sweep.trials()) by_number[t.number()] = &t;
  int exploited = 0;
  for (const auto& [n, t] : by_number) {
    SCOPED_TRACE(absl::StrCat("trial ", n));
    EXPECT_EQ(t->state(), v1::TRIAL_STATE_SUCCEEDED) << t->reason();
    EXPECT_EQ(t->checkpoint_dir(), absl::StrCat(root, "/", id, "/", n));
    if (n <= 4) {
      EXPECT_EQ(t->parent_trial(), 0);
      EXPECT_EQ(t->metrics().at("start"), 1);
      continue;
    }
    ASSERT_GT(t->parent_trial(), 0);
    const v1::Trial* parent = by_number.at(t->parent_trial());
    // The previous generation, and the state the parent saved.
    EXPECT_EQ((t->parent_trial() - 1) / 4, (n - 1) / 4 - 1);
    EXPECT_EQ(t->metrics().at("start"), parent->metrics().at("w"));
    exploited += (t->parent_trial() - 1) % 4 != (n - 1) % 4;
  }
  EXPECT_EQ(exploited, 2);  // one member of four per generation
  RunResult get = cluster.Cli({"get", id});
  EXPECT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("LINEAGE"), std::string::npos) << get.out;
  std::filesystem::remove_all(root);
}

// The coordinator goes away while trials run, and those trials finish and
// print their objective before it is back: their results still count, no
// trial is run twice and the sweep ends with exactly maxTrials trials.
TEST(SweepsIntegration, CoordinatorRestartMidSweep) {
  ClusterOptions options;
  options.coordinator_flags = {"--node-timeout", "3", "--heartbeat-interval", "0.2",
                               "--stop-grace",   "1"};
  Cluster cluster(options);
  const int port = FreePort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(cluster.StartCoordinator(listen));
  ASSERT_TRUE(cluster.StartAgent(0));
  ASSERT_TRUE(cluster.StartAgent(1));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 2; }, 10s));

  const std::string spec =
      cluster.WriteSpec("restart.yaml",
                        "kind: Sweep\n"
                        "name: restart\n"
                        "objective: {metric: loss, type: minimize}\n"
                        "parameters:\n"
                        "  - {name: x, type: int, min: 0, max: 1000}\n"
                        "algorithm: {name: random, seed: 11}\n"
                        "parallelTrials: 2\n"
                        "maxTrials: 6\n"
                        "maxFailedTrials: 0\n"
                        "trialTemplate:\n"
                        "  resources: {cpus: 1, memory: 64Mi}\n"
                        "  command: [sh, -c, 'sleep 0.5; echo loss=${trial.x}']\n");
  std::string id;
  ASSERT_TRUE(SubmitSweep(cluster, spec, &id));

  // Two trials done and two running.
  v1::Sweep before;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Sweep> s = GetSweep(cluster, id);
        if (!s) return false;
        before = *s;
        int done = 0, running = 0;
        for (const auto& t : s->trials()) {
          done += t.state() == v1::TRIAL_STATE_SUCCEEDED;
          running += t.state() == v1::TRIAL_STATE_RUNNING;
        }
        return done >= 2 && running == 2;
      },
      15s))
      << before.DebugString();
  std::vector<std::string> running;
  for (const auto& t : before.trials()) {
    if (t.state() == v1::TRIAL_STATE_RUNNING) running.push_back(t.job_id());
  }
  ASSERT_EQ(running.size(), 2u);

  ASSERT_TRUE(cluster.StopCoordinator());
  // The running trials finish while it is away.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const std::string& job : running) {
          if (!cluster.JobProcesses(job).empty()) return false;
        }
        return true;
      },
      10s))
      << "the running trials did not finish";
  ASSERT_TRUE(cluster.StartCoordinator(listen));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 2; }, 10s))
      << "agents did not reconnect";

  v1::Sweep sweep;
  ASSERT_TRUE(WaitForSweepEnd(cluster, id, 20s, &sweep));
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 6) << sweep.DebugString();
  std::set<int64_t> numbers;
  std::set<std::string> jobs;
  for (const v1::Trial& t : sweep.trials()) {
    SCOPED_TRACE(absl::StrCat("trial ", t.number()));
    EXPECT_TRUE(numbers.insert(t.number()).second) << "trial number repeated";
    EXPECT_TRUE(jobs.insert(t.job_id()).second) << "job repeated";
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    EXPECT_TRUE(t.has_objective());
    EXPECT_EQ(t.objective(), Double(t.params().at("x")));
    // Each trial job ran once.
    std::optional<v1::Job> job = cluster.GetJob(t.job_id());
    ASSERT_TRUE(job);
    EXPECT_EQ(job->attempt(), 1);
    EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED);
  }
  EXPECT_EQ(*numbers.begin(), 1);
  EXPECT_EQ(*numbers.rbegin(), 6);
  // The trials from before the restart are the same trials.
  for (int i = 0; i < before.trials_size(); ++i) {
    EXPECT_EQ(sweep.trials(i).job_id(), before.trials(i).job_id());
    EXPECT_EQ(sweep.trials(i).params().at("x"), before.trials(i).params().at("x"));
  }
}

}  // namespace
}  // namespace gangway::itest
