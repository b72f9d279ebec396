// Metric points reach the coordinator in messages well under gRPC's limit:
// a rank that printed a burst of lines had them all in one message, and a
// refused message lost the trial's objective with it.
#include "agent/metrics_batches.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "gangway/v1/gangway.grpc.pb.h"
#include "tests/unit/agent/fake_coordinator.h"

namespace gangway::agent {
namespace {

using namespace std::chrono_literals;

std::vector<v1::MetricPoint> Points(int n, size_t raw_bytes) {
  std::vector<v1::MetricPoint> points(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    points[static_cast<size_t>(i)].set_name(std::string(120, 'n'));
    points[static_cast<size_t>(i)].set_step(i);
    points[static_cast<size_t>(i)].set_raw(std::string(raw_bytes, 'v'));
  }
  return points;
}

TEST(MetricsMessagesTest, SplitsBelowTheLimitInOrderWithEveryPoint) {
  const std::vector<v1::AgentMessage> msgs = MetricsMessages("j-1", 2, 0, Points(5000, 256));
  ASSERT_GT(msgs.size(), 1u);
  int64_t next = 0;
  for (const v1::AgentMessage& m : msgs) {
    EXPECT_LE(m.ByteSizeLong(), kMaxMetricsMessageBytes);
    EXPECT_EQ(m.metrics().job_id(), "j-1");
    EXPECT_EQ(m.metrics().attempt(), 2);
    for (const v1::MetricPoint& p : m.metrics().points()) EXPECT_EQ(p.step(), next++);
  }
  EXPECT_EQ(next, 5000);
}

TEST(MetricsMessagesTest, ExactLimitsAndEdges) {
  EXPECT_TRUE(MetricsMessages("j", 1, 0, {}).empty());
  // Small limits: each message as full as it may be, never over.
  for (size_t limit : {600u, 1000u, 4096u}) {
    const std::vector<v1::AgentMessage> msgs = MetricsMessages("j", 1, 0, Points(50, 100), limit);
    size_t points = 0;
    for (const v1::AgentMessage& m : msgs) {
      EXPECT_LE(m.ByteSizeLong(), limit) << limit;
      points += static_cast<size_t>(m.metrics().points_size());
    }
    EXPECT_EQ(points, 50u);
  }
  // A point bigger than the limit still goes, alone.
  const std::vector<v1::AgentMessage> msgs = MetricsMessages("j", 1, 0, Points(3, 1000), 500);
  ASSERT_EQ(msgs.size(), 3u);
  for (const v1::AgentMessage& m : msgs) EXPECT_EQ(m.metrics().points_size(), 1);
}

// Registers the agent, launches one trial rank that prints `script`'s
// lines, and keeps every metrics message the agent sends.
class MetricsCoordinator final : public v1::AgentSession::Service {
 public:
  explicit MetricsCoordinator(v1::LaunchGang launch) : launch_(std::move(launch)) {}

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
    while (!ctx->IsCancelled() && stream->Read(&in)) {
      std::lock_guard lock(mu_);
      if (in.has_metrics()) metrics_.push_back(in);
      if (in.has_rank_exited()) exited_ = true;
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  // The metrics messages once the rank's exit was reported (empty on timeout).
  std::vector<v1::AgentMessage> WaitForExit() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 30s, [&] { return exited_; });
    return exited_ ? metrics_ : std::vector<v1::AgentMessage>{};
  }

 private:
  v1::LaunchGang launch_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::AgentMessage> metrics_;
  bool exited_ = false;
};

// 5,000 points of ~380 bytes printed at once and read when the rank exits:
// about 2 MB, which went as one message.
TEST(AgentMetricsTest, ABurstOfPointsGoesInMessagesOfAtMostOneMiB) {
  char tmpl[] = "/tmp/gangway-metrics-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;

  v1::LaunchGang launch;
  launch.set_job_id("burst-1");
  launch.set_attempt(1);
  launch.set_master_port(29500);
  launch.mutable_metrics()->set_kind("stdout");
  launch.add_argv("awk");
  launch.add_argv(
      "BEGIN { n = sprintf(\"%120s\", \"\"); gsub(/ /, \"n\", n); v = sprintf(\"%250s\", \"\"); "
      "gsub(/ /, \"v\", v); for (i = 0; i < 4999; i++) print n \"=\" v i; print n \"=0.25\" }");
  launch.add_ranks()->set_rank(0);

  MetricsCoordinator coordinator(launch);
  int port = 0;
  std::unique_ptr<grpc::Server> server = testing::Serve(&coordinator, &port);
  ASSERT_NE(port, 0);
  {
    AgentOptions options = testing::LocalAgentOptions(port, dir + "/agent");
    // Only the read at exit: everything in one batch.
    options.metrics_poll_ms = 600'000;
    Agent agent(options);
    agent.Start();
    const std::vector<v1::AgentMessage> msgs = coordinator.WaitForExit();
    agent.Stop();
    ASSERT_FALSE(msgs.empty()) << "no metrics before the exit";
    size_t points = 0;
    for (const v1::AgentMessage& m : msgs) {
      EXPECT_LE(m.ByteSizeLong(), kMaxMetricsMessageBytes);
      points += static_cast<size_t>(m.metrics().points_size());
    }
    EXPECT_EQ(points, 5000u);
    EXPECT_GT(msgs.size(), 1u);
    const v1::RankMetrics& last = msgs.back().metrics();
    ASSERT_GT(last.points_size(), 0);
    EXPECT_EQ(last.points(last.points_size() - 1).value(), 0.25) << "the last point is last";
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gangway::agent
