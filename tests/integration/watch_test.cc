// `gangway watch` (Control.WatchJob) on a real coordinator: every state to
// the end, and watches that go away while their last write is in flight.
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

TEST(WatchIntegration, WatchSeesTheJobToItsEndAndThenCloses) {
  ClusterOptions options;
  options.agents = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string id =
      cluster.Submit("name: short\nresources: {cpus: 1}\ncommand: [sh, -c, 'sleep 0.3']\n");
  ASSERT_FALSE(id.empty());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  v1::WatchJobRequest req;
  req.set_id(id);
  auto reader = cluster.stub().WatchJob(&ctx, req);
  std::vector<v1::JobState> seen;
  v1::Job job;
  while (reader->Read(&job)) seen.push_back(job.state());
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), v1::JOB_STATE_SUCCEEDED);
  // Nothing after the end, and the end only once.
  EXPECT_EQ(std::count(seen.begin(), seen.end(), v1::JOB_STATE_SUCCEEDED), 1);
}

// Watches torn down while their job ends. The job carries 256 KiB of
// arguments, more than a stream's initial flow-control window, and the
// client does not read, so the coordinator's writes are slow to complete
// while the job is cancelled and the client cancels the watch. A stream
// finished twice aborts the process in gRPC; this guards the cancel paths
// of the watch reactor (server_reactors.h). It does not reproduce the
// double finish that the queue_load driver once hit.
TEST(WatchIntegration, WatchesCancelledDuringAWriteLeaveTheCoordinatorServing) {
  ClusterOptions options;
  options.agents = 0;  // nothing runs: each job stays Pending until cancelled
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string parked = "name: parked\nresources: {cpus: 1}\ncommand: [echo]\nargs: ['" +
                             std::string(256 << 10, 'x') + "']\n";
  constexpr int kRounds = 20;
  std::vector<std::string> ids;
  for (int i = 0; i < kRounds; ++i) {
    const std::string id = cluster.Submit(parked);
    ASSERT_FALSE(id.empty());
    ids.push_back(id);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    v1::WatchJobRequest req;
    req.set_id(id);
    auto reader = cluster.stub().WatchJob(&ctx, req);
    grpc::ClientContext cancel_ctx;
    cancel_ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    v1::CancelJobRequest cancel;
    cancel.set_id(id);
    v1::Job cancelled;
    grpc::Status s = cluster.stub().CancelJob(&cancel_ctx, cancel, &cancelled);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ctx.TryCancel();
    reader->Finish();
    ASSERT_FALSE(cluster.coordinator().exited())
        << "the coordinator exited in round " << i << ": " << cluster.coordinator().Stderr();
  }
  int cancelled = 0;
  for (const std::string& id : ids) {
    std::optional<v1::Job> job = cluster.GetJob(id);
    ASSERT_TRUE(job.has_value()) << "the coordinator does not answer";
    cancelled += job->state() == v1::JOB_STATE_CANCELLED;
  }
  EXPECT_EQ(cancelled, kRounds);
}

}  // namespace
}  // namespace gangway::itest
