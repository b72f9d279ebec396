#include "coordinator/telemetry.h"

#include <algorithm>
#include <cctype>
#include <future>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "common/log.h"
#include "coordinator/auth.h"
#include "coordinator/job_state.h"

namespace gangway::coordinator {
namespace {

using daemon::AddGauge;
using daemon::GaugeFamily;
using prometheus::ClientMetric;
using prometheus::MetricFamily;

// Queue waits run from milliseconds (an idle cluster) to hours (a gang
// waiting for a full node).
const prometheus::Histogram::BucketBoundaries kWaitBuckets = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400};
// One SQLite transaction: fsync-bound, about a millisecond on a fast disk.
const prometheus::Histogram::BucketBoundaries kWriteBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

// "JOB_STATE_PENDING" less its prefix, in lower case.
std::string Label(const std::string& enum_name, absl::string_view prefix) {
  std::string out =
      absl::StartsWith(enum_name, prefix) ? enum_name.substr(prefix.size()) : enum_name;
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Every value of a state enum gets a series, 0 included, so a panel or an
// alert on "failed" exists before the first failure.
template <typename Enum>
MetricFamily ByState(std::string name, std::string help, const std::map<Enum, int64_t>& counts,
                     bool (*valid)(int), int last) {
  MetricFamily f = GaugeFamily(std::move(name), std::move(help));
  for (int v = 1; v <= last; ++v) {
    if (!valid(v)) continue;
    const Enum e = static_cast<Enum>(v);
    auto it = counts.find(e);
    AddGauge(f, it == counts.end() ? 0 : static_cast<double>(it->second),
             {{"state", StateLabel(e)}});
  }
  return f;
}

class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(CoordinatorTelemetry* telemetry, std::string method)
      : telemetry_(telemetry), method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      telemetry_->OnRpc(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  CoordinatorTelemetry* telemetry_;
  std::string method_;
};

class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(CoordinatorTelemetry* telemetry) : telemetry_(telemetry) {}
  // gRPC's interface hands ownership over as a raw pointer; it deletes the
  // interceptor when the call ends.
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcInterceptor(telemetry_, info->method());
  }

 private:
  CoordinatorTelemetry* telemetry_;
};

}  // namespace

std::string StateLabel(v1::JobState state) { return Label(v1::JobState_Name(state), "JOB_STATE_"); }
std::string StateLabel(v1::TrialState state) {
  return Label(v1::TrialState_Name(state), "TRIAL_STATE_");
}
std::string StateLabel(v1::NodeState state) {
  return Label(v1::NodeState_Name(state), "NODE_STATE_");
}

GaugeReader ReadOnLoop(boost::asio::io_context& io, std::function<CoreGauges()> read,
                       std::chrono::milliseconds timeout) {
  return [&io, read = std::move(read), timeout]() -> std::optional<CoreGauges> {
    // Shared: a handler that runs after the wait gave up still has its promise.
    auto promise = std::make_shared<std::promise<CoreGauges>>();
    std::future<CoreGauges> future = promise->get_future();
    boost::asio::post(io, [promise, read] { promise->set_value(read()); });
    if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    return future.get();
  };
}

// The series counted from the core's records at scrape time.
class CoordinatorTelemetry::Gauges final : public prometheus::Collectable {
 public:
  explicit Gauges(GaugeReader read) : read_(std::move(read)) {}

  std::vector<MetricFamily> Collect() const override {
    std::optional<CoreGauges> g = read_();
    if (!g) {
      GW_LOG_WARN("metrics: the core did not answer in time; scrape without its gauges");
      return {};
    }
    std::vector<MetricFamily> out;
    out.push_back(ByState("gangway_jobs", "Jobs the coordinator holds, by state", g->jobs,
                          v1::JobState_IsValid, v1::JobState_MAX));
    out.push_back(ByState("gangway_trials", "Trials of every sweep held, by state", g->trials,
                          v1::TrialState_IsValid, v1::TrialState_MAX));
    out.push_back(ByState("gangway_nodes", "Registered nodes, by state", g->nodes,
                          v1::NodeState_IsValid, v1::NodeState_MAX));
    MetricFamily queue = GaugeFamily(
        "gangway_queue_length", "Jobs waiting to be placed (Pending, restarts backing off too)");
    AddGauge(queue, static_cast<double>(g->queue_length));
    out.push_back(std::move(queue));
    MetricFamily oldest = GaugeFamily("gangway_queue_oldest_pending_seconds",
                                      "How long the longest-waiting Pending job has waited");
    AddGauge(oldest, static_cast<double>(g->oldest_pending_ms) / 1000.0);
    out.push_back(std::move(oldest));
    MetricFamily total = GaugeFamily("gangway_gpus", "GPUs of the registered nodes");
    AddGauge(total, static_cast<double>(g->gpus_total));
    out.push_back(std::move(total));
    MetricFamily allocated =
        GaugeFamily("gangway_gpus_allocated", "GPUs held by placed or running gangs");
    AddGauge(allocated, static_cast<double>(g->gpus_allocated));
    out.push_back(std::move(allocated));
    return out;
  }

 private:
  GaugeReader read_;
};

CoordinatorTelemetry::CoordinatorTelemetry(GaugeReader gauges, const common::Clock* clock)
    : clock_(clock),
      registry_(std::make_shared<prometheus::Registry>()),
      gauges_(std::make_shared<Gauges>(std::move(gauges))),
      jobs_ended_(prometheus::BuildCounter()
                      .Name("gangway_jobs_ended_total")
                      .Help("Jobs that reached a terminal state, by that state")
                      .Register(*registry_)),
      jobs_submitted_(prometheus::BuildCounter()
                          .Name("gangway_jobs_submitted_total")
                          .Help("Jobs created: submitted ones (kind=job) and sweeps' trials")
                          .Register(*registry_)),
      rpcs_(prometheus::BuildCounter()
                .Name("gangway_rpcs_total")
                .Help("RPCs served, by method and gRPC status code")
                .Register(*registry_)),
      store_errors_(prometheus::BuildCounter()
                        .Name("gangway_store_write_errors_total")
                        .Help("Store writes that failed (the core retries them)")
                        .Register(*registry_)),
      scheduling_latency_(prometheus::BuildHistogram()
                              .Name("gangway_job_scheduling_latency_seconds")
                              .Help("From a job becoming Pending to its gang being placed")
                              .Register(*registry_)
                              .Add({}, kWaitBuckets)),
      submit_to_start_(prometheus::BuildHistogram()
                           .Name("gangway_job_submit_to_start_seconds")
                           .Help("From submission to every rank of the first attempt running")
                           .Register(*registry_)
                           .Add({}, kWaitBuckets)),
      store_write_(prometheus::BuildHistogram()
                       .Name("gangway_store_write_seconds")
                       .Help("One batched store write (a SQLite transaction)")
                       .Register(*registry_)
                       .Add({}, kWriteBuckets)),
      http_(std::make_unique<daemon::MetricsHttp>(
          std::vector<std::shared_ptr<prometheus::Collectable>>{registry_, gauges_})) {
  // Present from the start, so the ended counters read 0 rather than absent.
  for (v1::JobState s : {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED}) {
    jobs_ended_.Add({{"state", StateLabel(s)}});
  }
  jobs_submitted_.Add({{"kind", "job"}});
  jobs_submitted_.Add({{"kind", "trial"}});
  store_errors_.Add({});
}

CoordinatorTelemetry::~CoordinatorTelemetry() { StopServing(); }

void CoordinatorTelemetry::OnJobState(const v1::Job& job, v1::JobState from) {
  const v1::JobState to = job.state();
  const int64_t now = clock_->NowMs();
  if (from == v1::JOB_STATE_UNSPECIFIED) {
    jobs_submitted_.Add({{"kind", job.sweep().empty() ? "job" : "trial"}}).Increment();
  }
  if (to == v1::JOB_STATE_PENDING) {
    pending_since_[job.id()] = now;
  } else if (from == v1::JOB_STATE_PENDING) {
    auto it = pending_since_.find(job.id());
    // A job recovered as Pending after a restart was not seen entering the
    // queue: its first attempt waited since submission, a later one is
    // not known.
    int64_t since = it != pending_since_.end() ? it->second
                    : job.attempt() <= 1       ? job.create_time_ms()
                                               : -1;
    if (it != pending_since_.end()) pending_since_.erase(it);
    if (to == v1::JOB_STATE_SCHEDULED && since >= 0) {
      scheduling_latency_.Observe(static_cast<double>(std::max<int64_t>(0, now - since)) / 1000.0);
    }
  }
  if (to == v1::JOB_STATE_RUNNING && from == v1::JOB_STATE_SCHEDULED && job.attempt() == 1) {
    submit_to_start_.Observe(static_cast<double>(std::max<int64_t>(0, now - job.create_time_ms())) /
                             1000.0);
  }
  if (IsTerminal(to)) {
    pending_since_.erase(job.id());
    jobs_ended_.Add({{"state", StateLabel(to)}}).Increment();
  }
}

void CoordinatorTelemetry::OnRpc(const std::string& method, grpc::StatusCode code) {
  // Only methods of the authorization table become labels: a client naming
  // arbitrary methods must not grow the series without bound.
  absl::string_view name = method;
  if (absl::StartsWith(name, "/")) name.remove_prefix(1);
  const std::string label = FindRule(name) != nullptr ? std::string(name) : "unknown";
  rpcs_
      .Add({{"method", label},
            {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}})
      .Increment();
}

void CoordinatorTelemetry::OnStoreWrite(std::chrono::duration<double> took, bool ok) {
  store_write_.Observe(took.count());
  if (!ok) store_errors_.Add({}).Increment();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CoordinatorTelemetry::InterceptorFactory() {
  return std::make_unique<RpcInterceptorFactory>(this);
}

std::string CoordinatorTelemetry::Text() const { return http_->Text(); }

absl::Status CoordinatorTelemetry::Serve(const std::string& listen) {
  return http_->Serve(listen, /*threads=*/2, "127.0.0.1:9464");
}

absl::Status TimedStore::Save(const WriteBatch& batch) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = inner_->Save(batch);
  telemetry_->OnStoreWrite(std::chrono::steady_clock::now() - start, s.ok());
  return s;
}

}  // namespace gangway::coordinator
