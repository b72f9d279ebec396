// Faults on real processes: an agent killed or frozen, a coordinator
// restarted under a running job.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

std::string SleepJob(const std::string& name, const std::string& extra = "") {
  return "name: " + name +
         "\nreplicas: 2\nprocsPerNode: 2\nresources:\n  cpus: 1\n  memory: 64Mi\n"
         "command: [sleep, '300']\n" +
         extra;
}

int NodeIndex(const std::string& node) { return std::stoi(node.substr(node.rfind('-') + 1)); }

std::map<int, int64_t> RankPids(const v1::Job& job) {
  std::map<int, int64_t> out;
  for (const auto& r : job.ranks()) out[r.rank()] = r.pid();
  return out;
}

// kill -9 on the agent holding rank 0, never restarted: its ranks run on
// under their keepers until the node's lease runs out, when the keepers
// stop them; the node goes NotReady after --node-timeout and the gang is
// restarted on the nodes left, never beside its first attempt.
TEST(FaultsIntegration, AgentKilledGangRestartsElsewhereAfterItsRanksStopped) {
  ClusterOptions options;
  options.agents = 3;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string id =
      cluster.Submit(SleepJob("lost", "restartPolicy: OnFailure\nbackoffLimit: 2\n"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  const std::string dead = job.ranks(0).node();
  const int dead_index = NodeIndex(dead);

  cluster.agent(dead_index).Signal(SIGKILL);
  ASSERT_TRUE(cluster.agent(dead_index).Wait(5s).has_value());
  EXPECT_EQ(cluster.JobRanks(id, 1).size(), 4u) << "the killed agent took its ranks with it";

  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Node> n = cluster.GetNode(dead);
        return n && n->state() == v1::NODE_STATE_NOT_READY;
      },
      5s))
      << dead << " never went NotReady";
  // Checked at every poll until attempt 2 runs: attempt 2 never starts
  // while a rank of attempt 1 lives.
  bool overlap = false;
  ASSERT_TRUE(cluster.WaitForJob(
      id,
      [&](const v1::Job& j) {
        const bool second = j.attempt() == 2 && j.state() == v1::JOB_STATE_RUNNING;
        if (!cluster.JobRanks(id, 2).empty() && !cluster.JobRanks(id, 1).empty()) overlap = true;
        return second;
      },
      15s, &job, "attempt 2 Running"));
  EXPECT_FALSE(overlap) << "ranks of attempts 1 and 2 ran at once";
  EXPECT_TRUE(cluster.JobRanks(id, 1).empty()) << "ranks of attempt 1 outlived the lease";
  EXPECT_EQ(job.restarts(), 1);
  for (const auto& r : job.ranks()) EXPECT_NE(r.node(), dead) << "rank " << r.rank();
  EXPECT_EQ(cluster.JobRanks(id, 2).size(), 4u);

  RunResult cancel = cluster.Cli({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_CANCELLED, 10s));
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 2s));
}

// kill -9 on an agent mid-job, then the same agent started again on the
// same state directory, as systemd's Restart= does: its ranks ran on under
// their keepers, the new agent re-adopts them, and the job succeeds with
// its original ranks and attempt number.
TEST(FaultsIntegration, AgentKilledAndRestartedReadoptsItsRanks) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string go = cluster.dir().Sub("go");
  const std::string id = cluster.Submit(
      "name: adopt\nreplicas: 2\nprocsPerNode: 2\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "restartPolicy: OnFailure\nbackoffLimit: 2\n"
      "command: [sh, -c, 'while [ ! -e " +
      go + " ]; do sleep 0.05; done; echo done-$RANK']\n");
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  const std::map<int, int64_t> pids = RankPids(job);
  const int index = NodeIndex(job.ranks(0).node());

  cluster.agent(index).Signal(SIGKILL);
  ASSERT_TRUE(cluster.agent(index).Wait(5s).has_value());
  ASSERT_TRUE(cluster.StartAgent(index));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 2; }, 10s));
  std::ofstream(go) << "";

  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s, &job));
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.restarts(), 0);
  EXPECT_EQ(RankPids(job), pids) << "the ranks were replaced, not re-adopted";
  for (const auto& r : job.ranks()) EXPECT_EQ(r.exit_code(), 0) << "rank " << r.rank();
  RunResult logs = cluster.Cli({"logs", id, "--rank", "0"});
  EXPECT_EQ(logs.code, 0) << logs.err;
  EXPECT_NE(logs.out.find("done-0"), std::string::npos) << logs.out;
}

// A frozen agent (SIGSTOP past the lease) cannot stop anything itself: its
// ranks' keepers stop them when the lease runs out, before the coordinator
// counts them as lost, so the job (restartPolicy Never) fails with nothing
// left running. When the agent thaws it reconnects and reports the exits.
TEST(FaultsIntegration, AgentFrozenPastTimeoutFailsJobAndItsRanksAreStopped) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(SleepJob("frozen", "restartPolicy: Never\n"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  const std::string frozen = job.ranks(3).node();
  Process& agent = cluster.agent(NodeIndex(frozen));

  agent.Signal(SIGSTOP);
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_FAILED, 10s, &job));
  EXPECT_NE(job.reason().find("node was lost"), std::string::npos) << job.reason();
  std::optional<v1::Node> node = cluster.GetNode(frozen);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->state(), v1::NODE_STATE_NOT_READY);
  EXPECT_TRUE(cluster.JobRanks(id).empty())
      << cluster.JobRanks(id).size() << " ranks still run when the coordinator gave up on them";

  agent.Signal(SIGCONT);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Node> n = cluster.GetNode(frozen);
        return n && n->state() == v1::NODE_STATE_READY;
      },
      10s))
      << frozen << " did not come back";
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 5s))
      << cluster.JobProcesses(id).size() << " processes of the failed job left after reconnect";
}

// A stall shorter than --node-timeout changes nothing: same attempt, same
// processes.
TEST(FaultsIntegration, AgentStalledWithinTimeoutRelaunchesNothing) {
  Cluster cluster;
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(SleepJob("stall",
                                                 "restartPolicy: OnFailure\n"
                                                 "backoffLimit: 3\n"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  const std::map<int, int64_t> pids = RankPids(job);
  Process& agent = cluster.agent(NodeIndex(job.ranks(0).node()));

  agent.Signal(SIGSTOP);
  // The fault itself: frozen for 0.3 s, well inside the 2 s --node-timeout
  // (heartbeats every 0.2 s).
  std::this_thread::sleep_for(300ms);
  agent.Signal(SIGCONT);

  // Past two node timeouts: still the first attempt with the same ranks.
  EXPECT_TRUE(HoldsFor(
      [&] {
        std::optional<v1::Job> j = cluster.GetJob(id);
        return j && j->state() == v1::JOB_STATE_RUNNING && j->attempt() == 1 &&
               RankPids(*j) == pids && cluster.ReadyNodes() == 2;
      },
      4s))
      << "the stall was treated as a node loss";
  EXPECT_EQ(cluster.JobRanks(id).size(), 4u);
  job = cluster.GetJob(id).value_or(v1::Job());
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.restarts(), 0);
}

// The coordinator stops (SIGTERM) and starts again on the same state and
// the same port while a gang runs: the agents reconnect on their own, the
// job keeps its attempt and its processes, and completes.
TEST(FaultsIntegration, CoordinatorRestartKeepsRunningJob) {
  ClusterOptions options;
  // Recovered nodes time out like silent ones: the agents must be back
  // within --node-timeout of the restart, or the job fails; and the ranks
  // stop themselves when their node's lease (the node timeout) runs out.
  // 6 s leaves room for a coordinator restart on a busy 2-core machine.
  options.coordinator_flags = {"--node-timeout", "6", "--heartbeat-interval", "0.2",
                               "--stop-grace",   "1"};
  Cluster cluster(options);
  const int port = FreePort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(cluster.StartCoordinator(listen));
  ASSERT_EQ(cluster.address(), listen);
  ASSERT_TRUE(cluster.StartAgent(0));
  ASSERT_TRUE(cluster.StartAgent(1));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 2; }, 10s));

  const std::string go = cluster.dir().Sub("go");
  const std::string id = cluster.Submit(
      "name: survive\nreplicas: 2\nprocsPerNode: 2\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "env:\n  GO_FILE: '" +
      go +
      "'\ncommand: [sh, -c]\nargs:\n  - 'echo started; while [ ! -e \"$GO_FILE\" ]; do sleep "
      "0.05; done'\n");
  v1::Job before;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &before));
  ASSERT_EQ(cluster.JobRanks(id).size(), 4u);
  const std::vector<pid_t> ranks_before = cluster.JobRanks(id);

  ASSERT_TRUE(cluster.StopCoordinator());
  // The fault: the coordinator stays away 1.5 s, long enough for the agents'
  // reconnect attempts to back off several times.
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(cluster.StartCoordinator(listen));
  ASSERT_EQ(cluster.address(), listen);

  // The job was recovered from the store as it was.
  std::optional<v1::Job> recovered = cluster.GetJob(id);
  ASSERT_TRUE(recovered);
  EXPECT_EQ(recovered->attempt(), before.attempt());

  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 2; }, 10s))
      << "agents did not reconnect";
  v1::Job after;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 5s, &after));
  EXPECT_EQ(after.attempt(), 1);
  EXPECT_EQ(after.restarts(), 0);
  EXPECT_EQ(RankPids(after), RankPids(before));
  // Nothing launched twice: the same four rank processes, and nothing more.
  EXPECT_TRUE(HoldsFor(
      [&] {
        std::optional<v1::Job> j = cluster.GetJob(id);
        return j && j->state() == v1::JOB_STATE_RUNNING && j->attempt() == 1 &&
               cluster.JobRanks(id) == ranks_before;
      },
      1s))
      << "ranks changed after the agents reconnected";

  WriteFile(go, "");
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 15s, &after));
  EXPECT_EQ(after.attempt(), 1);
  EXPECT_EQ(after.restarts(), 0);
  for (int r = 0; r < 4; ++r) {
    std::optional<std::string> log = cluster.Logs(id, r);
    ASSERT_TRUE(log) << "rank " << r;
    EXPECT_EQ(*log, "started\n") << "rank " << r;
  }
}

}  // namespace
}  // namespace gangway::itest

namespace gangway::itest {
namespace {

// A cloned machine: a second agent under a live node's name is refused, and
// the first keeps its node and its running job (before, the two took turns
// and the job failed as "node lost").
TEST(FaultsIntegration, ASecondAgentUnderALiveNodesNameIsRefused) {
  ClusterOptions options;
  options.agents = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(
      "name: keep\nresources: {cpus: 0.5, memory: 16Mi}\ncommand: [sh, -c, 'sleep 60']\n");
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s));

  std::unique_ptr<Process> clone =
      Process::Spawn({AgentBinary(), "--coordinator", cluster.address(), "--name",
                      Cluster::NodeName(0), "--address", "127.0.0.1", "--state",
                      cluster.dir().Sub("clone"), "--cpus", "2", "--memory", "1Gi"},
                     cluster.dir().Sub("clone.out"), cluster.dir().Sub("clone.log"));
  ASSERT_NE(clone, nullptr);
  EXPECT_TRUE(WaitFor(
      [&] {
        return clone->Stderr().find("already connected from another agent") != std::string::npos;
      },
      10s))
      << clone->Stderr();
  EXPECT_TRUE(HoldsFor(
      [&] {
        std::optional<v1::Job> job = cluster.GetJob(id);
        return job && job->state() == v1::JOB_STATE_RUNNING && job->attempt() == 1 &&
               cluster.ReadyNodes() == 1;
      },
      1500ms))
      << "the clone took the node from the live agent";
  clone->Stop(3s);
}

}  // namespace
}  // namespace gangway::itest
