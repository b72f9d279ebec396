// Metric points reach the coordinator in messages well under gRPC's limit:
// a rank that printed a burst of lines had them all in one message, and a
// refused message lost the trial's objective with it.
#include "agent/metrics_batches.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
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

v1::AgentMessage SeqMessage(std::vector<int64_t> seqs, const std::string& job = "j") {
  v1::AgentMessage msg;
  msg.mutable_metrics()->set_job_id(job);
  msg.mutable_metrics()->set_attempt(1);
  for (int64_t s : seqs) {
    v1::MetricPoint* p = msg.mutable_metrics()->add_points();
    p->set_name("loss");
    p->set_seq(s);
  }
  return msg;
}

v1::MetricsAck AckOf(int64_t seq, const std::string& job = "j") {
  v1::MetricsAck ack;
  ack.set_job_id(job);
  ack.set_attempt(1);
  ack.set_seq(seq);
  return ack;
}

TEST(MetricsOutboxTest, KeepsWhatIsNotAcknowledgedInOrder) {
  MetricsOutbox outbox;
  const MetricsOutbox::Key key{"j", 1, 0};
  outbox.Sent(SeqMessage({64, 128}), 0);
  outbox.Sent(SeqMessage({192}), 2);
  outbox.Sent(SeqMessage({256}), 3);
  EXPECT_EQ(outbox.OldestOffset(key), 0);
  outbox.Ack(AckOf(128));
  EXPECT_EQ(outbox.OldestOffset(key), 2);
  std::vector<v1::AgentMessage> left = outbox.Unacked();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].metrics().points(0).seq(), 192);
  EXPECT_EQ(left[1].metrics().points(0).seq(), 256);
  outbox.Ack(AckOf(100));  // old news
  EXPECT_EQ(outbox.Unacked().size(), 2u);
  outbox.Ack(AckOf(256, "other"));  // another job's
  EXPECT_EQ(outbox.Unacked().size(), 2u);
  outbox.Ack(AckOf(256));
  EXPECT_FALSE(outbox.Has(key));
  EXPECT_EQ(outbox.OldestOffset(key), std::nullopt);
  EXPECT_EQ(outbox.bytes(), 0u);
}

TEST(MetricsOutboxTest, BoundedPerRankKeepingTheNewest) {
  MetricsOutbox outbox(1000);
  for (int64_t i = 1; i <= 100; ++i) outbox.Sent(SeqMessage({i * 64}), i);
  EXPECT_LE(outbox.bytes(), 1000u);
  EXPECT_GT(outbox.dropped_messages(), 0);
  std::vector<v1::AgentMessage> left = outbox.Unacked();
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.back().metrics().points(0).seq(), 100 * 64) << "the newest is kept";
  outbox.Forget({"j", 1, 0});
  EXPECT_TRUE(outbox.Unacked().empty());
}

// The coordinator's session ends right after the first metrics reach it,
// unacknowledged (a coordinator killed before storing them): on the next
// session the agent sends them again, before the rank's exit. With `acks`
// false it is a coordinator from before MetricsAck, which stored them.
class ForgetfulCoordinator final : public v1::AgentSession::Service {
 public:
  explicit ForgetfulCoordinator(v1::LaunchGang launch, bool acks = true)
      : launch_(std::move(launch)), acks_(acks) {}

  grpc::Status Session(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::AgentMessage>* stream) override {
    v1::AgentMessage in;
    if (!stream->Read(&in) || !in.has_register_()) return grpc::Status::CANCELLED;
    const int session = sessions_++;
    v1::CoordinatorMessage out;
    out.mutable_register_ack()->set_heartbeat_interval_ms(1000);
    out.mutable_register_ack()->set_acks_metrics(acks_);
    stream->Write(out);
    if (session == 0) {
      out.Clear();
      *out.mutable_launch() = launch_;
      stream->Write(out);
    }
    while (!ctx->IsCancelled() && stream->Read(&in)) {
      std::lock_guard lock(mu_);
      if (in.has_metrics()) {
        for (const v1::MetricPoint& p : in.metrics().points()) {
          values_[session].push_back(p.value());
        }
        if (session == 0) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "killed");
        if (!acks_) continue;
        v1::CoordinatorMessage ack;
        ack.mutable_metrics_ack()->set_job_id(in.metrics().job_id());
        ack.mutable_metrics_ack()->set_attempt(in.metrics().attempt());
        ack.mutable_metrics_ack()->set_rank(in.metrics().rank());
        for (const v1::MetricPoint& p : in.metrics().points()) {
          ack.mutable_metrics_ack()->set_seq(std::max(ack.metrics_ack().seq(), p.seq()));
        }
        stream->Write(ack);
      }
      if (in.has_rank_exited()) exited_ = true;
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  // The values each session received, once the exit was reported.
  std::map<int, std::vector<double>> WaitForExit() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 30s, [&] { return exited_; });
    return exited_ ? values_ : std::map<int, std::vector<double>>{};
  }

 private:
  v1::LaunchGang launch_;
  const bool acks_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> sessions_{0};
  std::map<int, std::vector<double>> values_;
  bool exited_ = false;
};

// A rank printing loss=1, loss=2, then loss=3 a second later, run by an
// agent against a ForgetfulCoordinator that acknowledges (or not): the
// values each session received, once the exit was reported.
std::map<int, std::vector<double>> ValuesPerSession(bool acks) {
  char tmpl[] = "/tmp/gangway-resend-XXXXXX";
  EXPECT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  v1::LaunchGang launch;
  launch.set_job_id("resend-1");
  launch.set_attempt(1);
  launch.set_master_port(29500);
  launch.mutable_metrics()->set_kind("stdout");
  launch.add_argv("sh");
  launch.add_argv("-c");
  launch.add_argv("echo loss=1; echo loss=2; sleep 1; echo loss=3");
  launch.add_ranks()->set_rank(0);

  ForgetfulCoordinator coordinator(launch, acks);
  int port = 0;
  std::unique_ptr<grpc::Server> server = testing::Serve(&coordinator, &port);
  EXPECT_NE(port, 0);
  std::map<int, std::vector<double>> values;
  if (port != 0) {
    AgentOptions options = testing::LocalAgentOptions(port, dir + "/agent");
    options.metrics_poll_ms = 50;
    Agent agent(options);
    agent.Start();
    values = coordinator.WaitForExit();
    agent.Stop();
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  std::filesystem::remove_all(dir);
  return values;
}

TEST(AgentMetricsTest, PointsNotAcknowledgedAreSentAgainOnTheNextSession) {
  std::map<int, std::vector<double>> values = ValuesPerSession(/*acks=*/true);
  ASSERT_FALSE(values[0].empty()) << "no point reached the first session";
  EXPECT_EQ(values[1], (std::vector<double>{1, 2, 3})) << "lost with the first session";
}

// A new agent and a coordinator from before MetricsAck: nothing is ever
// acknowledged, and what the agent kept it sent again on every reconnect,
// so the old coordinator stored those points twice. Told by the
// RegisterAck, the agent keeps nothing for such a coordinator.
TEST(AgentMetricsTest, ACoordinatorThatDoesNotAcknowledgeIsSentEachPointOnce) {
  std::map<int, std::vector<double>> values = ValuesPerSession(/*acks=*/false);
  ASSERT_FALSE(values[0].empty()) << "no point reached the first session";
  std::vector<double> all = values[0];
  all.insert(all.end(), values[1].begin(), values[1].end());
  EXPECT_EQ(all, (std::vector<double>{1, 2, 3})) << "each point once, in order";
}

}  // namespace
}  // namespace gangway::agent
