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

namespace gangway::agent {
namespace {

using namespace std::chrono_literals;

// Pids whose environment holds `entry` ("NAME=value").
std::vector<pid_t> ProcessesWith(const std::string& entry) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "environ", std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string env = buf.str();
    for (size_t pos = 0; pos < env.size();) {
      size_t end = env.find('\0', pos);
      if (end == std::string::npos) end = env.size();
      if (env.compare(pos, end - pos, entry) == 0) out.push_back(std::stoi(name));
      pos = end + 1;
    }
  }
  return out;
}

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

  v1::LaunchGang launch;
  launch.set_job_id("dedup-1");
  launch.set_attempt(1);
  launch.set_master_port(29500);
  v1::RankLaunch* rank = launch.add_ranks();
  rank->set_rank(0);
  (*rank->mutable_env())["GANGWAY_DEDUP_TEST"] = std::to_string(::getpid());
  rank->add_argv("sleep");
  rank->add_argv("30");

  TwiceCoordinator coordinator(launch);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&coordinator);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  {
    AgentOptions options;
    options.coordinator = "127.0.0.1:" + std::to_string(port);
    options.name = "n1";
    options.address = "127.0.0.1";
    options.state_dir = dir + "/agent";
    options.inventory = SimulatedInventory(2000, int64_t{1} << 30, 0, "", 0);
    options.workload.run_as_agent_user = true;
    options.environment.inherit_all = true;
    Agent agent(options);
    agent.Start();

    const std::vector<v1::GangStarted> started = coordinator.WaitForStarted(2);
    ASSERT_EQ(started.size(), 2u) << "the agent did not answer both launches";
    ASSERT_EQ(started[0].ranks_size(), 1);
    EXPECT_GT(started[0].ranks(0).pid(), 0);
    EXPECT_EQ(started[1].ranks_size(), 0) << "the repeated launch reported a new rank";
    // Both launches are handled (each answered after its spawns): exactly
    // one process runs the rank.
    EXPECT_EQ(ProcessesWith(marker).size(), 1u);
    agent.Stop();
  }
  EXPECT_TRUE(ProcessesWith(marker).empty()) << "the agent's stop killed the rank";
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gangway::agent
