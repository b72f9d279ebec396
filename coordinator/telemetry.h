// The coordinator's Prometheus metrics (docs/monitoring.md lists every
// series): counters and histograms fed by the core's state changes, the
// store's writes and a gRPC server interceptor, and gauges counted from the
// core's records when Prometheus scrapes. Served by prometheus-cpp's
// embedded HTTP server (civetweb) on --metrics-listen.
//
// Threads: OnJobState runs on the core's loop; the interceptor and the
// store wrapper on whatever thread makes the call; Collect on the HTTP
// server's threads. The gauges are read through a GaugeReader, which the
// server implements by posting onto the loop (ReadOnLoop), so the core's
// records are only ever touched by their own thread and a scrape costs the
// loop one pass over them.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "common/clock.h"
#include "coordinator/core_gauges.h"
#include "coordinator/store.h"
#include "daemon/metrics_http.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace gangway::coordinator {

// Empty when the gauges could not be read in time (a stuck loop): the
// scrape then carries the counters alone rather than hanging.
using GaugeReader = std::function<std::optional<CoreGauges>()>;

// Runs `read` on `io`'s thread and waits for it at most `timeout`.
GaugeReader ReadOnLoop(boost::asio::io_context& io, std::function<CoreGauges()> read,
                       std::chrono::milliseconds timeout = std::chrono::seconds(2));

// "pending" for JOB_STATE_PENDING: the label values of docs/monitoring.md.
std::string StateLabel(v1::JobState state);
std::string StateLabel(v1::TrialState state);
std::string StateLabel(v1::NodeState state);

class CoordinatorTelemetry {
 public:
  // `clock` (wall time) dates what jobs record in wall time.
  CoordinatorTelemetry(GaugeReader gauges, const common::Clock* clock);
  ~CoordinatorTelemetry();
  CoordinatorTelemetry(const CoordinatorTelemetry&) = delete;
  CoordinatorTelemetry& operator=(const CoordinatorTelemetry&) = delete;

  // CoreOptions::on_job_state (loop thread).
  void OnJobState(const v1::Job& job, v1::JobState from);
  // A finished RPC; `method` as gRPC names it ("/gangway.v1.Control/GetJob").
  void OnRpc(const std::string& method, grpc::StatusCode code);
  void OnStoreWrite(std::chrono::duration<double> took, bool ok);

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

  // The exposition text of every series now (what /metrics answers).
  std::string Text() const;

  // Serves /metrics on `listen` (host:port; port 0 picks one).
  // UNAVAILABLE when it cannot bind.
  absl::Status Serve(const std::string& listen);
  // The port bound by Serve, 0 before.
  int port() const { return http_->port(); }
  // Stops the HTTP server; waits for a scrape in progress. Idempotent.
  void StopServing() { http_->Stop(); }

 private:
  class Gauges;

  const common::Clock* clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<Gauges> gauges_;
  prometheus::Family<prometheus::Counter>& jobs_ended_;
  prometheus::Family<prometheus::Counter>& jobs_submitted_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Counter>& store_errors_;
  prometheus::Histogram& scheduling_latency_;
  prometheus::Histogram& submit_to_start_;
  prometheus::Histogram& store_write_;
  // Job id -> when it last became Pending (wall ms). Loop thread.
  std::unordered_map<std::string, int64_t> pending_since_;
  std::unique_ptr<daemon::MetricsHttp> http_;  // over registry_ and gauges_
};

// The store, with each Save timed into telemetry (the core does not know).
class TimedStore final : public Store {
 public:
  TimedStore(Store* inner, CoordinatorTelemetry* telemetry)
      : inner_(inner), telemetry_(telemetry) {}
  absl::StatusOr<std::vector<v1::Job>> LoadJobs() override { return inner_->LoadJobs(); }
  absl::StatusOr<std::vector<v1::Sweep>> LoadSweeps() override { return inner_->LoadSweeps(); }
  absl::StatusOr<std::vector<v1::MetricPoint>> LoadMetrics(const std::string& job_id) override {
    return inner_->LoadMetrics(job_id);
  }
  absl::StatusOr<MetricPage> LoadMetricsPage(const std::string& job_id, const std::string& name,
                                             int64_t after, int64_t limit) override {
    return inner_->LoadMetricsPage(job_id, name, after, limit);
  }
  absl::Status Save(const WriteBatch& batch) override;

 private:
  Store* inner_;
  CoordinatorTelemetry* telemetry_;
};

}  // namespace gangway::coordinator
