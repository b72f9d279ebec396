// The agent's side of the lease: without a HeartbeatAck for lease_ms it
// stops its ranks itself; with them, its ranks run on. A fake coordinator
// (an in-process AgentSession service) grants the lease and launches a rank.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/inventory.h"
#include "gangway/v1/gangway.grpc.pb.h"
#include "tests/unit/agent/fake_coordinator.h"

namespace gangway::agent {
namespace {

using namespace std::chrono_literals;

class LeaseCoordinator final : public v1::AgentSession::Service {
 public:
  LeaseCoordinator(v1::LaunchGang launch, bool ack) : launch_(std::move(launch)), ack_(ack) {}

  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::AgentMessage>* stream) override {
    v1::AgentMessage in;
    if (!stream->Read(&in) || !in.has_register_()) return grpc::Status::CANCELLED;
    v1::CoordinatorMessage out;
    out.mutable_register_ack()->set_heartbeat_interval_ms(50);
    out.mutable_register_ack()->set_lease_ms(400);
    out.mutable_register_ack()->set_lease_grace_ms(200);
    stream->Write(out);
    if (!launched_.exchange(true)) {
      out.Clear();
      *out.mutable_launch() = launch_;
      stream->Write(out);
    }
    while (!ctx->IsCancelled() && stream->Read(&in)) {
      if (in.has_heartbeat() && ack_) {
        out.Clear();
        out.mutable_heartbeat_ack();
        stream->Write(out);
      }
    }
    return grpc::Status::OK;
  }

 private:
  v1::LaunchGang launch_;
  const bool ack_;
  std::atomic<bool> launched_{false};
};

class AgentLeaseTest : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Acks, AgentLeaseTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Renewed" : "Silent"; });

TEST_P(AgentLeaseTest, RanksRunOnlyWhileTheLeaseIsRenewed) {
  const bool acks = GetParam();
  char tmpl[] = "/tmp/gangway-lease-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string marker =
      "GANGWAY_LEASE_TEST=" + std::to_string(::getpid()) + (acks ? "a" : "s");
  const v1::LaunchGang launch = testing::SleepLaunch("lease-1", marker);

  LeaseCoordinator coordinator(launch, acks);
  int port = 0;
  std::unique_ptr<grpc::Server> server = testing::Serve(&coordinator, &port);
  ASSERT_NE(port, 0);
  {
    const AgentOptions options = testing::LocalAgentOptions(port, std::string(tmpl) + "/agent");
    Agent agent(options);
    agent.Start();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (testing::CountProcessesWith(marker) == 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(testing::CountProcessesWith(marker), 1) << "the rank never started";
    if (acks) {
      // Five leases long: renewed every heartbeat, the rank runs on.
      const auto until = std::chrono::steady_clock::now() + 2s;
      while (std::chrono::steady_clock::now() < until) {
        ASSERT_EQ(testing::CountProcessesWith(marker), 1)
            << "the rank was stopped under a live lease";
        std::this_thread::sleep_for(20ms);
      }
    } else {
      // The lease (0.4 s) runs out: the agent stops the rank itself.
      const auto until = std::chrono::steady_clock::now() + 5s;
      while (testing::CountProcessesWith(marker) > 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(10ms);
      }
      EXPECT_EQ(testing::CountProcessesWith(marker), 0) << "the rank outlived the lease";
    }
    agent.Stop();
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace gangway::agent
