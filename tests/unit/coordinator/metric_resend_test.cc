// Points an agent resends (the coordinator died before acknowledging them)
// are stored once: the core drops a point whose seq it already holds for
// the attempt, across a restart too, acknowledges what it has stored, and
// ignores the seq of pushed points.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "coordinator/core.h"
#include "tests/unit/coordinator/core_on_stores.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

class MetricResendTest : public fakes::CoreOnStoresTest {
 protected:
  MetricResendTest() { MakeCore(); }
  // `running`: the job whose rank 0 the agent reports as running.
  void MakeCore(const std::string& running = "") {
    CoreOptions o;
    o.rendezvous_endpoint = "coord:7070";
    v1::Register reg = fakes::RegisterMessage("n1");
    if (!running.empty()) {
      v1::RankRecord* r = reg.add_ranks();
      r->set_job_id(running);
      r->set_attempt(1);
      r->set_rank(0);
      r->set_pid(4242);
    }
    StartCore(o, reg);
  }
  // A coordinator killed and started again on the same store.
  void Restart(const std::string& running) {
    DropCore();
    MakeCore(running);
  }
  // An agent's metrics message of the points at these line ends.
  static v1::AgentMessage Metrics(const std::string& id, std::vector<int64_t> line_ends) {
    v1::AgentMessage msg;
    v1::RankMetrics* m = msg.mutable_metrics();
    m->set_job_id(id);
    m->set_attempt(1);
    m->set_rank(0);
    for (int64_t end : line_ends) {
      v1::MetricPoint* p = m->add_points();
      p->set_name("loss");
      p->set_step(end);
      p->set_value(static_cast<double>(end));
      p->set_seq(end * 64);
    }
    return msg;
  }
  // Steps stored for `id`, in order.
  std::vector<int64_t> Stored(const std::string& id) {
    std::vector<int64_t> steps;
    absl::StatusOr<std::vector<v1::MetricPoint>> points = store()->LoadMetrics(id);
    EXPECT_TRUE(points.ok());
    if (points.ok()) {
      for (const v1::MetricPoint& p : *points) steps.push_back(p.step());
    }
    return steps;
  }
  // The seq of each MetricsAck sent since the last call.
  std::vector<int64_t> Acks() {
    std::vector<int64_t> seqs;
    for (const fakes::Sent& s : sink_.Take()) {
      if (s.msg.has_metrics_ack()) seqs.push_back(s.msg.metrics_ack().seq());
    }
    return seqs;
  }
};
INSTANTIATE_TEST_SUITE_P(Stores, MetricResendTest, ::testing::Values(false, true),
                         fakes::CoreOnStoresTest::StoreName);

TEST_P(MetricResendTest, ResentPointsAreStoredOnceAndAcknowledged) {
  const std::string id = SubmitStarted();
  core_->OnAgentMessage(1, Metrics(id, {10, 20, 30}));
  core_->Settle();
  EXPECT_EQ(Acks(), std::vector<int64_t>{30 * 64});
  // The ack was lost: the agent sends them again, with a new one.
  core_->OnAgentMessage(1, Metrics(id, {10, 20, 30, 40}));
  core_->Settle();
  EXPECT_EQ(Acks(), std::vector<int64_t>{40 * 64});
  EXPECT_EQ(Stored(id), (std::vector<int64_t>{10, 20, 30, 40}));
}

TEST_P(MetricResendTest, ResentPointsAfterARestartAreStoredOnce) {
  const std::string id = SubmitStarted();
  core_->OnAgentMessage(1, Metrics(id, {10, 20}));
  core_->Settle();
  Restart(id);
  absl::StatusOr<v1::Job> job = core_->GetJob(id);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->attempt(), 1);
  ASSERT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  // The agent registers again and resends what was not acknowledged to
  // it (here, all of it), then what it read meanwhile.
  core_->OnAgentMessage(1, Metrics(id, {10, 20, 30}));
  core_->OnAgentMessage(1, Metrics(id, {50}));
  core_->Settle();
  EXPECT_EQ(Stored(id), (std::vector<int64_t>{10, 20, 30, 50}));
  EXPECT_EQ(Acks(), (std::vector<int64_t>{30 * 64, 50 * 64}));
}

TEST_P(MetricResendTest, PushedPointsKeepNoSeqAndBlockNothing) {
  const std::string id = SubmitStarted();
  v1::MetricPoint pushed;
  pushed.set_name("loss");
  pushed.set_step(1);
  pushed.set_seq(int64_t{1} << 60);  // a rank cannot claim the agent's positions
  core_->OnMetrics(id, 1, 0, {pushed});
  core_->Settle();
  core_->OnAgentMessage(1, Metrics(id, {10}));
  core_->Settle();
  EXPECT_EQ(Stored(id), (std::vector<int64_t>{1, 10}));
}

}  // namespace
}  // namespace gangway::coordinator
