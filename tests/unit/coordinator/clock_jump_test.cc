// Liveness, deadlines and backoff run on the monotonic clock: a wall-clock
// step (NTP, an operator) neither fails every node at once nor hides a dead
// one, and does not end jobs before their time.
#include <gtest/gtest.h>

#include <optional>

#include "common/clock.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class ClockJumpTest : public ::testing::Test {
 protected:
  ClockJumpTest() {
    CoreOptions o;
    o.node_timeout_ms = 5000;
    core_ = std::make_unique<Core>(&store_, &sink_, &clock_, o);
    for (int64_t session : {1, 2}) {
      EXPECT_TRUE(
          core_->OnRegister(session, fakes::RegisterMessage(absl::StrCat("n", session))).ok());
    }
  }

  void Heartbeat(int64_t session) {
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    core_->OnAgentMessage(session, beat);
  }

  int ReadyNodes() {
    int ready = 0;
    for (const v1::Node& n : core_->ListNodes()) ready += n.state() == v1::NODE_STATE_READY;
    return ready;
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
};

TEST_F(ClockJumpTest, AWallClockStepForwardFailsNoNodeAndNoDeadline) {
  v1::SubmitJobRequest req;
  req.set_yaml("name: d\ncommand: [sleep, '1']\nresources: {cpus: 1}\nactiveDeadlineSeconds: 60\n");
  std::optional<absl::StatusOr<v1::Job>> job;
  core_->Submit(req, [&](absl::StatusOr<v1::Job> j) { job = std::move(j); });
  core_->Settle();
  ASSERT_TRUE(job && job->ok());

  clock_.JumpWall(3'600'000);  // an hour ahead, in no time at all
  core_->Tick();
  core_->Settle();
  EXPECT_EQ(ReadyNodes(), 2) << "nodes heartbeating a moment ago were declared lost";
  EXPECT_FALSE(IsTerminal(core_->GetJob((*job)->id())->state()))
      << core_->GetJob((*job)->id())->reason();

  // Real time still counts: 60 s later the deadline passes.
  for (int i = 0; i < 61; ++i) {
    clock_.Advance(1000);
    Heartbeat(1);
    Heartbeat(2);
    core_->Tick();
    core_->Settle();
  }
  EXPECT_EQ(core_->GetJob((*job)->id())->state(), v1::JOB_STATE_STOPPING);
}

TEST_F(ClockJumpTest, AWallClockStepBackDoesNotHideADeadNode) {
  // n2 stops heartbeating; the wall clock goes back an hour meanwhile.
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(1000);
    clock_.JumpWall(-600'000);
    Heartbeat(1);
    core_->Tick();
  }
  EXPECT_EQ(ReadyNodes(), 1) << "n2, silent for 6 s, should be NotReady";
}

}  // namespace
}  // namespace gangway::coordinator
