// Drills on the coordinator's store: SIGKILL in the middle of a sweep,
// and a state directory that runs out of space.
#include <set>

#include "absl/strings/str_cat.h"
#include "common/list_jobs.h"
#include "gtest/gtest.h"
#include "tests/e2e/testbed.h"

namespace gangway::e2e {
namespace {

std::optional<v1::Sweep> GetSweep(Testbed& bed, const std::string& id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::GetSweepRequest req;
  req.set_id(id);
  v1::Sweep sweep;
  if (!v1::Sweeps::NewStub(bed.channel())->GetSweep(&ctx, req, &sweep).ok()) return std::nullopt;
  return sweep;
}

// The job's metric points as comparable text, or nullopt when the call
// failed. A multiset: a point stored twice shows.
std::optional<std::multiset<std::string>> Points(Testbed& bed, const std::string& job) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  v1::GetMetricsRequest req;
  req.set_job_id(job);
  v1::GetMetricsResponse resp;
  if (!v1::Sweeps::NewStub(bed.channel())->GetMetrics(&ctx, req, &resp).ok()) return std::nullopt;
  std::multiset<std::string> out;
  for (const v1::MetricPoint& p : resp.points()) {
    out.insert(absl::StrCat(p.name(), "@", p.step(), "=", p.value(), "#", p.attempt()));
  }
  return out;
}

struct Done {
  std::string job;
  double objective = 0;
  std::multiset<std::string> points;
};

// SIGKILL to the coordinator three times while a sweep runs, each time
// with trials finished and trials running: every trial finished before a
// kill is there after it with its objective and every metric point the
// coordinator served before the kill, no trial number or job is used
// twice, and the sweep ends with exactly maxTrials trials. With
// `every_printed_point`, also every point the trials printed (4 steps and
// the objective) is stored.
void SweepKillDrill(bool every_printed_point) {
  TestbedOptions options;
  // Restarted nodes must re-register within the node timeout.
  options.coordinator_flags = {"--node-timeout", "3", "--heartbeat-interval", "0.2",
                               "--stop-grace",   "1"};
  Testbed bed(options);
  ASSERT_TRUE(bed.Start());
  constexpr int kMaxTrials = 12;
  const std::string spec = bed.WriteSpec(
      "sweep.yaml", absl::StrCat("kind: Sweep\nname: killed\n"
                                 "objective: {metric: loss, type: minimize}\n"
                                 "parameters:\n  - {name: x, type: int, min: 0, max: 100000}\n"
                                 "algorithm: {name: random, seed: 5}\n"
                                 "parallelTrials: 3\nmaxTrials: ",
                                 kMaxTrials,
                                 "\nmaxFailedTrials: 0\n"
                                 "trialTemplate:\n"
                                 "  resources: {cpus: 1, memory: 64Mi}\n"
                                 // Four intermediate points, then the objective.
                                 "  command: [sh, -c, 'for i in 1 2 3 4; do echo \"step=$i "
                                 "loss=$i.5\"; sleep 0.3; done; echo loss=${trial.x}']\n"));
  RunResult submit = bed.Cli({"submit", spec});
  ASSERT_EQ(submit.code, 0) << submit.err;
  const size_t at = submit.out.find("sweep/");
  ASSERT_NE(at, std::string::npos) << submit.out;
  const std::string id = submit.out.substr(at + 6, submit.out.find(' ', at) - at - 6);

  std::map<int64_t, Done> done;  // by trial number
  for (int kill = 0; kill < 3; ++kill) {
    // 2, 5 and 8 trials finished, and some running.
    v1::Sweep sweep;
    ASSERT_TRUE(WaitFor(
        [&] {
          std::optional<v1::Sweep> s = GetSweep(bed, id);
          if (!s) return false;
          sweep = *s;
          size_t finished = 0, running = 0;
          for (const v1::Trial& t : s->trials()) {
            finished += t.state() == v1::TRIAL_STATE_SUCCEEDED;
            running += t.state() == v1::TRIAL_STATE_RUNNING;
          }
          return finished >= 2 + 3 * static_cast<size_t>(kill) && running > 0;
        },
        30s))
        << "kill " << kill << ": " << sweep.DebugString();
    for (const v1::Trial& t : sweep.trials()) {
      if (t.state() != v1::TRIAL_STATE_SUCCEEDED || done.contains(t.number())) continue;
      std::optional<std::multiset<std::string>> points = Points(bed, t.job_id());
      ASSERT_TRUE(points);
      if (every_printed_point) {
        EXPECT_EQ(points->size(), 5u) << "trial " << t.number() << " before the kill";
      }
      done[t.number()] = {t.job_id(), t.objective(), *points};
    }
    bed.coordinator().Signal(SIGKILL);
    ASSERT_TRUE(bed.coordinator().Wait(5s).has_value());
    ASSERT_TRUE(bed.StartCoordinator()) << "restart " << kill + 1;
    // Everything finished before the kill is back as it was.
    std::optional<v1::Sweep> after;
    ASSERT_TRUE(WaitFor([&] { return (after = GetSweep(bed, id)).has_value(); }, 10s));
    for (const auto& [number, d] : done) {
      SCOPED_TRACE(absl::StrCat("kill ", kill + 1, ", trial ", number));
      ASSERT_GE(after->trials_size(), number);
      const v1::Trial& t = after->trials(number - 1);
      EXPECT_EQ(t.number(), number);
      EXPECT_EQ(t.job_id(), d.job);
      EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED);
      EXPECT_EQ(t.objective(), d.objective);
      EXPECT_EQ(Points(bed, d.job), d.points);
    }
  }

  v1::Sweep sweep;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Sweep> s = GetSweep(bed, id);
        if (s) sweep = *s;
        return s && s->state() != v1::SWEEP_STATE_RUNNING;
      },
      60s))
      << sweep.DebugString();
  EXPECT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), kMaxTrials);
  std::set<int64_t> numbers;
  std::set<std::string> jobs;
  for (const v1::Trial& t : sweep.trials()) {
    SCOPED_TRACE(absl::StrCat("trial ", t.number()));
    EXPECT_TRUE(numbers.insert(t.number()).second) << "trial number reused";
    EXPECT_TRUE(jobs.insert(t.job_id()).second) << "trial job reused";
    EXPECT_EQ(t.state(), v1::TRIAL_STATE_SUCCEEDED) << t.reason();
    if (every_printed_point) {
      EXPECT_EQ(Points(bed, t.job_id()).value_or(std::multiset<std::string>()).size(), 5u);
    }
    std::optional<v1::Job> job = bed.GetJob(t.job_id());
    ASSERT_TRUE(job);
    EXPECT_EQ(job->attempt(), 1) << "a trial ran twice";
  }
  EXPECT_EQ(*numbers.begin(), 1);
  EXPECT_EQ(*numbers.rbegin(), kMaxTrials);
}

TEST(StoreDrills, CoordinatorKill9MidSweepKeepsTrialsAndPoints) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  SweepKillDrill(false);
}

// Every point a trial printed is kept, also those its agent sent just as
// the coordinator died: the agent sends again what the coordinator had not
// acknowledged (MetricsAck), and the coordinator drops what it already has
// (MetricPoint.seq). Before, a trial running across a kill kept 4 of its 5
// points.
TEST(StoreDrills, CoordinatorKill9MidSweepKeepsEveryPrintedPoint) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  SweepKillDrill(true);
}

// The coordinator's state directory is a 4 MiB tmpfs that the test fills:
// submissions are refused with an error that says so, what was stored
// stays readable, a job that ends meanwhile is recorded once space comes
// back, and after a SIGKILL the store holds exactly what was acknowledged.
TEST(StoreDrills, StateDirectoryFullRefusesSubmitsAndRecovers) {
  GANGWAY_E2E_REQUIRE_TESTBED();
  itest::TempDir base;
  Tmpfs disk(base.path(), 4 << 20);
  TestbedOptions options;
  options.agents = 1;
  options.coordinator_state = disk.path() + "/state";
  Testbed bed(options);
  ASSERT_TRUE(bed.Start());

  std::vector<std::string> acked;
  for (int i = 0; i < 3; ++i) {
    acked.push_back(
        bed.Submit(absl::StrCat("name: before-", i, "\nresources: {cpus: 0}\ncommand: [true]\n")));
    ASSERT_TRUE(bed.WaitForState(acked.back(), v1::JOB_STATE_SUCCEEDED, 15s));
  }
  const std::string go = bed.markers() + "/go";
  const std::string running =
      bed.Submit("name: during\nresources: {cpus: 1}\ncommand: [sh, -c, 'while [ ! -e " + go +
                 " ]; do sleep 0.05; done']\n");
  acked.push_back(running);
  ASSERT_TRUE(bed.WaitForState(running, v1::JOB_STATE_RUNNING, 15s));

  const std::string filler = disk.path() + "/filler";
  ASSERT_GT(Tmpfs::Fill(filler), 0);
  RunResult refused = bed.Cli({"submit", bed.WriteSpec("full.yaml",
                                                       "name: refused\nresources: {cpus: 0}\n"
                                                       "command: [true]\n")});
  EXPECT_NE(refused.code, 0) << refused.out;
  EXPECT_NE(refused.err.find("not accepted"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("full"), std::string::npos)
      << "the error does not say the store is full: " << refused.err;
  EXPECT_EQ(refused.err.find("is a coordinator running"), std::string::npos) << refused.err;
  // What is stored can still be read, and the running job ends meanwhile.
  for (const std::string& id : acked) EXPECT_TRUE(bed.GetJob(id)) << id;
  itest::WriteFile(go, "");
  ASSERT_TRUE(bed.WaitForState(running, v1::JOB_STATE_SUCCEEDED, 15s));

  std::filesystem::remove(filler);
  // Space is back: submissions are taken again.
  std::string after;
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Job job;
        if (!bed.SubmitYaml("name: after\nresources: {cpus: 0}\ncommand: [true]\n", &job).ok()) {
          return false;
        }
        after = job.id();
        return true;
      },
      10s))
      << "submissions still refused once space came back";
  acked.push_back(after);
  ASSERT_TRUE(bed.WaitForState(after, v1::JOB_STATE_SUCCEEDED, 15s));

  // Nothing lost or half-written: after a SIGKILL the store holds every
  // acknowledged job in its last state, and not the refused one.
  bed.coordinator().Signal(SIGKILL);
  ASSERT_TRUE(bed.coordinator().Wait(5s).has_value());
  ASSERT_TRUE(bed.StartCoordinator());
  for (const std::string& id : acked) {
    std::optional<v1::Job> job = bed.GetJob(id);
    ASSERT_TRUE(job) << id << " lost";
    EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED) << id;
  }
  v1::ListJobsResponse list;
  ASSERT_TRUE(common::ListAllJobs(bed.stub(), true, kRpcTimeout, &list).ok());
  EXPECT_EQ(list.jobs_size(), static_cast<int>(acked.size()));
  for (const v1::Job& j : list.jobs()) EXPECT_NE(j.spec().name(), "refused");
}

}  // namespace
}  // namespace gangway::e2e
