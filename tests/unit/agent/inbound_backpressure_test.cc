// The agent's inbound queue is bounded (inbound_gate.h): a coordinator
// that sends faster than the agent's loop handles cannot grow the agent's
// memory without limit. A fake coordinator (an in-process AgentSession
// service) launches a rank, whose launch blocks the agent's loop (in a
// RankEvents observer) while it floods the agent with ReadLog requests;
// the messages waiting for the loop never pass the bound, and once the
// loop runs again every request is answered, in order.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <ostream>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/rank_events.h"
#include "gangway/v1/gangway.grpc.pb.h"
#include "tests/unit/agent/fake_coordinator.h"

namespace gangway::agent {
namespace {

using namespace std::chrono_literals;

constexpr int kRequests = 2000;

class FloodCoordinator final : public v1::AgentSession::Service {
 public:
  // With `lease_ms`, grants a lease and acknowledges every heartbeat.
  explicit FloodCoordinator(v1::LaunchGang launch, int64_t lease_ms = 0)
      : launch_(std::move(launch)), lease_ms_(lease_ms) {}

  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::AgentMessage>* stream) override {
    v1::AgentMessage in;
    if (!stream->Read(&in) || !in.has_register_()) return grpc::Status::CANCELLED;
    // One reader and one writer at a time: gRPC allows both at once.
    std::mutex write_mu;
    std::thread writer([stream, this, &write_mu] {
      v1::CoordinatorMessage out;
      out.mutable_register_ack()->set_heartbeat_interval_ms(lease_ms_ > 0 ? 50 : 1000);
      out.mutable_register_ack()->set_lease_ms(lease_ms_);
      out.mutable_register_ack()->set_lease_grace_ms(lease_ms_);
      std::lock_guard lock(write_mu);
      stream->Write(out);
      out.Clear();
      *out.mutable_launch() = launch_;
      stream->Write(out);
      for (int i = 0; i < kRequests; ++i) {
        out.Clear();
        v1::ReadLog* read = out.mutable_read_log();
        read->set_request_id(i);
        read->set_job_id("no-such-job");
        read->set_attempt(1);
        if (!stream->Write(out)) break;
      }
    });
    while (!ctx->IsCancelled() && stream->Read(&in)) {
      if (in.has_heartbeat() && lease_ms_ > 0) {
        v1::CoordinatorMessage ack;
        ack.mutable_heartbeat_ack();
        std::lock_guard lock(write_mu);
        stream->Write(ack);
      }
      if (!in.has_log_data()) continue;
      std::lock_guard lock(mu_);
      answered_.push_back(in.log_data().request_id());
      cv_.notify_all();
    }
    writer.join();
    return grpc::Status::OK;
  }

  // The request ids answered, once there are `n` (fewer on timeout).
  std::vector<int64_t> WaitForAnswers(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 20s, [&] { return answered_.size() >= n; });
    return answered_;
  }

 private:
  v1::LaunchGang launch_;
  const int64_t lease_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int64_t> answered_;
};

// Holds the agent's loop inside the first launch until released.
class BlockingEvents final : public RankEvents {
 public:
  void RankLaunched(const v1::LaunchGang&, const v1::RankLaunch&, bool) override {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return released_; });
  }
  void RankAdopted(const std::string&, int32_t, int32_t, bool) override {}
  void RankExited(const std::string&, int32_t, int32_t, int32_t) override {}
  void RankForgotten(const std::string&, int32_t, int32_t) override {}

  bool WaitEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [this] { return entered_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

struct Bound {
  const char* name;
  int64_t max_messages;
  int64_t max_bytes;
};

void PrintTo(const Bound& bound, std::ostream* os) { *os << bound.name; }

class InboundBackpressureTest : public ::testing::TestWithParam<Bound> {};
INSTANTIATE_TEST_SUITE_P(Bounds, InboundBackpressureTest,
                         ::testing::Values(Bound{"Messages", 64, int64_t{64} << 20},
                                           Bound{"Bytes", 100000, 2048}),
                         [](const auto& info) { return info.param.name; });

TEST_P(InboundBackpressureTest, ASlowLoopHoldsAtMostTheBoundAndLosesNothing) {
  const Bound bound = GetParam();
  char tmpl[] = "/tmp/gangway-inbound-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string marker = "GANGWAY_INBOUND_TEST=" + std::to_string(::getpid()) + bound.name;

  FloodCoordinator coordinator(testing::SleepLaunch("inbound-1", marker));
  int port = 0;
  std::unique_ptr<grpc::Server> server = testing::Serve(&coordinator, &port);
  ASSERT_NE(port, 0);
  BlockingEvents events;
  {
    AgentOptions options = testing::LocalAgentOptions(port, std::string(tmpl) + "/agent");
    options.rank_events = &events;
    options.inbound_max_messages = bound.max_messages;
    options.inbound_max_bytes = bound.max_bytes;
    Agent agent(options);
    // Released on every way out: the agent's stop waits for its loop.
    struct ReleaseOnExit {
      BlockingEvents& events;
      ~ReleaseOnExit() { events.Release(); }
    } release{events};
    agent.Start();
    ASSERT_TRUE(events.WaitEntered()) << "the launch never reached the loop";

    // The loop is blocked: the reader fills the queue up to the bound (the
    // count may be lower since: the loop handled the RegisterAck late).
    // Without backpressure it reads all kRequests at once.
    const auto full = [&] {
      const InboundGate::Counts c = agent.Inbound();
      return c.peak_messages >= bound.max_messages || c.peak_bytes >= bound.max_bytes;
    };
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!full() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    ASSERT_TRUE(full()) << "the queue never filled: " << agent.Inbound().messages << " messages, "
                        << agent.Inbound().bytes << " bytes";
    // Held a while: the reader stays stopped (it would pass the bound in
    // well under this).
    const auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until) {
      const InboundGate::Counts c = agent.Inbound();
      ASSERT_LE(c.messages, bound.max_messages);
      std::this_thread::sleep_for(5ms);
    }
    events.Release();

    const std::vector<int64_t> answered = coordinator.WaitForAnswers(kRequests);
    ASSERT_EQ(answered.size(), size_t{kRequests}) << "requests were lost";
    for (int i = 0; i < kRequests; ++i) ASSERT_EQ(answered[i], i) << "out of order at " << i;

    const InboundGate::Counts c = agent.Inbound();
    EXPECT_LE(c.peak_messages, bound.max_messages);
    // The check comes before each read: one message may pass the byte
    // bound (a ReadLog here is well under 100 bytes).
    EXPECT_LT(c.peak_bytes, bound.max_bytes + 100);
    agent.Stop();
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(tmpl);
}

// The acks that renew the lease (the keepers' lease file, the agent's own
// lease timer) are queued behind the flood. The reader must not sit on a
// full queue until the lease runs out: half a lease after the last ack it
// reads on, past the bound, to the next ack.
TEST(InboundBackpressureLeaseTest, AFullQueueStillReadsTheAcksThatRenewTheLease) {
  char tmpl[] = "/tmp/gangway-inbound-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string marker = "GANGWAY_INBOUND_TEST=" + std::to_string(::getpid()) + "lease";
  constexpr int64_t kMaxMessages = 64;

  FloodCoordinator coordinator(testing::SleepLaunch("inbound-2", marker), /*lease_ms=*/400);
  int port = 0;
  std::unique_ptr<grpc::Server> server = testing::Serve(&coordinator, &port);
  ASSERT_NE(port, 0);
  BlockingEvents events;
  {
    AgentOptions options = testing::LocalAgentOptions(port, std::string(tmpl) + "/agent");
    options.rank_events = &events;
    options.inbound_max_messages = kMaxMessages;
    Agent agent(options);
    struct ReleaseOnExit {
      BlockingEvents& events;
      ~ReleaseOnExit() { events.Release(); }
    } release{events};
    agent.Start();
    ASSERT_TRUE(events.WaitEntered()) << "the launch never reached the loop";
    // The loop stays blocked; the flood is ahead of every heartbeat ack.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (agent.Inbound().messages <= kMaxMessages &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    EXPECT_GT(agent.Inbound().messages, kMaxMessages)
        << "the reader waited on a full queue while the lease ran out";
    events.Release();
    const std::vector<int64_t> answered = coordinator.WaitForAnswers(kRequests);
    ASSERT_EQ(answered.size(), size_t{kRequests}) << "requests were lost";
    for (int i = 0; i < kRequests; ++i) ASSERT_EQ(answered[i], i) << "out of order at " << i;
    agent.Stop();
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace gangway::agent
