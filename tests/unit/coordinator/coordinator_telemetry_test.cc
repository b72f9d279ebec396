// The coordinator's /metrics: what each hook counts, the scrape-time gauges
// (from a reader and from a real Core), the RPC labels, the timed store and
// the HTTP endpoint.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "common/clock.h"
#include "coordinator/core.h"
#include "coordinator/telemetry.h"
#include "tests/unit/coordinator/fakes.h"

namespace gangway::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// An HTTP/1.0 GET of 127.0.0.1:port/path: the whole response, "" when the
// connection fails.
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

v1::Job JobIn(v1::JobState state, int32_t attempt, int64_t created_ms) {
  v1::Job job;
  job.set_id("train-1");
  job.set_state(state);
  job.set_attempt(attempt);
  job.set_create_time_ms(created_ms);
  return job;
}

GaugeReader Fixed(std::optional<CoreGauges> g) {
  return [g] { return g; };
}

TEST(StateLabelTest, EnumNamesLessTheirPrefixInLowerCase) {
  EXPECT_EQ(StateLabel(v1::JOB_STATE_PENDING), "pending");
  EXPECT_EQ(StateLabel(v1::TRIAL_STATE_EARLY_STOPPED), "early_stopped");
  EXPECT_EQ(StateLabel(v1::NODE_STATE_NOT_READY), "not_ready");
}

TEST(CoordinatorTelemetryTest, AJobsLifeFeedsTheCountersAndBothHistograms) {
  common::FakeClock clock;
  CoordinatorTelemetry t(Fixed(std::nullopt), &clock);
  const int64_t created = clock.NowMs();
  t.OnJobState(JobIn(v1::JOB_STATE_PENDING, 0, created), v1::JOB_STATE_UNSPECIFIED);
  clock.Advance(1500);
  t.OnJobState(JobIn(v1::JOB_STATE_SCHEDULED, 1, created), v1::JOB_STATE_PENDING);
  clock.Advance(500);
  t.OnJobState(JobIn(v1::JOB_STATE_RUNNING, 1, created), v1::JOB_STATE_SCHEDULED);
  t.OnJobState(JobIn(v1::JOB_STATE_SUCCEEDED, 1, created), v1::JOB_STATE_RUNNING);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_jobs_submitted_total{kind=\"job\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_jobs_submitted_total{kind=\"trial\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("gangway_jobs_ended_total{state=\"succeeded\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_jobs_ended_total{state=\"failed\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("gangway_job_scheduling_latency_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_job_scheduling_latency_seconds_sum 1.5\n"));
  EXPECT_THAT(text, HasSubstr("gangway_job_scheduling_latency_seconds_bucket{le=\"1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("gangway_job_scheduling_latency_seconds_bucket{le=\"2.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_job_submit_to_start_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_job_submit_to_start_seconds_sum 2\n"));
}

TEST(CoordinatorTelemetryTest, ARestartIsTimedFromItsReturnToTheQueueNotFromSubmission) {
  common::FakeClock clock;
  CoordinatorTelemetry t(Fixed(std::nullopt), &clock);
  const int64_t created = clock.NowMs();
  clock.Advance(60'000);
  t.OnJobState(JobIn(v1::JOB_STATE_PENDING, 1, created), v1::JOB_STATE_RESTARTING);
  clock.Advance(250);
  t.OnJobState(JobIn(v1::JOB_STATE_SCHEDULED, 2, created), v1::JOB_STATE_PENDING);
  t.OnJobState(JobIn(v1::JOB_STATE_RUNNING, 2, created), v1::JOB_STATE_SCHEDULED);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_job_scheduling_latency_seconds_sum 0.25\n"));
  // Only a first attempt's start is a submission's start.
  EXPECT_THAT(text, HasSubstr("gangway_job_submit_to_start_seconds_count 0\n"));
}

TEST(CoordinatorTelemetryTest, ARecoveredPendingJobsFirstAttemptCountsFromSubmission) {
  common::FakeClock clock;
  CoordinatorTelemetry t(Fixed(std::nullopt), &clock);
  const int64_t created = clock.NowMs();
  clock.Advance(4000);  // the coordinator restarted meanwhile: no Pending seen
  t.OnJobState(JobIn(v1::JOB_STATE_SCHEDULED, 1, created), v1::JOB_STATE_PENDING);
  EXPECT_THAT(t.Text(), HasSubstr("gangway_job_scheduling_latency_seconds_sum 4\n"));
}

TEST(CoordinatorTelemetryTest, GaugesComeFromTheReaderWithEveryStatePresent) {
  common::FakeClock clock;
  CoreGauges g;
  g.jobs[v1::JOB_STATE_PENDING] = 2;
  g.jobs[v1::JOB_STATE_RUNNING] = 1;
  g.trials[v1::TRIAL_STATE_SUCCEEDED] = 3;
  g.nodes[v1::NODE_STATE_READY] = 2;
  g.queue_length = 2;
  g.oldest_pending_ms = 1500;
  g.gpus_total = 16;
  g.gpus_allocated = 4;
  CoordinatorTelemetry t(Fixed(g), &clock);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("# TYPE gangway_jobs gauge\n"));
  EXPECT_THAT(text, HasSubstr("gangway_jobs{state=\"pending\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("gangway_jobs{state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_jobs{state=\"failed\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("unspecified")));
  EXPECT_THAT(text, HasSubstr("gangway_trials{state=\"succeeded\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("gangway_trials{state=\"metrics_unavailable\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("gangway_nodes{state=\"ready\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("gangway_nodes{state=\"not_ready\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("gangway_queue_length 2\n"));
  EXPECT_THAT(text, HasSubstr("gangway_queue_oldest_pending_seconds 1.5\n"));
  EXPECT_THAT(text, HasSubstr("gangway_gpus 16\n"));
  EXPECT_THAT(text, HasSubstr("gangway_gpus_allocated 4\n"));
}

TEST(CoordinatorTelemetryTest, AScrapeTheCoreCannotAnswerCarriesTheCountersAlone) {
  common::FakeClock clock;
  CoordinatorTelemetry t(Fixed(std::nullopt), &clock);
  const std::string text = t.Text();
  EXPECT_THAT(text, Not(HasSubstr("gangway_jobs{")));
  EXPECT_THAT(text, HasSubstr("gangway_jobs_ended_total{state=\"succeeded\"} 0\n"));
}

TEST(CoordinatorTelemetryTest, RpcsAreCountedByKnownMethodAndCodeName) {
  common::FakeClock clock;
  CoordinatorTelemetry t(Fixed(std::nullopt), &clock);
  t.OnRpc("/gangway.v1.Control/GetJob", grpc::StatusCode::NOT_FOUND);
  t.OnRpc("/gangway.v1.Control/GetJob", grpc::StatusCode::NOT_FOUND);
  t.OnRpc("/gangway.v1.Control/SubmitJob", grpc::StatusCode::OK);
  t.OnRpc("/made.up/Method", grpc::StatusCode::UNIMPLEMENTED);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_rpcs_total{code=\"NOT_FOUND\",method=\"gangway.v1.Control/"
                              "GetJob\"} 2\n"));
  EXPECT_THAT(
      text,
      HasSubstr("gangway_rpcs_total{code=\"OK\",method=\"gangway.v1.Control/SubmitJob\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_rpcs_total{code=\"UNIMPLEMENTED\",method=\"unknown\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("made.up")));
}

TEST(TimedStoreTest, EveryWriteIsTimedAndAFailedOneCounted) {
  common::FakeClock clock;
  CoordinatorTelemetry t(Fixed(std::nullopt), &clock);
  fakes::FakeStore inner;
  TimedStore store(&inner, &t);
  v1::Job job = JobIn(v1::JOB_STATE_PENDING, 0, 1);
  const v1::Job* jobs[] = {&job};
  EXPECT_TRUE(store.SaveJobs(jobs).ok());
  inner.fail = true;
  EXPECT_FALSE(store.SaveJobs(jobs).ok());
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_store_write_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("gangway_store_write_errors_total 1\n"));
}

TEST(ReadOnLoopTest, ReadsOnTheLoopAndGivesUpWhenItDoesNotRun) {
  boost::asio::io_context io;
  std::thread::id read_on;
  GaugeReader read = ReadOnLoop(
      io,
      [&read_on] {
        read_on = std::this_thread::get_id();
        CoreGauges g;
        g.queue_length = 7;
        return g;
      },
      std::chrono::milliseconds(100));
  // Nothing runs the loop yet.
  EXPECT_FALSE(read().has_value());
  auto work = boost::asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });
  std::optional<CoreGauges> g = read();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->queue_length, 7);
  EXPECT_EQ(read_on, loop.get_id());
  work.reset();
  io.stop();
  loop.join();
}

TEST(CoordinatorTelemetryTest, ServesMetricsOverHttpAndRefusesAPortInUse) {
  common::FakeClock clock;
  CoreGauges g;
  g.queue_length = 3;
  CoordinatorTelemetry t(Fixed(g), &clock);
  ASSERT_TRUE(t.Serve("127.0.0.1:0").ok());
  ASSERT_GT(t.port(), 0);
  const std::string response = HttpGet(t.port(), "/metrics");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response, HasSubstr("gangway_queue_length 3\n"));
  EXPECT_THAT(response, HasSubstr("gangway_jobs_ended_total"));

  CoordinatorTelemetry second(Fixed(g), &clock);
  absl::Status taken = second.Serve(absl::StrCat("127.0.0.1:", t.port()));
  EXPECT_EQ(taken.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(taken.message()), HasSubstr("--metrics-listen 127.0.0.1:"));
  t.StopServing();
  EXPECT_EQ(HttpGet(t.port(), "/metrics"), "");
}

// Core::Gauges over a real core: queue, ages, nodes and GPUs.
TEST(CoreGaugesTest, CountsJobsQueueNodesAndGpus) {
  common::FakeClock clock;
  fakes::FakeStore store;
  fakes::RecordingSink sink;
  CoreOptions options;
  options.lease_ms = 0;
  Core core(&store, &sink, &clock, options);
  auto submit = [&](const std::string& name, int gpus) {
    v1::SubmitJobRequest req;
    req.set_yaml(absl::StrCat("name: ", name,
                              "\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memory: "
                              "1Gi\n  gpus: ",
                              gpus, "\ncommand: [\"true\"]\n"));
    bool answered = false;
    core.Submit(req, [&](absl::StatusOr<v1::Job> job) {
      answered = true;
      EXPECT_TRUE(job.ok()) << job.status();
    });
    core.Settle();
    EXPECT_TRUE(answered);
  };
  submit("a", 2);
  clock.Advance(3000);
  submit("b", 2);
  CoreGauges g = core.Gauges();
  EXPECT_EQ(g.jobs[v1::JOB_STATE_PENDING], 2);
  EXPECT_EQ(g.queue_length, 2);
  EXPECT_EQ(g.oldest_pending_ms, 3000);
  EXPECT_EQ(g.gpus_total, 0);

  v1::Register reg;
  reg.set_node_name("n1");
  reg.set_address("n1");
  reg.mutable_inventory()->set_milli_cpus(1000);  // one job's cpu: b stays queued
  reg.mutable_inventory()->set_memory_bytes(int64_t{8} << 30);
  for (int i = 0; i < 4; ++i) reg.mutable_inventory()->add_gpus()->set_index(i);
  ASSERT_TRUE(core.OnRegister(1, reg).ok());
  core.Settle();
  g = core.Gauges();
  EXPECT_EQ(g.nodes[v1::NODE_STATE_READY], 1);
  EXPECT_EQ(g.gpus_total, 4);
  EXPECT_EQ(g.gpus_allocated, 2);
  EXPECT_EQ(g.jobs[v1::JOB_STATE_SCHEDULED], 1);
  EXPECT_EQ(g.queue_length, 1);
  EXPECT_EQ(g.oldest_pending_ms, 0);  // b has waited since its submission, at this moment
}

}  // namespace
}  // namespace gangway::coordinator
