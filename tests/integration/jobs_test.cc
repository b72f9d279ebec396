// A job's life on a real coordinator and real agents: success, gang waiting,
// failure and restart policies, cancel, deadline.
#include <yaml-cpp/yaml.h>

#include <regex>
#include <set>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

// A gang of replicas x procs ranks, one core each, running `command` (a
// shell script), with `extra` YAML lines appended.
std::string ShellJob(const std::string& name, int replicas, int procs, const std::string& command,
                     const std::string& extra = "") {
  return "name: " + name + "\nreplicas: " + std::to_string(replicas) +
         "\nprocsPerNode: " + std::to_string(procs) +
         "\nresources:\n  cpus: 1\n  memory: 64Mi\ncommand: [sh, -c]\nargs:\n  - '" + command +
         "'\n" + extra;
}

// Plaintext on loopback, and the same with TLS, node certificates and an
// admin token from `gangway certs init` and `gangway token create`.
class JobsEndToEnd : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Transport, JobsEndToEnd, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tls" : "Plaintext"; });

TEST_P(JobsEndToEnd, EndToEnd) {
  ClusterOptions options;
  options.secure = GetParam();
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());

  RunResult submit = cluster.Cli({"submit", SourcePath("examples/jobs/hello.yaml")});
  ASSERT_EQ(submit.code, 0) << submit.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(submit.out, m, std::regex(R"(job/(\S+) submitted)"))) << submit.out;
  const std::string id = m[1];

  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s, &job));
  EXPECT_EQ(job.attempt(), 1);
  ASSERT_EQ(job.ranks_size(), 4);
  EXPECT_NE(job.master_port(), 0);
  EXPECT_EQ(job.master_addr(), "127.0.0.1");
  // A gang of 2 replicas x 2 procs on two 2-core nodes: one replica per node.
  EXPECT_EQ(job.ranks(0).node(), job.ranks(1).node());
  EXPECT_EQ(job.ranks(2).node(), job.ranks(3).node());
  EXPECT_NE(job.ranks(0).node(), job.ranks(2).node());

  // Each rank printed what it was given (examples/jobs/hello.yaml).
  const std::regex line(
      R"(rank (\d+) of (\d+) \(local (\d+) of (\d+), group (\d+)\) on \S* master ([^:\s]*):(\d+) job (\S+) attempt (\d+))");
  std::set<std::string> ports;
  for (int r = 0; r < 4; ++r) {
    RunResult logs = cluster.Cli({"logs", id, "--rank", std::to_string(r)});
    ASSERT_EQ(logs.code, 0) << logs.err;
    std::smatch lm;
    ASSERT_TRUE(std::regex_search(logs.out, lm, line)) << "rank " << r << ": " << logs.out;
    EXPECT_EQ(lm[1], std::to_string(r)) << "RANK";
    EXPECT_EQ(lm[2], "4") << "WORLD_SIZE";
    EXPECT_EQ(lm[3], std::to_string(r % 2)) << "LOCAL_RANK";
    EXPECT_EQ(lm[4], "2") << "LOCAL_WORLD_SIZE";
    EXPECT_EQ(lm[5], std::to_string(r / 2)) << "GROUP_RANK";
    EXPECT_EQ(lm[6], "127.0.0.1") << "MASTER_ADDR";
    EXPECT_EQ(lm[7], std::to_string(job.master_port())) << "MASTER_PORT";
    EXPECT_NE(lm[7], "0") << "MASTER_PORT";
    EXPECT_EQ(lm[8], id) << "GANGWAY_JOB";
    EXPECT_EQ(lm[9], "1") << "GANGWAY_ATTEMPT";
    ports.insert(lm[7]);
  }
  EXPECT_EQ(ports.size(), 1u) << "every rank must see the same MASTER_PORT";

  // get: json and yaml parse and say the same thing.
  RunResult json = cluster.Cli({"get", id, "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  v1::Job from_json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &from_json).ok()) << json.out;
  EXPECT_EQ(from_json.id(), id);
  EXPECT_EQ(from_json.state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(from_json.ranks_size(), 4);
  EXPECT_EQ(from_json.master_port(), job.master_port());

  RunResult yaml = cluster.Cli({"get", id, "-o", "yaml"});
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  YAML::Node y;
  ASSERT_NO_THROW(y = YAML::Load(yaml.out)) << yaml.out;
  EXPECT_EQ(y["id"].as<std::string>(""), id);
  EXPECT_EQ(y["state"].as<std::string>(""), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(y["ranks"].size(), 4u);

  RunResult table = cluster.Cli({"get", id});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find(id), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("Succeeded"), std::string::npos) << table.out;

  // list hides finished jobs unless -a.
  RunResult list = cluster.Cli({"list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out.find(id), std::string::npos) << list.out;
  RunResult list_all = cluster.Cli({"list", "-a"});
  ASSERT_EQ(list_all.code, 0) << list_all.err;
  EXPECT_NE(list_all.out.find(id), std::string::npos) << list_all.out;
  EXPECT_NE(list_all.out.find("Succeeded"), std::string::npos) << list_all.out;

  // nodes: table, wide and json.
  RunResult nodes = cluster.Cli({"nodes"});
  ASSERT_EQ(nodes.code, 0) << nodes.err;
  EXPECT_NE(nodes.out.find("node-0"), std::string::npos) << nodes.out;
  EXPECT_NE(nodes.out.find("node-1"), std::string::npos) << nodes.out;
  EXPECT_NE(nodes.out.find("Ready"), std::string::npos) << nodes.out;
  RunResult wide = cluster.Cli({"nodes", "-o", "wide"});
  EXPECT_EQ(wide.code, 0) << wide.err;
  EXPECT_NE(wide.out.find("node-1"), std::string::npos) << wide.out;
  RunResult nodes_json = cluster.Cli({"nodes", "-o", "json"});
  ASSERT_EQ(nodes_json.code, 0) << nodes_json.err;
  v1::ListNodesResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(nodes_json.out, &listed).ok())
      << nodes_json.out;
  ASSERT_EQ(listed.nodes_size(), 2);
  for (const auto& n : listed.nodes()) {
    EXPECT_EQ(n.state(), v1::NODE_STATE_READY) << n.name();
    EXPECT_EQ(n.inventory().milli_cpus(), 2000) << n.name();
    EXPECT_EQ(n.running_ranks(), 0) << n.name();
  }
}

TEST(JobsIntegration, GangPendingUntilCapacityFrees) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());

  // Takes one whole node.
  const std::string blocker = cluster.Submit(ShellJob("blocker", 1, 2, "exec sleep 300"));
  ASSERT_TRUE(cluster.WaitForState(blocker, v1::JOB_STATE_RUNNING, 10s));

  // Needs both nodes whole: must wait, with a reason, and start no rank.
  const std::string gang = cluster.Submit(ShellJob("gang", 2, 2, "echo rank $RANK"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForJob(
      gang,
      [](const v1::Job& j) {
        return j.state() == v1::JOB_STATE_PENDING &&
               j.reason().find("waiting for 2 replicas of ") != std::string::npos &&
               j.reason().find("; 1 fits now") != std::string::npos;
      },
      10s, &job, "Pending with the scheduler's reason"));
  EXPECT_EQ(job.ranks_size(), 0);
  EXPECT_EQ(job.attempt(), 0);

  RunResult get = cluster.Cli({"get", gang});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_NE(get.out.find("Pending"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find(job.reason()), std::string::npos)
      << "reason '" << job.reason() << "' not shown:\n"
      << get.out;

  // Several scheduling passes (ticks, node heartbeats) go by: no rank of the
  // gang ever exists, and it stays Pending.
  EXPECT_TRUE(HoldsFor(
      [&] {
        std::optional<v1::Job> j = cluster.GetJob(gang);
        return j && j->state() == v1::JOB_STATE_PENDING && j->ranks_size() == 0 &&
               cluster.JobProcesses(gang).empty();
      },
      1s))
      << "the pending gang started (partially)";

  RunResult cancel = cluster.Cli({"cancel", blocker});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(cluster.WaitForState(blocker, v1::JOB_STATE_CANCELLED, 10s));
  EXPECT_TRUE(cluster.JobProcesses(blocker).empty());
  ASSERT_TRUE(cluster.WaitForState(gang, v1::JOB_STATE_SUCCEEDED, 15s, &job));
  EXPECT_EQ(job.attempt(), 1);
}

// Rank 1 exits 3 half a second in; the others would sleep 300 s.
const char kRankOneFails[] = R"(if [ "$RANK" = 1 ]; then sleep 0.5; exit 3; fi; exec sleep 300)";

TEST(JobsIntegration, FailureStopsGangAndRestartsOnFailure) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(
      ShellJob("fail", 2, 2, kRankOneFails, "restartPolicy: OnFailure\nbackoffLimit: 1\n"));

  // The first attempt runs (4 ranks), then is stopped as a whole.
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForJob(
      id, [](const v1::Job& j) { return j.attempt() >= 2; }, 15s, &job, "attempt 2"));
  EXPECT_EQ(job.restarts(), 1);
  // Attempt 2 was launched only after every rank of attempt 1 was gone.
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id, 1).empty(); }, 2s))
      << cluster.JobProcesses(id, 1).size() << " processes of attempt 1 left";

  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_FAILED, 15s, &job));
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.restarts(), 1);
  EXPECT_NE(job.reason().find("BackoffLimitExceeded"), std::string::npos) << job.reason();
  ASSERT_EQ(job.ranks_size(), 4);
  EXPECT_EQ(job.ranks(1).exit_code(), 3);
  for (const auto& r : job.ranks()) {
    EXPECT_NE(r.state(), v1::RANK_STATE_RUNNING) << "rank " << r.rank();
    EXPECT_NE(r.state(), v1::RANK_STATE_LAUNCHING) << "rank " << r.rank();
  }
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 2s))
      << cluster.JobProcesses(id).size() << " processes of the failed job left";
}

TEST(JobsIntegration, FailureWithPermanentExitCodeFailsWithoutRestart) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(
      ShellJob("permanent", 2, 2, kRankOneFails, "restartPolicy: ExitCode\nbackoffLimit: 3\n"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_FAILED, 15s, &job));
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_NE(job.reason().find("exit code 3"), std::string::npos) << job.reason();
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 2s))
      << cluster.JobProcesses(id).size() << " processes of the failed job left";
}

TEST(JobsIntegration, CancelStopsRanksAndTheirChildren) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(ShellJob("cancel", 2, 2, "sleep 300 & wait"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  // 4 shells and the 4 sleeps they started, across both nodes.
  ASSERT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).size() == 8; }, 5s))
      << cluster.JobProcesses(id).size() << " processes";
  EXPECT_EQ(cluster.JobRanks(id).size(), 4u);

  RunResult cancel = cluster.Cli({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_CANCELLED, 10s, &job));
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 2s))
      << cluster.JobProcesses(id).size() << " processes of the cancelled job left";
  // Cancelling again is refused: it has ended.
  RunResult again = cluster.Cli({"cancel", id});
  EXPECT_NE(again.code, 0);
}

TEST(JobsIntegration, ActiveDeadlineFailsJob) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id =
      cluster.Submit(ShellJob("deadline", 1, 1, "exec sleep 300", "activeDeadlineSeconds: 1\n"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_FAILED, 10s, &job));
  EXPECT_NE(job.reason().find("DeadlineExceeded"), std::string::npos) << job.reason();
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 2s));
  RunResult get = cluster.Cli({"get", id});
  EXPECT_NE(get.out.find("DeadlineExceeded"), std::string::npos) << get.out;
}

}  // namespace
}  // namespace gangway::itest
