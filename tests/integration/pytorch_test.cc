// The PyTorch examples (examples/pytorch) on a coordinator and two agents:
// DDP with Gloo as 2 nodes x 2 ranks, the same script under one torchrun
// per node (PET_* variables), and a learning-rate sweep. They need Debian's
// python3-torch (scripts/install-deps); without it every test here fails
// saying so, since CI installs it and a silent skip would hide a broken
// install.
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kScript[] = "examples/pytorch/ddp_train.py";

// "" when /usr/bin/python3 can import torch.distributed, else why not.
std::string TorchMissing(const TempDir& dir) {
  RunResult r = RunCommand(dir, {kPython, "-c", "import torch.distributed"}, 60s);
  if (r.code == 0) return "";
  return "cannot import torch with " + std::string(kPython) +
         " (install python3-torch: scripts/install-deps): " + r.err;
}

// An example spec with the script's path (wherever it appears, comments
// too) made absolute and reachable by the workload user: the spec names it
// relative to the repository root.
std::string ExampleSpec(const TempDir& dir, const std::string& example) {
  std::string yaml = ReadFile(SourcePath(example));
  const std::string script = kScript;
  const std::string path = WorkloadPath(dir, SourcePath(script));
  int replaced = 0;
  for (size_t at = yaml.find(script); at != std::string::npos;
       at = yaml.find(script, at + path.size())) {
    yaml.replace(at, script.size(), path);
    ++replaced;
  }
  if (replaced == 0) ADD_FAILURE() << example << " no longer names " << script;
  return yaml;
}

// Every `params_sha256 HEX` line of a log.
std::vector<std::string> ParamHashes(const std::string& log) {
  std::vector<std::string> out;
  static const std::regex re(R"(params_sha256 ([0-9a-f]{64}))");
  for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

// Every rank's log of a finished job, or failures naming the rank.
std::map<int, std::string> RankLogs(Cluster& cluster, const std::string& id, int ranks) {
  std::map<int, std::string> logs;
  for (int r = 0; r < ranks; ++r) {
    std::optional<std::string> log = cluster.Logs(id, r);
    EXPECT_TRUE(log.has_value()) << "no log for rank " << r;
    logs[r] = log.value_or("");
  }
  return logs;
}

std::string AllLogs(Cluster& cluster, const std::string& id, int ranks) {
  std::string text;
  for (const auto& [rank, log] : RankLogs(cluster, id, ranks)) {
    text += "---- rank " + std::to_string(rank) + "\n" + log;
  }
  return text;
}

std::unique_ptr<v1::Sweeps::Stub> SweepsStub(const Cluster& cluster) {
  return v1::Sweeps::NewStub(cluster.Channel(cluster.admin_token()));
}

std::vector<v1::MetricPoint> Metrics(const Cluster& cluster, const std::string& job,
                                     const std::string& name) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::GetMetricsRequest req;
  req.set_job_id(job);
  req.set_name(name);
  v1::GetMetricsResponse resp;
  grpc::Status s = SweepsStub(cluster)->GetMetrics(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return {resp.points().begin(), resp.points().end()};
}

// Waits until the job ends (a failed launch must not wait out the bound),
// then requires it to have succeeded.
::testing::AssertionResult Succeeds(Cluster& cluster, const std::string& id, v1::Job* job) {
  auto ended = [](const v1::Job& j) {
    return j.state() == v1::JOB_STATE_SUCCEEDED || j.state() == v1::JOB_STATE_FAILED ||
           j.state() == v1::JOB_STATE_CANCELLED;
  };
  if (auto r = cluster.WaitForJob(id, ended, 100s, job, "an end"); !r) return r;
  if (job->state() == v1::JOB_STATE_SUCCEEDED) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "job " << id << " ended " << v1::JobState_Name(job->state()) << ": " << job->reason();
}

ClusterOptions TwoNodes() {
  ClusterOptions options;
  options.agents = 2;
  options.agent_cpus = "2";  // a 2 x 2 gang of 1-core ranks needs both nodes
  options.agent_memory = "4Gi";
  // No faults here, so no fault-test timings: with the harness's 2 s node
  // timeout (and so a 2 s lease, acked every 0.67 s) a stall of the whole
  // box longer than about 1.3 s stops every rank. A shared 2-core machine
  // under `ctest -j2` was seen stalling 7 s, and these jobs run for 10 to
  // 30 s: once, both agents' leases ran out in the same millisecond and the
  // keepers killed both torchruns (exit 137). A 30 s lease outlasts such a
  // stall; nothing here waits on the node timeout.
  options.coordinator_flags = {"--node-timeout", "30", "--heartbeat-interval", "0.2",
                               "--stop-grace",   "1",  "--restart-backoff",    "0.2"};
  return options;
}

TEST(PyTorchExamples, DdpTwoByTwoEndsWithTheSameParametersOnEveryRank) {
  Cluster cluster(TwoNodes());
  ASSERT_EQ(TorchMissing(cluster.dir()), "");
  ASSERT_TRUE(cluster.Start());

  const std::string id =
      cluster.Submit(ExampleSpec(cluster.dir(), "examples/pytorch/ddp-2x2.yaml"));
  ASSERT_FALSE(id.empty());
  v1::Job job;
  ASSERT_TRUE(Succeeds(cluster, id, &job)) << AllLogs(cluster, id, 4);
  ASSERT_EQ(job.ranks_size(), 4);
  std::set<std::string> nodes;
  for (const auto& r : job.ranks()) nodes.insert(r.node());
  EXPECT_EQ(nodes.size(), 2u) << "the gang must span both agents";

  // Each rank trains on its own shard: equal parameters at the end mean
  // the gradients were averaged across all four.
  std::set<std::string> hashes;
  for (const auto& [rank, log] : RankLogs(cluster, id, 4)) {
    std::vector<std::string> own = ParamHashes(log);
    ASSERT_EQ(own.size(), 1u) << "rank " << rank << ":\n" << log;
    hashes.insert(own[0]);
  }
  EXPECT_EQ(hashes.size(), 1u) << "ranks ended with different parameters";

  // Every rank prints the loss averaged over all ranks: the same lines
  // everywhere, falling as the model learns.
  const std::map<int, std::string> logs = RankLogs(cluster, id, 4);
  static const std::regex loss_re(R"(step=(\d+) loss=([0-9.]+))");
  std::vector<std::string> first;
  for (const auto& [rank, log] : logs) {
    std::vector<std::string> lines;
    for (std::sregex_iterator it(log.begin(), log.end(), loss_re), end; it != end; ++it) {
      lines.push_back(it->str());
    }
    if (rank == 0) first = lines;
    EXPECT_EQ(lines, first) << "rank " << rank;
  }
  ASSERT_EQ(first.size(), 4u);  // steps 0, 10, 20, 30
  std::smatch start, last;
  ASSERT_TRUE(std::regex_search(first.front(), start, loss_re));
  ASSERT_TRUE(std::regex_search(first.back(), last, loss_re));
  EXPECT_EQ(last[1], "30");
  EXPECT_LT(std::stod(last[2]), std::stod(start[2]) * 0.5);
}

TEST(PyTorchExamples, TorchrunPerNodeFromPetVariables) {
  Cluster cluster(TwoNodes());
  ASSERT_EQ(TorchMissing(cluster.dir()), "");
  ASSERT_TRUE(cluster.Start());

  const std::string id =
      cluster.Submit(ExampleSpec(cluster.dir(), "examples/pytorch/ddp-torchrun.yaml"));
  ASSERT_FALSE(id.empty());
  v1::Job job;
  ASSERT_TRUE(Succeeds(cluster, id, &job)) << AllLogs(cluster, id, 2);
  ASSERT_EQ(job.ranks_size(), 2);  // one torchrun per node
  EXPECT_NE(job.ranks(0).node(), job.ranks(1).node());

  // Each torchrun's log holds its two workers' lines: 4 hashes, all equal.
  std::set<std::string> hashes;
  size_t lines = 0;
  for (const auto& [rank, log] : RankLogs(cluster, id, 2)) {
    std::vector<std::string> own = ParamHashes(log);
    EXPECT_EQ(own.size(), 2u) << "node rank " << rank << ":\n" << log;
    lines += own.size();
    hashes.insert(own.begin(), own.end());
  }
  EXPECT_EQ(lines, 4u);
  EXPECT_EQ(hashes.size(), 1u) << "workers ended with different parameters";
}

TEST(PyTorchExamples, LearningRateSweepFindsABestTrial) {
  Cluster cluster(TwoNodes());
  ASSERT_EQ(TorchMissing(cluster.dir()), "");
  ASSERT_TRUE(cluster.Start());

  const std::string spec = cluster.WriteSpec(
      "lr-sweep.yaml", ExampleSpec(cluster.dir(), "examples/pytorch/lr-sweep.yaml"));
  RunResult submit = cluster.Cli({"submit", spec});
  ASSERT_EQ(submit.code, 0) << submit.out << submit.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(submit.out, m, std::regex(R"(sweep/(\S+) submitted)")))
      << submit.out;
  const std::string id = m[1];

  v1::Sweep sweep;
  const bool ended = WaitFor(
      [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
        v1::GetSweepRequest req;
        req.set_id(id);
        return SweepsStub(cluster)->GetSweep(&ctx, req, &sweep).ok() &&
               sweep.state() != v1::SWEEP_STATE_RUNNING;
      },
      100s);
  ASSERT_TRUE(ended) << "sweep " << id << " still running with " << sweep.trials_size()
                     << " trials";
  ASSERT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 3);
  const v1::Trial* best = nullptr;
  std::set<std::string> lrs;
  for (const v1::Trial& t : sweep.trials()) {
    SCOPED_TRACE(t.number());
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    ASSERT_TRUE(t.has_objective());
    lrs.insert(t.params().at("lr"));
    if (best == nullptr || t.objective() < best->objective()) best = &t;
  }
  EXPECT_EQ(lrs.size(), 3u) << "a grid point ran twice";
  ASSERT_NE(best, nullptr);
  EXPECT_NE(sweep.best_trial(), 0);
  EXPECT_EQ(sweep.best_trial(), best->number());

  // The objective came from the trial's metric lines: rank 0's loss at
  // steps 0, 10, 20 and 30, stored with their steps.
  std::vector<v1::MetricPoint> loss = Metrics(cluster, best->job_id(), "loss");
  ASSERT_EQ(loss.size(), 4u);
  EXPECT_EQ(loss.front().step(), 0);
  EXPECT_EQ(loss.back().step(), 30);
  EXPECT_EQ(loss.back().value(), best->objective());

  RunResult shown = cluster.Cli({"best", id});
  EXPECT_EQ(shown.code, 0) << shown.err;
  EXPECT_NE(shown.out.find(best->params().at("lr")), std::string::npos) << shown.out;
}

}  // namespace
}  // namespace gangway::itest
