// Finished jobs and sweeps are deleted after ttlSecondsAfterFinished (or
// the coordinator's default), from memory and from the store with their
// metric points; a sweep's trial jobs go with it. Time is a FakeClock.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class GcTest : public ::testing::Test {
 protected:
  void MakeCore(int64_t default_ttl_s = -1, Store* store = nullptr) {
    CoreOptions o;
    o.rendezvous_endpoint = "coord:7070";
    o.restart_backoff_ms = 0;
    o.lease_ms = 0;
    o.ttl_after_finished_s = default_ttl_s;
    core_ = std::make_unique<Core>(store ? store : &store_, &sink_, &clock_, o);
    ASSERT_TRUE(core_->Recover().ok());
    EXPECT_TRUE(core_->OnRegister(1, fakes::RegisterMessage("n1")).ok());
  }

  // Every launch sent so far starts; with `exit`, its ranks then exit 0
  // after reporting loss=`loss`.
  void RunLaunches(bool exit = true, double loss = 0.5) {
    for (const fakes::Sent& s : sink_.Take()) {
      if (!s.msg.has_launch()) continue;
      const v1::LaunchGang& l = s.msg.launch();
      core_->OnAgentMessage(1, fakes::GangStartedMessage(l, 29500));
      if (!exit) continue;
      v1::MetricPoint p;
      p.set_name("loss");
      p.set_value(loss);
      core_->OnMetrics(l.job_id(), l.attempt(), 0, {p});
      for (const v1::RankLaunch& rl : l.ranks()) {
        core_->OnAgentMessage(1, fakes::RankExitedMessage(l.job_id(), l.attempt(), rl.rank(), 0));
      }
    }
    core_->Settle();
  }

  std::string SubmitJob(const std::string& extra) {
    v1::SubmitJobRequest req;
    req.set_yaml("name: j\ncommand: [x]\n" + extra);
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
    core_->Settle();
    EXPECT_TRUE(answer && answer->ok()) << (answer ? answer->status().ToString() : "no answer");
    return answer && answer->ok() ? (*answer)->id() : "";
  }

  // Time passes; the node heartbeats each second.
  void Advance(int64_t ms) {
    while (ms > 0) {
      const int64_t step = std::min<int64_t>(ms, 1000);
      clock_.Advance(step);
      ms -= step;
      v1::AgentMessage beat;
      beat.mutable_heartbeat();
      core_->OnAgentMessage(1, beat);
      core_->Tick();
      core_->Settle();
    }
  }

  bool JobExists(const std::string& id) { return core_->GetJob(id).ok(); }

  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  common::FakeClock clock_;
  std::unique_ptr<Core> core_;
};

TEST_F(GcTest, JobIsDeletedWithItsMetricsOnceItsTtlHasPassed) {
  MakeCore();
  const std::string id = SubmitJob("ttlSecondsAfterFinished: 60\n");
  RunLaunches();
  ASSERT_EQ(core_->GetJob(id)->state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_FALSE(store_.metrics[id].empty());
  Advance(59'000);
  EXPECT_TRUE(JobExists(id)) << "not before its TTL";
  EXPECT_TRUE(store_.jobs.contains(id));
  Advance(2'000);
  EXPECT_EQ(core_->GetJob(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(store_.jobs.contains(id)) << "deleted from the store";
  EXPECT_FALSE(store_.metrics.contains(id)) << "with its metric points";
  for (const v1::Job& j : core_->ListJobs(true)) EXPECT_NE(j.id(), id);
}

TEST_F(GcTest, ZeroDeletesAtOnceAndRunningJobsAreNeverCollected) {
  MakeCore(/*default_ttl_s=*/0);
  const std::string done = SubmitJob("ttlSecondsAfterFinished: 0\n");
  RunLaunches();
  const std::string running = SubmitJob("");
  RunLaunches(/*exit=*/false);
  Advance(1'000);
  EXPECT_FALSE(JobExists(done));
  EXPECT_FALSE(store_.jobs.contains(done));
  ASSERT_TRUE(JobExists(running));
  EXPECT_EQ(core_->GetJob(running)->state(), v1::JOB_STATE_RUNNING);
  Advance(3'600'000);
  EXPECT_TRUE(JobExists(running));
}

// The coordinator's --ttl-after-finished applies where the spec says
// nothing; -1 (the default) keeps finished jobs.
TEST_F(GcTest, DefaultTtlAppliesUnlessTheSpecSetsOne) {
  MakeCore(/*default_ttl_s=*/10);
  const std::string by_default = SubmitJob("");
  RunLaunches();
  const std::string own = SubmitJob("ttlSecondsAfterFinished: 3600\n");
  RunLaunches();
  Advance(11'000);
  EXPECT_FALSE(JobExists(by_default));
  EXPECT_TRUE(JobExists(own));
  Advance(3'600'000);
  EXPECT_FALSE(JobExists(own));

  store_ = fakes::FakeStore();
  MakeCore(/*default_ttl_s=*/-1);
  const std::string kept = SubmitJob("");
  RunLaunches();
  Advance(10 * 3'600'000);
  EXPECT_TRUE(JobExists(kept)) << "unset and no default: kept";
}

// A restarted coordinator finds finished jobs in the store and deletes
// them when their time comes, counted from when they ended.
TEST_F(GcTest, ExpiryIsRecoveredAfterARestart) {
  MakeCore();
  const std::string id = SubmitJob("ttlSecondsAfterFinished: 30\n");
  RunLaunches();
  Advance(20'000);
  MakeCore();  // same store: a restart
  ASSERT_TRUE(JobExists(id));
  Advance(9'000);
  EXPECT_TRUE(JobExists(id));
  Advance(2'000);
  EXPECT_FALSE(JobExists(id));
  EXPECT_FALSE(store_.jobs.contains(id));
}

// The SQLite store deletes the rows: the job and its points are gone when
// the file is opened again.
TEST_F(GcTest, SqliteStoreDeletesTheJobAndItsPoints) {
  fakes::SqliteDir dir;
  absl::Status error;
  Store* sqlite = dir.Reopen(&error);
  ASSERT_NE(sqlite, nullptr) << error;
  MakeCore(-1, sqlite);
  const std::string gone = SubmitJob("ttlSecondsAfterFinished: 10\n");
  RunLaunches();
  const std::string kept = SubmitJob("");
  RunLaunches();
  ASSERT_EQ(sqlite->LoadMetrics(gone)->size(), 1u);
  Advance(11'000);
  EXPECT_FALSE(JobExists(gone));
  core_.reset();
  sqlite = dir.Reopen(&error);
  ASSERT_NE(sqlite, nullptr) << error;
  absl::StatusOr<std::vector<v1::Job>> jobs = sqlite->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].id(), kept);
  EXPECT_TRUE(sqlite->LoadMetrics(gone)->empty());
  EXPECT_EQ(sqlite->LoadMetrics(kept)->size(), 1u);
}

// A sweep's trials' jobs and their metrics go with the sweep, not before.
TEST_F(GcTest, SweepGoesWithItsTrialJobs) {
  MakeCore();
  v1::SubmitSweepRequest req;
  req.set_yaml(
      "kind: Sweep\nname: sw\nobjective: {metric: loss, type: minimize}\n"
      "parameters:\n  - {name: x, type: discrete, values: [1, 2]}\nalgorithm: {name: grid}\n"
      "parallelTrials: 1\nmaxTrials: 2\nttlSecondsAfterFinished: 30\n"
      "trialTemplate:\n  command: [x]\n");
  std::optional<absl::StatusOr<v1::Sweep>> answer;
  core_->SubmitSweep(req, [&](absl::StatusOr<v1::Sweep> s) { answer = std::move(s); });
  core_->Settle();
  ASSERT_TRUE(answer && answer->ok());
  const std::string id = (*answer)->id();
  for (int i = 0; i < 4 && core_->GetSweep(id)->state() == v1::SWEEP_STATE_RUNNING; ++i) {
    RunLaunches();
    core_->Settle();
  }
  const v1::Sweep sweep = *core_->GetSweep(id);
  ASSERT_EQ(sweep.state(), v1::SWEEP_STATE_SUCCEEDED) << sweep.reason();
  ASSERT_EQ(sweep.trials_size(), 2);
  std::vector<std::string> trial_jobs;
  for (const v1::Trial& t : sweep.trials()) trial_jobs.push_back(t.job_id());
  // Trial jobs ended first, and are kept while their sweep is.
  Advance(29'000);
  for (const std::string& j : trial_jobs) EXPECT_TRUE(JobExists(j)) << j;
  EXPECT_TRUE(store_.sweeps.contains(id));
  Advance(2'000);
  EXPECT_EQ(core_->GetSweep(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(store_.sweeps.contains(id));
  for (const std::string& j : trial_jobs) {
    EXPECT_FALSE(JobExists(j)) << j;
    EXPECT_FALSE(store_.jobs.contains(j)) << j;
    EXPECT_FALSE(store_.metrics.contains(j)) << j;
  }
  EXPECT_TRUE(core_->ListSweeps(true).empty());
}

// The coordinator's default applies to sweeps too.
TEST_F(GcTest, DefaultTtlDeletesAFinishedSweep) {
  MakeCore(/*default_ttl_s=*/5);
  v1::SubmitSweepRequest req;
  req.set_yaml(
      "kind: Sweep\nname: sw\nobjective: {metric: loss, type: minimize}\n"
      "parameters:\n  - {name: x, type: discrete, values: [1]}\nalgorithm: {name: grid}\n"
      "maxTrials: 1\ntrialTemplate:\n  command: [x]\n");
  std::optional<absl::StatusOr<v1::Sweep>> answer;
  core_->SubmitSweep(req, [&](absl::StatusOr<v1::Sweep> s) { answer = std::move(s); });
  core_->Settle();
  ASSERT_TRUE(answer && answer->ok());
  const std::string id = (*answer)->id();
  RunLaunches();
  core_->Settle();
  ASSERT_EQ(core_->GetSweep(id)->state(), v1::SWEEP_STATE_SUCCEEDED);
  Advance(6'000);
  EXPECT_FALSE(core_->GetSweep(id).ok());
  EXPECT_TRUE(core_->ListJobs(true).empty()) << "its trial's job went with it";
}

TEST_F(GcTest, TtlOutOfRangeIsRefusedWithTheField) {
  MakeCore();
  {
    v1::SubmitSweepRequest req;
    req.set_yaml(
        "kind: Sweep\nname: sw\nobjective: {metric: loss, type: minimize}\n"
        "parameters:\n  - {name: x, type: discrete, values: [1]}\nalgorithm: {name: grid}\n"
        "maxTrials: 1\nttlSecondsAfterFinished: 315360001\ntrialTemplate:\n  command: [x]\n");
    std::optional<absl::StatusOr<v1::Sweep>> answer;
    core_->SubmitSweep(req, [&](absl::StatusOr<v1::Sweep> s) { answer = std::move(s); });
    core_->Settle();
    ASSERT_TRUE(answer);
    EXPECT_EQ(answer->status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(answer->status().message().find("ttlSecondsAfterFinished"), std::string::npos)
        << answer->status();
  }
  v1::SubmitJobRequest req;
  req.set_yaml("name: j\ncommand: [x]\nttlSecondsAfterFinished: -1\n");
  std::optional<absl::StatusOr<v1::Job>> answer;
  core_->Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
  core_->Settle();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(answer->status().message().find("ttlSecondsAfterFinished"), std::string::npos)
      << answer->status();
}

}  // namespace
}  // namespace gangway::coordinator
