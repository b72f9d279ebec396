// The agent's Prometheus metrics (docs/monitoring.md lists every series):
// its ranks by state and job, launches, restarts and exits, the size of the
// ranks' logs, and each GPU's memory and utilization from NVML (when the
// node has a driver), labelled with the job whose rank holds the GPU.
//
// Threads: the RankEvents calls come from the agent's loop and only update
// a table under a mutex; Collect runs on the HTTP server's threads, copies
// the table, then reads log sizes and NVML without holding the lock, so a
// scrape never waits on the loop nor the loop on a scrape's disk or driver
// calls.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/rank_events.h"
#include "daemon/metrics_http.h"
#include "gpu/nvml_driver.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace gangway::agent {

struct GpuSample {
  int index = 0;  // NVML's, which is PCI bus order as CUDA_VISIBLE_DEVICES is for ranks
  std::string uuid;
  int64_t memory_used_bytes = 0;
  int64_t memory_total_bytes = 0;
  double utilization = -1;  // 0..1 over NVML's last sample period; -1: not reported
};

// Reads every GPU's use. NvmlSampler over the driver; tests give their own.
class GpuSampler {
 public:
  virtual ~GpuSampler() = default;
  virtual absl::StatusOr<std::vector<GpuSample>> Sample() = 0;
};

// Keeps NVML initialised for its lifetime (a driver without persistence
// mode can take long to start, so not once per scrape).
class NvmlSampler final : public GpuSampler {
 public:
  // NOT_FOUND without libnvidia-ml (the CPU-only node's normal case);
  // FAILED_PRECONDITION when NVML does not start.
  static absl::StatusOr<std::unique_ptr<NvmlSampler>> Open(
      const std::string& library = "libnvidia-ml.so.1");
  // Over an API the caller keeps alive (tests fill one with fakes).
  static absl::StatusOr<std::unique_ptr<NvmlSampler>> Start(const gpu::NvmlApi* api);
  ~NvmlSampler() override;
  absl::StatusOr<std::vector<GpuSample>> Sample() override;

 private:
  explicit NvmlSampler(const gpu::NvmlApi* api) : api_(api) {}
  std::unique_ptr<gpu::NvmlLibrary> library_;  // null over a caller's API
  const gpu::NvmlApi* api_;
};

class AgentTelemetry final : public RankEvents {
 public:
  // `state_dir` as AgentOptions::state_dir (where rank logs are); `gpus`
  // may be null (no GPU series).
  AgentTelemetry(std::string state_dir, std::unique_ptr<GpuSampler> gpus);
  ~AgentTelemetry() override;
  AgentTelemetry(const AgentTelemetry&) = delete;
  AgentTelemetry& operator=(const AgentTelemetry&) = delete;

  // RankEvents (the agent's loop thread).
  void RankLaunched(const v1::LaunchGang& launch, const v1::RankLaunch& rank,
                    bool started) override;
  void RankAdopted(const std::string& job, int32_t attempt, int32_t rank, bool running) override;
  void RankExited(const std::string& job, int32_t attempt, int32_t rank,
                  int32_t exit_code) override;
  void RankForgotten(const std::string& job, int32_t attempt, int32_t rank) override;

  // The exposition text of every series now (what /metrics answers).
  std::string Text() const;
  // Serves /metrics on `listen` (host:port; port 0 picks one). UNAVAILABLE
  // when it cannot bind.
  absl::Status Serve(const std::string& listen);
  int port() const { return http_->port(); }
  void StopServing() { http_->Stop(); }

 private:
  class Snapshot;
  using Key = std::tuple<std::string, int32_t, int32_t>;  // job, attempt, rank
  struct Rank {
    bool running = false;
    std::vector<int> gpus;
  };

  std::string state_dir_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& launches_;
  prometheus::Family<prometheus::Counter>& exits_;
  prometheus::Counter& restarts_;
  mutable std::mutex mu_;
  std::map<Key, Rank> ranks_;         // guarded by mu_
  std::unique_ptr<GpuSampler> gpus_;  // used by one scrape at a time
  mutable std::mutex sample_mu_;      // one NVML sampling at a time
  std::shared_ptr<Snapshot> snapshot_;
  std::unique_ptr<daemon::MetricsHttp> http_;  // over registry_ and snapshot_
};

// An AgentTelemetry serving on `listen`, with GPU series when NVML loads.
absl::StatusOr<std::unique_ptr<AgentTelemetry>> StartTelemetry(const std::string& listen,
                                                               const std::string& state_dir);

}  // namespace gangway::agent
