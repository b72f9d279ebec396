// Bounded whatever a workload does: a burst of metric lines, many stored
// points, and reads of large results, on a real coordinator and agents.
#include <atomic>
#include <regex>
#include <set>
#include <thread>
#include <vector>

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

// A session whose agent stopped reading (its own inbound queue full behind
// a slow loop) queued every message meant for it in the coordinator,
// without bound. Once more than --session-queue-max-bytes wait and nothing
// was written for a node timeout, the session now ends with
// RESOURCE_EXHAUSTED; the agent registers again and is sent every launch
// the dropped messages carried, however large that burst, since it reads.
TEST(BoundsIntegration, AnAgentThatStopsReadingIsCutOffAndGetsEveryLaunchWhenItReturns) {
  ClusterOptions options;
  options.agents = 0;
  options.coordinator_flags = {"--node-timeout", "2", "--heartbeat-interval",      "0.2",
                               "--lease",        "0", "--session-queue-max-bytes", "1Mi"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  // A small receive window and no window growth: what the agent does not
  // read waits at the coordinator, not in this process.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 10);
  args.SetMaxReceiveMessageSize(8 << 20);
  auto stub = v1::AgentSession::NewStub(
      grpc::CreateCustomChannel(cluster.address(), grpc::InsecureChannelCredentials(), args));
  auto open_session = [&](grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    auto stream = stub->Session(&ctx);
    v1::AgentMessage reg;
    reg.mutable_register_()->set_node_name("mute");
    reg.mutable_register_()->set_address("127.0.0.1");
    reg.mutable_register_()->set_instance("mute-1");
    reg.mutable_register_()->mutable_inventory()->set_milli_cpus(1'000'000);
    reg.mutable_register_()->mutable_inventory()->set_memory_bytes(int64_t{1} << 40);
    EXPECT_TRUE(stream->Write(reg));
    v1::CoordinatorMessage ack;
    EXPECT_TRUE(stream->Read(&ack) && ack.has_register_ack());
    return stream;
  };

  grpc::ClientContext first_ctx;
  auto first = open_session(first_ctx);
  // It heartbeats, so the node stays Ready, and reads nothing.
  std::atomic<bool> stop{false};
  std::thread heartbeats([&] {
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    while (!stop.load() && first->Write(beat)) std::this_thread::sleep_for(200ms);
  });
  // Each launch carries a 300 KB argument. Jobs are submitted until one
  // waits because the node's session was closed.
  const std::string arg(300'000, 'a');
  std::vector<std::string> ids;
  bool cut_off = false;
  const auto deadline = std::chrono::steady_clock::now() + 40s;
  while (!cut_off && ids.size() < 200 && std::chrono::steady_clock::now() < deadline) {
    ids.push_back(cluster.Submit(absl::StrCat(
        "name: big-", ids.size(), "\nresources: {cpus: 1}\ncommand: [\"true\", \"", arg, "\"]\n")));
    ASSERT_FALSE(ids.back().empty());
    std::optional<v1::Job> job;
    WaitFor(
        [&] {
          job = cluster.GetJob(ids.back());
          return job && job->state() != v1::JOB_STATE_PENDING;
        },
        500ms);
    ASSERT_TRUE(job) << ids.back();
    cut_off =
        job->state() == v1::JOB_STATE_PENDING && job->reason().find("ready") != std::string::npos;
  }
  stop = true;
  ASSERT_TRUE(cut_off) << ids.size() << " jobs were placed on a node that reads nothing";
  std::set<std::string> launched;
  v1::CoordinatorMessage in;
  while (first->Read(&in)) {
    if (in.has_launch()) launched.insert(in.launch().job_id());
  }
  heartbeats.join();
  grpc::Status cut = first->Finish();
  EXPECT_EQ(cut.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << cut.error_message();
  EXPECT_NE(cut.error_message().find("node 'mute' has read nothing"), std::string::npos)
      << cut.error_message();
  EXPECT_NE(cut.error_message().find("--session-queue-max-bytes"), std::string::npos);
  EXPECT_LT(launched.size(), ids.size()) << "the backlog was dropped";

  // Registering again resends what was dropped, all at once; this time it
  // is read.
  grpc::ClientContext second_ctx;
  auto second = open_session(second_ctx);
  std::set<std::string> relaunched;
  auto missing = [&] {
    std::vector<std::string> out;
    for (const std::string& id : ids) {
      if (!launched.count(id) && !relaunched.count(id)) out.push_back(id);
    }
    return out;
  };
  while (!missing().empty() && second->Read(&in)) {
    if (in.has_launch()) relaunched.insert(in.launch().job_id());
  }
  EXPECT_TRUE(missing().empty()) << missing().size() << " of " << ids.size()
                                 << " jobs were never launched";
  second_ctx.TryCancel();
  grpc::Status end = second->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::CANCELLED) << end.error_message();
}

// The queue bounds are flags, and a value too small to hold one message
// is refused with the flag named.
TEST(BoundsIntegration, QueueBoundsBelowTheirFloorAreRefusedWithTheFlagNamed) {
  TempDir dir;
  RunResult coordinator =
      RunCommand(dir, {CoordinatorBinary(), "--state", dir.Sub("state"), "--listen", "127.0.0.1:0",
                       "--session-queue-max-bytes", "64Ki"});
  EXPECT_EQ(coordinator.code, 2);
  EXPECT_NE(coordinator.err.find("--session-queue-max-bytes: 64Ki is below 1Mi"), std::string::npos)
      << coordinator.err;
  RunResult agent = RunCommand(dir, {AgentBinary(), "--coordinator", "127.0.0.1:1", "--state",
                                     dir.Sub("agent"), "--inbound-max-bytes", "1Ki"});
  EXPECT_EQ(agent.code, 2);
  EXPECT_NE(agent.err.find("--inbound-max-bytes: 1Ki is below 1Mi"), std::string::npos)
      << agent.err;
  RunResult messages = RunCommand(dir, {AgentBinary(), "--coordinator", "127.0.0.1:1", "--state",
                                        dir.Sub("agent"), "--inbound-max-messages", "3"});
  EXPECT_NE(messages.code, 0);
  EXPECT_NE(messages.err.find("--inbound-max-messages"), std::string::npos) << messages.err;
}

}  // namespace
}  // namespace gangway::itest
