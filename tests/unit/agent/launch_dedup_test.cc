// The agent launches a rank once, however often the coordinator asks: a
// repeated LaunchGang (a resend after a reconnect) must not start a second
// copy. A fake coordinator (an in-process AgentSession service) sends the
// same launch twice; the test counts the rank's processes in /proc.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
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

// Sends `launch` twice after the agent registers and collects what the
// agent answers until told to stop.
class TwiceCoordinator final : public v1::AgentSession::Service {
 public:
  explicit TwiceCoordinator(v1::LaunchGang launch) : launch_(std::move(launch)) {}

  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::AgentMessage>* stream) override {
    v1::AgentMessage in;
    if (!stream->Read(&in) || !in.has_register_()) return grpc::Status::CANCELLED;
    v1::CoordinatorMessage out;
    out.mutable_register_ack()->set_heartbeat_interval_ms(1000);
    stream->Write(out);
    out.Clear();
    *out.mutable_launch() = launch_;
    stream->Write(out);
    stream->Write(out);
    while (!ctx->IsCancelled() && stream->Read(&in)) {
      if (!in.has_gang_started()) continue;
      std::lock_guard lock(mu_);
      started_.push_back(in.gang_started());
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  // The GangStarted answers once there are `n` of them (empty on timeout).
  std::vector<v1::GangStarted> WaitForStarted(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return started_.size() >= n; });
    return started_.size() >= n ? started_ : std::vector<v1::GangStarted>{};
  }

 private:
  v1::LaunchGang launch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::GangStarted> started_;
};

TEST(AgentLaunchTest, ARepeatedLaunchStartsNoSecondCopy) {
  char tmpl[] = "/tmp/gangway-dedup-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string marker = "GANGWAY_DEDUP_TEST=" + std::to_string(::getpid());

  const v1::LaunchGang launch = testing::SleepLaunch("dedup-1", marker);

  TwiceCoordinator coordinator(launch);
  int port = 0;
  std::unique_ptr<grpc::Server> server = testing::Serve(&coordinator, &port);
  ASSERT_NE(port, 0);

  {
    const AgentOptions options = testing::LocalAgentOptions(port, dir + "/agent");
    Agent agent(options);
    agent.Start();

    const std::vector<v1::GangStarted> started = coordinator.WaitForStarted(2);
    ASSERT_EQ(started.size(), 2u) << "the agent did not answer both launches";
    ASSERT_EQ(started[0].ranks_size(), 1);
    EXPECT_GT(started[0].ranks(0).pid(), 0);
    EXPECT_EQ(started[1].ranks_size(), 0) << "the repeated launch reported a new rank";
    // Both launches are handled (each answered after its spawns): exactly
    // one process runs the rank.
    EXPECT_EQ(testing::CountProcessesWith(marker), 1);
    agent.Stop();
  }
  EXPECT_EQ(testing::CountProcessesWith(marker), 0) << "the agent's stop killed the rank";
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gangway::agent
