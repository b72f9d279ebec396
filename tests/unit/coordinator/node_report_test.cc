// What an agent reports about itself: its version (shown by `gangway nodes
// -o wide` during an upgrade) and that it is draining (--on-stop=drain),
// after which nothing new is placed on its node.
#include <gtest/gtest.h>

#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class NodeReportTest : public ::testing::Test {
 protected:
  NodeReportTest() { core_ = std::make_unique<Core>(&store_, &sink_, &clock_, CoreOptions()); }

  void Register(int64_t session, const std::string& name, const std::string& version,
                bool draining = false) {
    v1::Register reg = fakes::RegisterMessage(name, 8, name + "-instance");
    reg.set_agent_version(version);
    reg.set_draining(draining);
    ASSERT_TRUE(core_->OnRegister(session, reg).ok());
    core_->Settle();
  }

  v1::Node Node(const std::string& name) {
    for (const v1::Node& n : core_->ListNodes()) {
      if (n.name() == name) return n;
    }
    ADD_FAILURE() << "no node " << name;
    return {};
  }

  // Submits a one-rank job; returns the sessions its launches went to.
  std::vector<int64_t> SubmitAndLaunches() {
    v1::SubmitJobRequest req;
    req.set_yaml("name: j\ncommand: [sleep, '100']\nresources: {cpus: 1}\n");
    std::optional<absl::StatusOr<v1::Job>> job;
    core_->Submit(req, [&](absl::StatusOr<v1::Job> j) { job = std::move(j); });
    core_->Settle();
    EXPECT_TRUE(job && job->ok());
    return Launches();
  }

  std::vector<int64_t> Launches() {
    std::vector<int64_t> sessions;
    for (const fakes::Sent& s : sink_.Take()) {
      if (s.msg.has_launch()) sessions.push_back(s.session);
    }
    return sessions;
  }

  common::FakeClock clock_;
  fakes::FakeStore store_;
  fakes::RecordingSink sink_;
  std::unique_ptr<Core> core_;
};

TEST_F(NodeReportTest, TheVersionEachAgentRegisteredWithIsListedAndFollowsAnUpgrade) {
  Register(1, "n1", "gangway-agent 0.1.0 (commit aaa, Release)");
  Register(2, "n2", "gangway-agent 0.2.0 (commit bbb, Release)");
  EXPECT_EQ(Node("n1").agent_version(), "gangway-agent 0.1.0 (commit aaa, Release)");
  EXPECT_EQ(Node("n2").agent_version(), "gangway-agent 0.2.0 (commit bbb, Release)");
  // n1's agent upgraded and restarted.
  core_->OnSessionClosed(1);
  Register(3, "n1", "gangway-agent 0.2.0 (commit bbb, Release)");
  EXPECT_EQ(Node("n1").agent_version(), "gangway-agent 0.2.0 (commit bbb, Release)");
}

TEST_F(NodeReportTest, ADrainingNodeGetsNoNewGangUntilAnAgentRegistersWithoutDraining) {
  Register(1, "n1", "v");
  v1::AgentMessage draining;
  draining.mutable_draining();
  core_->OnAgentMessage(1, draining);
  EXPECT_TRUE(Node("n1").draining());
  EXPECT_TRUE(SubmitAndLaunches().empty()) << "a gang was placed on a draining node";

  // The draining agent reconnects (a coordinator restart): still draining.
  core_->OnSessionClosed(1);
  Register(2, "n1", "v", /*draining=*/true);
  core_->Tick();
  core_->Settle();
  EXPECT_TRUE(Launches().empty());

  // The next agent process on the node takes work again.
  core_->OnSessionClosed(2);
  Register(3, "n1", "v");
  EXPECT_FALSE(Node("n1").draining());
  core_->Tick();
  core_->Settle();
  EXPECT_EQ(Launches(), std::vector<int64_t>{3});
}

}  // namespace
}  // namespace gangway::coordinator
