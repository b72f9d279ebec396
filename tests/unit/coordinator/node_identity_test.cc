// Two agents registering one node name (a cloned machine): the second is
// refused while the first is live, and takes over once it is gone; the
// same agent reconnecting is not a second agent.
#include <gtest/gtest.h>

#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class NodeIdentityTest : public ::testing::Test {
 protected:
  NodeIdentityTest() {
    CoreOptions o;
    o.node_timeout_ms = 5000;
    core_ = std::make_unique<Core>(&store_, &sink_, &clock_, o);
  }

  absl::StatusOr<v1::RegisterAck> Register(int64_t session, const std::string& instance) {
    return core_->OnRegister(session, fakes::RegisterMessage("n1", 8, instance));
  }

  void Heartbeat(int64_t session) {
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    core_->OnAgentMessage(session, beat);
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
};

TEST_F(NodeIdentityTest, ASecondAgentWithTheSameNameIsRefusedWhileTheFirstIsLive) {
  ASSERT_TRUE(Register(1, "first").ok());
  for (int i = 0; i < 3; ++i) {
    clock_.Advance(1000);
    Heartbeat(1);
    absl::StatusOr<v1::RegisterAck> clone = Register(2 + i, "clone");
    ASSERT_EQ(clone.status().code(), absl::StatusCode::kFailedPrecondition) << clone.status();
    EXPECT_NE(clone.status().message().find("already connected from another agent"),
              absl::string_view::npos)
        << clone.status();
  }
  EXPECT_TRUE(sink_.closed.empty()) << "the live agent was kicked out";

  // The same agent reconnecting replaces its own old stream.
  ASSERT_TRUE(Register(10, "first").ok());
  ASSERT_EQ(sink_.closed.size(), 1u);
  EXPECT_EQ(sink_.closed[0].first, 1);

  // Once the first is silent past the node timeout, the other may take over.
  clock_.Advance(5001);
  core_->Tick();
  EXPECT_TRUE(Register(11, "clone").ok());
}

TEST_F(NodeIdentityTest, AgentsThatSendNoInstanceKeepTheOldReplaceRule) {
  ASSERT_TRUE(Register(1, "").ok());
  EXPECT_TRUE(Register(2, "").ok());
}

}  // namespace
}  // namespace gangway::coordinator
