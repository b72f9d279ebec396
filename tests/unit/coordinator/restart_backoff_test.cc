// Crash-loop backoff: a gang that keeps failing waits longer and longer
// before it is placed again, with the clock injected.
#include <gtest/gtest.h>

#include <optional>

#include "common/clock.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

TEST(RestartBackoffTest, FirstRestartIsImmediateThenDoublesUpToTheCap) {
  EXPECT_EQ(RestartBackoffMs(0, 10'000, 300'000), 0);
  EXPECT_EQ(RestartBackoffMs(1, 10'000, 300'000), 0);
  EXPECT_EQ(RestartBackoffMs(2, 10'000, 300'000), 10'000);
  EXPECT_EQ(RestartBackoffMs(3, 10'000, 300'000), 20'000);
  EXPECT_EQ(RestartBackoffMs(4, 10'000, 300'000), 40'000);
  EXPECT_EQ(RestartBackoffMs(7, 10'000, 300'000), 300'000);
  EXPECT_EQ(RestartBackoffMs(1'000'000, 10'000, 300'000), 300'000) << "no overflow";
  EXPECT_EQ(RestartBackoffMs(5, 0, 300'000), 0) << "0 turns it off";
}

class CrashLoopTest : public ::testing::Test {
 protected:
  CrashLoopTest() {
    CoreOptions o;
    o.rendezvous_endpoint = "coord:7070";
    o.restart_backoff_ms = 10'000;
    o.restart_backoff_max_ms = 300'000;
    core_ = std::make_unique<Core>(&store_, &sink_, &clock_, o);
    EXPECT_TRUE(core_->OnRegister(1, fakes::RegisterMessage("n1")).ok());
  }

  std::string Submit() {
    v1::SubmitJobRequest req;
    req.set_yaml(
        "name: crash\ncommand: [false]\nresources: {cpus: 1}\nrestartPolicy: OnFailure\n"
        "backoffLimit: 10\n");
    std::optional<absl::StatusOr<v1::Job>> answer;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> job) { answer = std::move(job); });
    core_->Settle();
    EXPECT_TRUE(answer && answer->ok());
    return answer && answer->ok() ? (*answer)->id() : "";
  }

  // The launch Settle() just sent starts and its one rank exits 1.
  void StartAndFail(const std::string& id) {
    std::vector<fakes::Sent> sent = sink_.Take();
    for (const fakes::Sent& s : sent) {
      if (!s.msg.has_launch()) continue;
      core_->OnAgentMessage(1, fakes::GangStartedMessage(s.msg.launch(), 29500));
      core_->OnAgentMessage(1, fakes::RankExitedMessage(id, s.msg.launch().attempt(), 0, 1));
    }
    core_->Settle();
  }

  v1::Job Get(const std::string& id) { return core_->GetJob(id).value(); }

  void Advance(int64_t ms) {
    clock_.Advance(ms);
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    core_->OnAgentMessage(1, beat);
    core_->Tick();
    core_->Settle();
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
};

TEST_F(CrashLoopTest, AGangThatKeepsFailingWaitsLongerBeforeEachRelaunch) {
  const std::string id = Submit();
  ASSERT_EQ(Get(id).attempt(), 1);
  StartAndFail(id);
  // The first restart: at once.
  ASSERT_EQ(Get(id).attempt(), 2) << Get(id).reason();
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
  StartAndFail(id);

  // The second waits 10 s, holding nothing and saying why.
  v1::Job job = Get(id);
  EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(job.attempt(), 2);
  EXPECT_EQ(job.relaunch_after_ms(), clock_.NowMs() + 10'000);
  EXPECT_NE(job.reason().find("restart 2 waits 10 s (crash-loop backoff)"), std::string::npos)
      << job.reason();
  EXPECT_EQ(store_.jobs.at(id).relaunch_after_ms(), job.relaunch_after_ms()) << "stored";
  Advance(9'900);
  EXPECT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  EXPECT_EQ(Get(id).attempt(), 2);
  Advance(100);
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_SCHEDULED);
  EXPECT_EQ(Get(id).attempt(), 3);

  // The third waits 20 s.
  StartAndFail(id);
  EXPECT_EQ(Get(id).relaunch_after_ms(), clock_.NowMs() + 20'000);
  Advance(19'000);
  EXPECT_EQ(Get(id).attempt(), 3);
  Advance(1'000);
  EXPECT_EQ(Get(id).attempt(), 4);
}

TEST_F(CrashLoopTest, ABackingOffJobLeavesItsNodeToOthers) {
  const std::string id = Submit();
  StartAndFail(id);
  StartAndFail(id);
  ASSERT_EQ(Get(id).state(), v1::JOB_STATE_PENDING);
  for (const v1::Node& n : core_->ListNodes()) EXPECT_EQ(n.allocated().milli_cpus(), 0);
}

}  // namespace
}  // namespace gangway::coordinator
