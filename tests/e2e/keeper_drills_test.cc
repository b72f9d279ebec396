// Drills on what outlives an agent: ranks under per-rank keepers survive
// an agent's SIGKILL and are re-adopted by the restarted agent; the
// keepers' lease stops the ranks of an agent that is frozen or dead for
// good, so the gang never runs twice at once; and a rank's flood of output
// costs bounded disk and agent memory.
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/e2e/history.h"
#include "tests/e2e/testbed.h"

namespace gangway::e2e {
namespace {

void Figure(const std::string& name, double value, const std::string& unit) {
  std::cout << "[ figure ] " << name << " = " << value << " " << unit << std::endl;
}

std::map<int, int64_t> RankPids(const v1::Job& job) {
  std::map<int, int64_t> out;
  for (const auto& r : job.ranks()) out[r.rank()] = r.pid();
  return out;
}

// A gang whose ranks wait for GO, then exit 0.
std::string GoJob(const std::string& name, const std::string& go) {
  return "name: " + name +
         "\nreplicas: 2\nprocsPerNode: 2\nresources: {cpus: 1, memory: 64Mi}\n"
         "restartPolicy: OnFailure\n"
         "command: [sh, -c, 'while [ ! -e " +
         go + " ]; do sleep 0.05; done']\n";
}

// SIGKILL to the agent holding rank 0 (its ranks keep running under their
// keepers), then the agent starts again under the same name and state: it
// re-adopts the ranks, and the job finishes with its first attempt and its
// original processes.
TEST(KeeperDrills, AgentRestartMidJobReadoptsRanks) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  TestbedOptions options;
  // The agent is back well within the node timeout.
  options.coordinator_flags = {"--node-timeout", "5", "--heartbeat-interval", "0.2",
                               "--stop-grace",   "1"};
  Testbed bed(options);
  ASSERT_TRUE(bed.Start());
  const std::string go = bed.markers() + "/go";
  const std::string id = bed.Submit(GoJob("readopt", go));
  v1::Job before;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_RUNNING, 15s, &before));
  const std::vector<pid_t> processes = bed.JobProcesses(id, 1);
  const int victim = Testbed::NodeIndex(before.ranks(0).node());

  bed.agent(victim).Signal(SIGKILL);
  ASSERT_TRUE(bed.agent(victim).Wait(5s).has_value());
  ASSERT_TRUE(bed.StartAgent(victim));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Node> n = bed.GetNode(before.ranks(0).node());
        return n && n->state() == v1::NODE_STATE_READY && n->running_ranks() == 2;
      },
      10s))
      << "the restarted agent did not report its 2 ranks";
  std::optional<v1::Job> job = bed.GetJob(id);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->attempt(), 1);
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(RankPids(*job), RankPids(before));

  // Only the new agent can report these exits: the old one is dead.
  itest::WriteFile(go, "");
  v1::Job after;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 15s, &after));
  EXPECT_EQ(after.attempt(), 1);
  EXPECT_EQ(after.restarts(), 0);
  for (const auto& r : after.ranks()) EXPECT_EQ(r.exit_code(), 0) << "rank " << r.rank();
  EXPECT_TRUE(WaitFor([&] { return bed.JobProcesses(id).empty(); }, 5s));
}

// SIGSTOP on an agent past its lease: its keepers stop its ranks when the
// lease the agent can no longer renew runs out, and only then is the gang
// relaunched on the other hosts. SIGCONT: the agent reconnects and nothing
// is orphaned.
TEST(KeeperDrills, FrozenAgentRanksStoppedBeforeRelaunch) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  Testbed bed;
  ASSERT_TRUE(bed.Start());
  const std::string id =
      bed.Submit(MarkerJob("frozen", bed.markers(), 2, 2, "restartPolicy: OnFailure\n"));
  v1::Job job;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_RUNNING, 15s, &job));
  ASSERT_TRUE(WaitFor([&] { return bed.JobProcesses(id, 1).size() >= 4; }, 5s));
  AttemptHistory history(bed.tag(), id);
  const int victim = Testbed::NodeIndex(job.ranks(0).node());

  bed.agent(victim).Signal(SIGSTOP);
  ASSERT_TRUE(bed.WaitForJob(
      id, [](const v1::Job& j) { return j.attempt() == 2 && j.state() == v1::JOB_STATE_RUNNING; },
      20s, &job, "attempt 2 Running"));
  EXPECT_TRUE(bed.JobProcesses(id, 1).empty())
      << bed.JobProcesses(id, 1).size() << " processes of attempt 1 beside attempt 2";
  bed.agent(victim).Signal(SIGCONT);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Node> n = bed.GetNode(Testbed::NodeName(victim));
        return n && n->state() == v1::NODE_STATE_READY;
      },
      15s));
  RunResult cancel = bed.Cli({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_CANCELLED, 10s));
  EXPECT_TRUE(history.NeverTwoAtOnce(bed.markers(), id));
  EXPECT_TRUE(WaitFor([&] { return bed.JobProcesses(id).empty(); }, 5s));
}

// SIGKILL to an agent that never comes back, its ranks left running: the
// keepers' lease stops them, so the relaunch elsewhere never overlaps them.
TEST(KeeperDrills, AgentKill9OrphansNeverOverlapNextAttempt) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  Testbed bed;
  ASSERT_TRUE(bed.Start());
  const std::string id =
      bed.Submit(MarkerJob("orphans", bed.markers(), 2, 2, "restartPolicy: OnFailure\n"));
  v1::Job job;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_RUNNING, 15s, &job));
  ASSERT_TRUE(WaitFor([&] { return bed.JobProcesses(id, 1).size() >= 4; }, 5s));
  AttemptHistory history(bed.tag(), id);
  const int victim = Testbed::NodeIndex(job.ranks(0).node());

  const auto t0 = SteadyClock::now();
  bed.agent(victim).Signal(SIGKILL);
  ASSERT_TRUE(bed.agent(victim).Wait(5s).has_value());
  ASSERT_TRUE(bed.WaitForJob(
      id, [](const v1::Job& j) { return j.attempt() == 2 && j.state() == v1::JOB_STATE_RUNNING; },
      20s, &job, "attempt 2 Running"));
  Figure("agent_kill9.relaunch_s",
         std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count() /
             1000.0,
         "s");
  RunResult cancel = bed.Cli({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_CANCELLED, 10s));
  EXPECT_TRUE(history.NeverTwoAtOnce(bed.markers(), id));
  EXPECT_TRUE(WaitFor([&] { return bed.JobProcesses(id).empty(); }, 5s))
      << bed.JobProcesses(id).size() << " processes orphaned";
}

int64_t RssKb(pid_t pid) {
  for (const std::string& line :
       Lines(itest::ReadFile("/proc/" + std::to_string(pid) + "/status"))) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

int64_t DiskBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<int64_t>(it->file_size(ec));
  }
  return total;
}

// A rank writes 2 GiB to stdout: the job succeeds, the agent's memory
// stays small and its state directory holds no more than the per-rank log
// cap (--log-max-bytes, 64 MiB by default; before logs were rotated the
// whole 2 GiB landed on the agent's disk).
TEST(KeeperDrills, RankWriting2GiBToStdoutIsBounded) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  TestbedOptions options;
  options.agents = 1;
  Testbed bed(options);
  ASSERT_TRUE(bed.Start());
  const std::string id = bed.Submit(
      "name: flood\nresources: {cpus: 1}\n"
      "command: [sh, -c, 'yes 0123456789012345678901234567890123456789012345678901234567890123"
      "456789012345678901234567890123456789012345678901234567890123456 | head -c 2147483648; "
      "echo loss=0.25']\n");
  int64_t max_rss_kb = 0, max_disk = 0;
  const pid_t agent = bed.agent(0).pid();
  const std::string state = bed.dir().Sub(Testbed::NodeName(0));
  const auto t0 = SteadyClock::now();
  v1::Job job;
  const bool done = WaitFor(
      [&] {
        max_rss_kb = std::max(max_rss_kb, RssKb(agent));
        max_disk = std::max(max_disk, DiskBytes(state));
        std::optional<v1::Job> j = bed.GetJob(id);
        if (j) job = *j;
        return j && (j->state() == v1::JOB_STATE_SUCCEEDED || j->state() == v1::JOB_STATE_FAILED);
      },
      100s);
  ASSERT_TRUE(done) << "the flood did not end: " << v1::JobState_Name(job.state());
  Figure("flood.seconds",
         std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count() /
             1000.0,
         "s");
  Figure("flood.agent_max_rss_mib", max_rss_kb / 1024.0, "MiB");
  Figure("flood.agent_state_max_mib", max_disk / 1048576.0, "MiB");
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.reason();
  EXPECT_LT(max_rss_kb, 256 * 1024) << "agent RSS grew with the rank's output";
  // The cap, and a MiB for the keeper's records and the index.
  EXPECT_LT(max_disk, int64_t{65} << 20) << "the rank's log was not capped";
}

}  // namespace
}  // namespace gangway::e2e
