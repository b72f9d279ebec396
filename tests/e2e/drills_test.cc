// Fault drills on the multi-host test bed: a host that loses power, a
// partition that swallows bytes and then heals, and links with loss and
// delay. Each drill prints its figures as "[ figure ] NAME = VALUE" lines;
// docs/reliability.md records them.
#include "gtest/gtest.h"
#include "tests/e2e/history.h"
#include "tests/e2e/testbed.h"

namespace gangway::e2e {
namespace {

double Seconds(SteadyClock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0;
}

void Figure(const std::string& name, double value, const std::string& unit) {
  std::cout << "[ figure ] " << name << " = " << value << " " << unit << std::endl;
}

// Every rank of every attempt started once, and nothing of job `id` is
// left on any host.
void ExpectLaunchedOnceAndNothingLeft(Testbed& bed, const std::string& id) {
  for (const auto& [attempt, ranks] : ReadMarkers(bed.markers(), id)) {
    for (const auto& [rank, span] : ranks) {
      EXPECT_EQ(span.starts, 1) << "attempt " << attempt << " rank " << rank << " started "
                                << span.starts << " times";
    }
  }
  EXPECT_TRUE(WaitFor([&] { return bed.JobProcesses(id).empty(); }, 5s))
      << bed.JobProcesses(id).size() << " processes of job " << id << " orphaned";
}

::testing::AssertionResult NodeState(Testbed& bed, const std::string& node, v1::NodeState state,
                                     std::chrono::milliseconds timeout) {
  if (WaitFor(
          [&] {
            std::optional<v1::Node> n = bed.GetNode(node);
            return n && n->state() == state;
          },
          timeout)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << node << " not " << v1::NodeState_Name(state) << " within " << timeout.count() << " ms";
}

// A host loses power (its link goes silent and every process on it dies
// at once): the node is NotReady after the node timeout and the gang runs
// again on the two hosts left, never beside its first attempt.
TEST(Drills, HostPowerLossRelaunchesGangElsewhere) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  Testbed bed;
  ASSERT_TRUE(bed.Start());
  const std::string id =
      bed.Submit(MarkerJob("power", bed.markers(), 2, 2, "restartPolicy: OnFailure\n"));
  v1::Job job;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_RUNNING, 15s, &job));
  ASSERT_TRUE(WaitFor([&] { return bed.JobProcesses(id, 1).size() >= 4; }, 5s));
  AttemptHistory history(bed.tag(), id);
  const std::string dead = job.ranks(0).node();
  const int victim = Testbed::NodeIndex(dead);

  const auto t0 = SteadyClock::now();
  ASSERT_TRUE(bed.firewall(victim).Cut());
  for (pid_t pid : bed.agent_host(victim).Pids()) ::kill(pid, SIGKILL);
  ASSERT_TRUE(NodeState(bed, dead, v1::NODE_STATE_NOT_READY, 10s));
  const auto detected = SteadyClock::now();
  ASSERT_TRUE(bed.WaitForJob(
      id,
      [](const v1::Job& j) {
        if (j.attempt() != 2 || j.state() != v1::JOB_STATE_RUNNING) return false;
        for (const auto& r : j.ranks()) {
          if (r.pid() <= 0) return false;
        }
        return true;
      },
      20s, &job, "attempt 2 Running"));
  const auto relaunched = SteadyClock::now();
  Figure("power_loss.detection_s", Seconds(detected - t0), "s");
  Figure("power_loss.relaunch_s", Seconds(relaunched - t0), "s");

  for (const auto& r : job.ranks()) EXPECT_NE(r.node(), dead) << "rank " << r.rank();
  EXPECT_EQ(job.restarts(), 1);
  RunResult cancel = bed.Cli({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_CANCELLED, 10s));
  EXPECT_TRUE(history.NeverTwoAtOnce(bed.markers(), id));
  ExpectLaunchedOnceAndNothingLeft(bed, id);
}

// A partition that drops every packet of one host, held well past the
// lease, then healed. The cut-off agent stops its own ranks when its lease
// runs out; only then is the gang relaunched on the other hosts. After the
// heal the agent reconnects, and nothing runs twice or is left behind.
TEST(Drills, PartitionThenHealNeverTwoAttemptsAtOnce) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  Testbed bed;
  ASSERT_TRUE(bed.Start());
  const std::string id =
      bed.Submit(MarkerJob("split", bed.markers(), 2, 2, "restartPolicy: OnFailure\n"));
  v1::Job job;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_RUNNING, 15s, &job));
  ASSERT_TRUE(WaitFor([&] { return bed.JobProcesses(id, 1).size() >= 4; }, 5s));
  AttemptHistory history(bed.tag(), id);
  const std::string cut = job.ranks(0).node();
  const int victim = Testbed::NodeIndex(cut);

  const auto t0 = SteadyClock::now();
  ASSERT_TRUE(bed.firewall(victim).Cut());
  ASSERT_TRUE(bed.WaitForJob(
      id, [](const v1::Job& j) { return j.attempt() == 2 && j.state() == v1::JOB_STATE_RUNNING; },
      20s, &job, "attempt 2 Running"));
  Figure("partition.relaunch_s", Seconds(SteadyClock::now() - t0), "s");
  for (const auto& r : job.ranks()) EXPECT_NE(r.node(), cut) << "rank " << r.rank();
  // The cut-off host's ranks are gone although nobody could reach it.
  EXPECT_TRUE(bed.JobProcesses(id, 1).empty())
      << bed.JobProcesses(id, 1).size() << " processes of attempt 1 alive beside attempt 2";

  // Partitioned for 8 s in all.
  std::this_thread::sleep_until(t0 + 8s);
  bed.firewall(victim).Heal();
  const auto healed = SteadyClock::now();
  ASSERT_TRUE(NodeState(bed, cut, v1::NODE_STATE_READY, 20s)) << "no reconnect after the heal";
  Figure("partition.reconnect_after_heal_s", Seconds(SteadyClock::now() - healed), "s");
  EXPECT_TRUE(HoldsFor(
      [&] {
        std::optional<v1::Job> j = bed.GetJob(id);
        return j && j->attempt() == 2 && j->state() == v1::JOB_STATE_RUNNING;
      },
      2s))
      << "the heal disturbed attempt 2";

  RunResult cancel = bed.Cli({"cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel.err;
  ASSERT_TRUE(bed.WaitForState(id, v1::JOB_STATE_CANCELLED, 10s));
  EXPECT_TRUE(history.NeverTwoAtOnce(bed.markers(), id));
  ExpectLaunchedOnceAndNothingLeft(bed, id);
}

// Every agent's link drops 5% of its packets both ways and every agent
// reaches the coordinator through a proxy adding 50 ms +- 20 ms each way
// (an RTT of ~100 ms, half the heartbeat interval): a stream of jobs
// completes, no node ever leaves Ready, and nothing is relaunched.
TEST(Drills, LossAndDelayJobsCompleteWithoutFlapping) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  TestbedOptions options;
  options.agent_delay = 50ms;
  options.agent_jitter = 20ms;
  Testbed bed(options);
  ASSERT_TRUE(bed.Start());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(bed.firewall(i).Loss(5));

  std::vector<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    ids.push_back(bed.Submit("name: lossy-" + std::to_string(i) +
                             "\nreplicas: 3\nresources: {cpus: 1, memory: 64Mi}\n"
                             "restartPolicy: OnFailure\n"
                             "command: [sh, -c, 'sleep 1.5; echo done']\n"));
  }
  int not_ready_polls = 0, polls = 0;
  std::set<std::string> flapped;
  const auto t0 = SteadyClock::now();
  const bool done = WaitFor(
      [&] {
        if (auto nodes = bed.ListNodes()) {
          ++polls;
          for (const auto& n : nodes->nodes()) {
            if (n.state() != v1::NODE_STATE_READY) {
              ++not_ready_polls;
              flapped.insert(n.name());
            }
          }
        }
        for (const std::string& id : ids) {
          std::optional<v1::Job> j = bed.GetJob(id);
          if (!j || j->state() != v1::JOB_STATE_SUCCEEDED) return false;
        }
        return true;
      },
      60s);
  Figure("loss_delay.eight_jobs_s", Seconds(SteadyClock::now() - t0), "s");
  EXPECT_TRUE(done) << "jobs did not all succeed under loss and delay";
  EXPECT_EQ(not_ready_polls, 0) << "nodes left Ready in " << not_ready_polls << " of " << polls
                                << " polls: " << *flapped.begin();
  for (const std::string& id : ids) {
    std::optional<v1::Job> j = bed.GetJob(id);
    ASSERT_TRUE(j);
    EXPECT_EQ(j->attempt(), 1) << id << ": " << j->reason();
    EXPECT_EQ(j->state(), v1::JOB_STATE_SUCCEEDED) << id << ": " << j->reason();
  }
}

}  // namespace
}  // namespace gangway::e2e
