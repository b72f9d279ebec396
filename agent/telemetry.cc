#include "agent/telemetry.h"

#include <filesystem>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/agent.h"
#include "common/log.h"

namespace gangway::agent {
namespace {

using daemon::AddGauge;
using daemon::GaugeFamily;
using prometheus::ClientMetric;
using prometheus::MetricFamily;

constexpr int kNvmlSuccess = 0;

std::string NvmlError(const gpu::NvmlApi& api, int r) {
  const char* text = api.error_string ? api.error_string(r) : nullptr;
  return text ? std::string(text) : absl::StrCat("NVML error ", r);
}

// The GPU indices of CUDA_VISIBLE_DEVICES ("0,3"); the rank's own
// environment wins over the gang's, as at launch.
std::vector<int> GpusOf(const v1::LaunchGang& launch, const v1::RankLaunch& rank) {
  auto it = rank.env().find("CUDA_VISIBLE_DEVICES");
  const std::string* list = nullptr;
  if (it != rank.env().end()) {
    list = &it->second;
  } else if (auto g = launch.env().find("CUDA_VISIBLE_DEVICES"); g != launch.env().end()) {
    list = &g->second;
  }
  std::vector<int> out;
  if (list == nullptr) return out;
  for (absl::string_view part : absl::StrSplit(*list, ',', absl::SkipEmpty())) {
    int index = 0;
    if (absl::SimpleAtoi(part, &index) && index >= 0) out.push_back(index);
  }
  return out;
}

}  // namespace

// ---- NVML ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<NvmlSampler>> NvmlSampler::Open(const std::string& library) {
  absl::StatusOr<gpu::NvmlLibrary> lib = gpu::NvmlLibrary::Load(library);
  if (!lib.ok()) return lib.status();
  auto owned = std::make_unique<gpu::NvmlLibrary>(*std::move(lib));
  absl::StatusOr<std::unique_ptr<NvmlSampler>> sampler = Start(&owned->api());
  if (!sampler.ok()) return sampler.status();
  (*sampler)->library_ = std::move(owned);
  return sampler;
}

absl::StatusOr<std::unique_ptr<NvmlSampler>> NvmlSampler::Start(const gpu::NvmlApi* api) {
  if (const int r = api->init(); r != kNvmlSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("NVML does not work here: nvmlInit: ", NvmlError(*api, r)));
  }
  return std::unique_ptr<NvmlSampler>(new NvmlSampler(api));
}

NvmlSampler::~NvmlSampler() { api_->shutdown(); }

absl::StatusOr<std::vector<GpuSample>> NvmlSampler::Sample() {
  unsigned int count = 0;
  if (const int r = api_->device_get_count(&count); r != kNvmlSuccess) {
    return absl::InternalError(absl::StrCat("NVML device count: ", NvmlError(*api_, r)));
  }
  std::vector<GpuSample> out;
  for (unsigned int i = 0; i < count; ++i) {
    gpu::NvmlApi::Device device = nullptr;
    if (api_->device_get_handle_by_index(i, &device) != kNvmlSuccess) continue;
    GpuSample& s = out.emplace_back();
    s.index = static_cast<int>(i);
    char uuid[96] = {};
    if (api_->device_get_uuid && api_->device_get_uuid(device, uuid, sizeof(uuid) - 1) == 0) {
      s.uuid = uuid;
    }
    gpu::NvmlApi::Memory memory = {};
    if (api_->device_get_memory_info(device, &memory) == kNvmlSuccess) {
      s.memory_used_bytes = static_cast<int64_t>(memory.used);
      s.memory_total_bytes = static_cast<int64_t>(memory.total);
    }
    gpu::NvmlApi::Utilization util = {};
    if (api_->device_get_utilization_rates &&
        api_->device_get_utilization_rates(device, &util) == kNvmlSuccess) {
      s.utilization = static_cast<double>(util.gpu) / 100.0;
    }
  }
  return out;
}

// ---- Scrape-time series ------------------------------------------------------

class AgentTelemetry::Snapshot final : public prometheus::Collectable {
 public:
  explicit Snapshot(const AgentTelemetry* t) : t_(t) {}

  std::vector<MetricFamily> Collect() const override {
    std::map<Key, Rank> ranks;
    {
      std::lock_guard lock(t_->mu_);
      ranks = t_->ranks_;
    }
    std::vector<MetricFamily> out;
    // Ranks and log bytes by job.
    std::map<std::pair<std::string, bool>, int64_t> by_state;
    std::map<std::string, int64_t> log_bytes;
    std::map<int, std::string> gpu_job;  // GPU index -> job of a running rank
    for (const auto& [key, rank] : ranks) {
      const auto& [job, attempt, index] = key;
      ++by_state[{job, rank.running}];
      std::error_code ec;
      const auto size =
          std::filesystem::file_size(Agent::LogPath(t_->state_dir_, job, attempt, index), ec);
      log_bytes[job] += ec ? 0 : static_cast<int64_t>(size);
      if (rank.running) {
        for (int g : rank.gpus) gpu_job[g] = job;
      }
    }
    MetricFamily states =
        GaugeFamily("gangway_agent_ranks", "Ranks this agent tracks, by job and state");
    for (const auto& [js, n] : by_state) {
      AddGauge(states, static_cast<double>(n),
               {{"job_id", js.first}, {"state", js.second ? "running" : "exited"}});
    }
    out.push_back(std::move(states));
    MetricFamily logs = GaugeFamily("gangway_agent_rank_log_bytes",
                                    "Bytes in the logs of the ranks this agent tracks, by job");
    for (const auto& [job, bytes] : log_bytes) {
      AddGauge(logs, static_cast<double>(bytes), {{"job_id", job}});
    }
    out.push_back(std::move(logs));
    AppendGpus(gpu_job, out);
    return out;
  }

 private:
  void AppendGpus(const std::map<int, std::string>& gpu_job, std::vector<MetricFamily>& out) const {
    MetricFamily up = GaugeFamily(
        "gangway_agent_nvml_up", "1 when NVML answered this scrape, 0 when it is absent or failed");
    if (!t_->gpus_) {
      AddGauge(up, 0);
      out.push_back(std::move(up));
      return;
    }
    absl::StatusOr<std::vector<GpuSample>> samples;
    {
      std::lock_guard lock(t_->sample_mu_);
      samples = t_->gpus_->Sample();
    }
    AddGauge(up, samples.ok() ? 1 : 0);
    out.push_back(std::move(up));
    if (!samples.ok()) {
      GW_LOG_WARN("metrics: {}", std::string(samples.status().message()));
      return;
    }
    MetricFamily used = GaugeFamily("gangway_agent_gpu_memory_used_bytes",
                                    "GPU memory in use (NVML), with the job holding the GPU");
    MetricFamily total = GaugeFamily("gangway_agent_gpu_memory_total_bytes", "GPU memory (NVML)");
    MetricFamily util = GaugeFamily("gangway_agent_gpu_utilization_ratio",
                                    "Share of NVML's last sample period a kernel ran (0..1)");
    for (const GpuSample& s : *samples) {
      auto job = gpu_job.find(s.index);
      std::vector<ClientMetric::Label> labels = {
          {"gpu", std::to_string(s.index)},
          {"job_id", job == gpu_job.end() ? "" : job->second},
          {"uuid", s.uuid}};
      AddGauge(used, static_cast<double>(s.memory_used_bytes), labels);
      AddGauge(total, static_cast<double>(s.memory_total_bytes),
               {{"gpu", std::to_string(s.index)}, {"uuid", s.uuid}});
      if (s.utilization >= 0) AddGauge(util, s.utilization, labels);
    }
    out.push_back(std::move(used));
    out.push_back(std::move(total));
    out.push_back(std::move(util));
  }

  const AgentTelemetry* t_;
};

// ---- AgentTelemetry ------------------------------------------------------------

AgentTelemetry::AgentTelemetry(std::string state_dir, std::unique_ptr<GpuSampler> gpus)
    : state_dir_(std::move(state_dir)),
      registry_(std::make_shared<prometheus::Registry>()),
      launches_(prometheus::BuildCounter()
                    .Name("gangway_agent_rank_launches_total")
                    .Help("Ranks this agent launched (result=started) or could not (failed)")
                    .Register(*registry_)),
      exits_(prometheus::BuildCounter()
                 .Name("gangway_agent_rank_exits_total")
                 .Help("Rank exits seen, by outcome (succeeded: exit code 0)")
                 .Register(*registry_)),
      restarts_(prometheus::BuildCounter()
                    .Name("gangway_agent_rank_restarts_total")
                    .Help("Ranks launched for a gang's second or later attempt")
                    .Register(*registry_)
                    .Add({})),
      gpus_(std::move(gpus)),
      snapshot_(std::make_shared<Snapshot>(this)),
      http_(std::make_unique<daemon::MetricsHttp>(
          std::vector<std::shared_ptr<prometheus::Collectable>>{registry_, snapshot_})) {
  launches_.Add({{"result", "started"}});
  launches_.Add({{"result", "failed"}});
  exits_.Add({{"outcome", "succeeded"}});
  exits_.Add({{"outcome", "failed"}});
}

AgentTelemetry::~AgentTelemetry() { StopServing(); }

void AgentTelemetry::RankLaunched(const v1::LaunchGang& launch, const v1::RankLaunch& rank,
                                  bool started) {
  launches_.Add({{"result", started ? "started" : "failed"}}).Increment();
  if (launch.attempt() > 1) restarts_.Increment();
  std::lock_guard lock(mu_);
  ranks_[{launch.job_id(), launch.attempt(), rank.rank()}] = Rank{started, GpusOf(launch, rank)};
}

void AgentTelemetry::RankAdopted(const std::string& job, int32_t attempt, int32_t rank,
                                 bool running) {
  std::lock_guard lock(mu_);
  // Which GPUs an adopted rank holds is not recorded with its keeper: its
  // GPUs show no job until its gang is launched again.
  ranks_[{job, attempt, rank}].running = running;
}

void AgentTelemetry::RankExited(const std::string& job, int32_t attempt, int32_t rank,
                                int32_t exit_code) {
  exits_.Add({{"outcome", exit_code == 0 ? "succeeded" : "failed"}}).Increment();
  std::lock_guard lock(mu_);
  if (auto it = ranks_.find({job, attempt, rank}); it != ranks_.end()) it->second.running = false;
}

void AgentTelemetry::RankForgotten(const std::string& job, int32_t attempt, int32_t rank) {
  std::lock_guard lock(mu_);
  ranks_.erase({job, attempt, rank});
}

std::string AgentTelemetry::Text() const { return http_->Text(); }

absl::Status AgentTelemetry::Serve(const std::string& listen) {
  return http_->Serve(listen, /*threads=*/1, "0.0.0.0:9465");
}

absl::StatusOr<std::unique_ptr<AgentTelemetry>> StartTelemetry(const std::string& listen,
                                                               const std::string& state_dir) {
  absl::StatusOr<std::unique_ptr<NvmlSampler>> nvml = NvmlSampler::Open();
  if (!nvml.ok()) {
    GW_LOG_INFO("metrics: no GPU series ({})", std::string(nvml.status().message()));
  }
  auto telemetry = std::make_unique<AgentTelemetry>(
      state_dir, nvml.ok() ? std::unique_ptr<GpuSampler>(*std::move(nvml)) : nullptr);
  if (absl::Status s = telemetry->Serve(listen); !s.ok()) return s;
  return telemetry;
}

}  // namespace gangway::agent
