// The lease: agents hear a HeartbeatAck for every heartbeat, and a silent
// node's ranks are given up only once its agent, if alive, has stopped them
// (node timeout, then the agent's SIGKILL grace and a heartbeat's margin).
#include <gtest/gtest.h>

#include <optional>

#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class LeaseTest : public ::testing::Test {
 protected:
  LeaseTest() {
    CoreOptions o;
    o.node_timeout_ms = 5000;
    o.heartbeat_interval_ms = 1000;
    o.stop_grace_ms = 2000;
    o.lease_ms = 5000;
    o.restart_backoff_ms = 0;
    core_ = std::make_unique<Core>(&store_, &sink_, &clock_, o);
    for (int64_t session : {1, 2}) {
      absl::StatusOr<v1::RegisterAck> ack =
          core_->OnRegister(session, fakes::RegisterMessage(absl::StrCat("n", session), 1));
      EXPECT_TRUE(ack.ok());
      if (ack.ok()) ack_ = *ack;
    }
  }

  void Heartbeat(int64_t session) {
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    core_->OnAgentMessage(session, beat);
  }

  // Advances a second at a time; only `alive` heartbeats.
  void Advance(int64_t ms, int64_t alive) {
    for (; ms > 0; ms -= 1000) {
      clock_.Advance(std::min<int64_t>(ms, 1000));
      Heartbeat(alive);
      core_->Tick();
      core_->Settle();
    }
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
  v1::RegisterAck ack_;
};

TEST_F(LeaseTest, AgentsAreGrantedALeaseRenewedEveryThirdOfIt) {
  EXPECT_EQ(ack_.lease_ms(), 5000);
  EXPECT_EQ(ack_.lease_grace_ms(), 2000);
  sink_.Take();
  clock_.Advance(1000);
  Heartbeat(1);
  EXPECT_TRUE(sink_.Take().empty()) << "the RegisterAck's lease is still fresh";
  clock_.Advance(700);
  Heartbeat(1);
  const std::vector<fakes::Sent> sent = sink_.Take();
  ASSERT_EQ(sent.size(), 1u) << "the ack goes out at once, not after the next store write";
  EXPECT_EQ(sent[0].session, 1);
  EXPECT_TRUE(sent[0].msg.has_heartbeat_ack());
  clock_.Advance(1000);
  Heartbeat(1);
  EXPECT_TRUE(sink_.Take().empty());
}

TEST_F(LeaseTest, ASilentNodesRanksAreLostOnlyAfterItsAgentHasStoppedThem) {
  v1::SubmitJobRequest req;
  req.set_yaml(
      "name: j\ncommand: [sleep, '100']\nresources: {cpus: 1}\nrestartPolicy: OnFailure\n");
  std::optional<absl::StatusOr<v1::Job>> job;
  core_->Submit(req, [&](absl::StatusOr<v1::Job> j) { job = std::move(j); });
  core_->Settle();
  ASSERT_TRUE(job && job->ok());
  const std::string id = (*job)->id();
  const std::string node = core_->GetJob(id)->ranks(0).node();
  const int64_t silent = node == "n1" ? 1 : 2;
  const int64_t alive = 3 - silent;
  for (const fakes::Sent& s : sink_.Take()) {
    if (s.msg.has_launch())
      core_->OnAgentMessage(s.session, fakes::GangStartedMessage(s.msg.launch(), 29500));
  }
  core_->Settle();
  ASSERT_EQ(core_->GetJob(id)->state(), v1::JOB_STATE_RUNNING);

  // Past the node timeout: NotReady, but its rank may still run (its agent
  // stops it at the end of its lease, then SIGKILLs after the grace).
  Advance(6000, alive);
  v1::Job j = *core_->GetJob(id);
  EXPECT_EQ(j.state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(j.attempt(), 1);
  EXPECT_EQ(j.ranks(0).state(), v1::RANK_STATE_RUNNING);
  for (const v1::Node& n : core_->ListNodes()) {
    if (n.name() == node) {
      EXPECT_EQ(n.state(), v1::NODE_STATE_NOT_READY);
    }
  }

  // Past lease 5 s + grace 2 s + a heartbeat 1 s after it was last heard:
  // lost, and the gang relaunches on the other node.
  Advance(2500, alive);
  j = *core_->GetJob(id);
  EXPECT_EQ(j.attempt(), 2) << j.reason();
  EXPECT_NE(j.ranks(0).node(), node);
}

}  // namespace
}  // namespace gangway::coordinator
