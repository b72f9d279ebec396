// Bounded whatever a workload does: a burst of metric lines, many stored
// points, and reads of large results, on a real coordinator and agents.
#include <regex>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

std::string SubmittedId(const RunResult& r, const std::string& kind) {
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex(kind + R"(/(\S+) submitted)"))) return "";
  return m[1];
}

std::optional<v1::Sweep> GetSweep(const Cluster& cluster, const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::GetSweepRequest req;
  req.set_id(id);
  v1::Sweep sweep;
  auto stub = v1::Sweeps::NewStub(cluster.Channel(cluster.admin_token()));
  if (!stub->GetSweep(&ctx, req, &sweep).ok()) return std::nullopt;
  return sweep;
}

// A trial printed 1,000,000 metric lines, then loss=0.25: it was recorded
// Succeeded with loss=48671 (the agent's last 26.6 MB metrics message was
// refused).
TEST(BoundsIntegration, AMillionMetricLinesThenTheObjectiveKeepsTheObjective) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string spec = cluster.WriteSpec(
      "burst.yaml",
      "kind: Sweep\nname: burst\nobjective: {metric: loss, type: minimize}\n"
      "parameters:\n  - {name: x, type: discrete, values: [1]}\nalgorithm: {name: grid}\n"
      "maxTrials: 1\ntrialTemplate:\n  resources: {cpus: 1, memory: 64Mi}\n"
      "  command: [awk, 'BEGIN { for (i = 0; i < 1000000; i++) print \"loss=\" i; "
      "print \"loss=0.25\" }']\n");
  RunResult r = cluster.Cli({"submit", spec});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string id = SubmittedId(r, "sweep");
  ASSERT_FALSE(id.empty()) << r.out;
  std::optional<v1::Sweep> sweep;
  EXPECT_TRUE(WaitFor(
      [&] {
        sweep = GetSweep(cluster, id);
        return sweep && sweep->state() != v1::SWEEP_STATE_RUNNING;
      },
      60s));
  ASSERT_TRUE(sweep);
  EXPECT_EQ(sweep->state(), v1::SWEEP_STATE_SUCCEEDED) << sweep->reason();
  ASSERT_EQ(sweep->trials_size(), 1);
  const v1::Trial& trial = sweep->trials(0);
  EXPECT_EQ(trial.state(), v1::TRIAL_STATE_SUCCEEDED) << trial.reason();
  EXPECT_TRUE(trial.has_objective());
  EXPECT_EQ(trial.objective(), 0.25);
  // The session held: both nodes still Ready.
  EXPECT_EQ(cluster.ReadyNodes(), 2);

  // Stored: at most --metric-points-per-name (10,000) of the million, the
  // last among them; read back in pages of at most 5,000.
  auto stub = v1::Sweeps::NewStub(cluster.Channel(cluster.admin_token()));
  v1::GetMetricsRequest req;
  req.set_job_id(trial.job_id());
  int pages = 0;
  std::vector<v1::MetricPoint> points;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::GetMetricsResponse page;
    ASSERT_TRUE(stub->GetMetrics(&ctx, req, &page).ok());
    EXPECT_LE(page.points_size(), 5000);
    points.insert(points.end(), page.points().begin(), page.points().end());
    req.set_page_token(page.next_page_token());
    ++pages;
  } while (!req.page_token().empty() && pages < 100);
  // How many of the million reach the coordinator depends on how many
  // polls the agent made while awk ran (each reads at most 1 MiB; at the
  // exit it sends the last 5,000): any number up to the cap, in as many
  // pages as that takes.
  EXPECT_LE(points.size(), 10'000u);
  EXPECT_GE(points.size(), 1u);
  EXPECT_EQ(pages, points.size() > 5'000u ? 2 : 1);
  ASSERT_FALSE(points.empty());
  EXPECT_EQ(points.back().value(), 0.25);
  // The CLI reads every page.
  RunResult metrics = cluster.Cli({"metrics", trial.job_id()}, 60s);
  ASSERT_EQ(metrics.code, 0) << metrics.err;
  EXPECT_EQ(Lines(metrics.out).size(), points.size() + 1) << "a header and every point";
}

// `gangway logs` without -f had one 10 s deadline for the whole read (a
// 2 GB log was cut at 1.79 GB) and no way to resume. It now reads in calls
// of 8 MiB, each with its own deadline, from --offset on.
TEST(BoundsIntegration, LogsAreReadInCallsAndResumeFromAnOffset) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(
      "name: chatty\nresources: {cpus: 0.1}\n"
      "command: [sh, -c, 'head -c 20000000 /dev/zero | tr \"\\\\000\" a; echo; echo end']\n");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 30s));
  RunResult all = cluster.Cli({"logs", id}, 60s);
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_EQ(all.out.size(), 20'000'005u);
  EXPECT_EQ(all.out.substr(all.out.size() - 5), "\nend\n");
  RunResult tail = cluster.Cli({"logs", id, "--offset", "19999990"}, 60s);
  ASSERT_EQ(tail.code, 0) << tail.err;
  EXPECT_EQ(tail.out, "aaaaaaaaaa\nend\n");
  RunResult bad = cluster.Cli({"logs", id, "--offset", "-5"});
  EXPECT_NE(bad.code, 0);
}

// A rank's log is rotated at the agent's --log-max-bytes; `gangway logs`
// reads what is kept, the oldest byte first and the last line last. A
// bounded call counted the bytes skipped by rotation as read and stopped
// after its first chunk.
TEST(BoundsIntegration, LogsOfARotatedLogAreTheLastBytesKept) {
  ClusterOptions options;
  options.agents = 1;
  options.agent_flags = {"--log-max-bytes", "64Ki"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(
      "name: rotated\nresources: {cpus: 0.1}\n"
      "command: [sh, -c, 'head -c 10000000 /dev/zero | tr \"\\\\000\" a; echo; echo end']\n");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 30s));
  RunResult all = cluster.Cli({"logs", id}, 60s);
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_LE(all.out.size(), 64u << 10);
  EXPECT_GT(all.out.size(), 32u << 10) << "both kept halves";
  ASSERT_GE(all.out.size(), 5u);
  EXPECT_EQ(all.out.substr(all.out.size() - 5), "\nend\n");
}

}  // namespace
}  // namespace gangway::itest
