// The agent's /metrics: ranks by job and state, launches, restarts and
// exits, log bytes, and GPU series from a sampler (faked NVML), or none
// when NVML is absent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/telemetry.h"

namespace gangway::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class FixedSampler final : public GpuSampler {
 public:
  explicit FixedSampler(absl::StatusOr<std::vector<GpuSample>> samples)
      : samples_(std::move(samples)) {}
  absl::StatusOr<std::vector<GpuSample>> Sample() override { return samples_; }

 private:
  absl::StatusOr<std::vector<GpuSample>> samples_;
};

std::vector<GpuSample> ThreeGpus() {
  std::vector<GpuSample> out;
  for (int i = 0; i < 3; ++i) {
    out.push_back(GpuSample{i, absl::StrCat("GPU-", i), (i + 1) * int64_t{1} << 30,
                            int64_t{80} << 30, 0.25 * i});
  }
  return out;
}

v1::LaunchGang Gang(const std::string& job, int32_t attempt) {
  v1::LaunchGang launch;
  launch.set_job_id(job);
  launch.set_attempt(attempt);
  return launch;
}

v1::RankLaunch RankWith(int32_t rank, const std::string& cuda_visible_devices) {
  v1::RankLaunch rl;
  rl.set_rank(rank);
  if (!cuda_visible_devices.empty())
    (*rl.mutable_env())["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices;
  return rl;
}

class AgentTelemetryTest : public ::testing::Test {
 protected:
  AgentTelemetryTest() {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("agent_telemetry_test_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  ~AgentTelemetryTest() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(AgentTelemetryTest, GpusCarryTheJobOfTheRunningRankThatHoldsThem) {
  AgentTelemetry t(dir_.string(), std::make_unique<FixedSampler>(ThreeGpus()));
  v1::LaunchGang gang = Gang("train-1", 1);
  t.RankLaunched(gang, RankWith(0, "1,2"), true);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_agent_nvml_up 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_gpu_memory_used_bytes{gpu=\"1\",job_id=\"train-1\","
                              "uuid=\"GPU-1\"} 2147483648\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_gpu_memory_used_bytes{gpu=\"0\",job_id=\"\","
                              "uuid=\"GPU-0\"} 1073741824\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_gpu_utilization_ratio{gpu=\"2\",job_id=\"train-1\","
                              "uuid=\"GPU-2\"} 0.5\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_gpu_memory_total_bytes{gpu=\"2\",uuid=\"GPU-2\"} "
                              "85899345920\n"));
  // Exited: its GPUs are free again.
  t.RankExited("train-1", 1, 0, 0);
  EXPECT_THAT(t.Text(), HasSubstr("gangway_agent_gpu_memory_used_bytes{gpu=\"1\",job_id=\"\","));
}

TEST_F(AgentTelemetryTest, TheGangsCudaVisibleDevicesCountsWhenTheRankHasNone) {
  AgentTelemetry t(dir_.string(), std::make_unique<FixedSampler>(ThreeGpus()));
  v1::LaunchGang gang = Gang("train-1", 1);
  (*gang.mutable_env())["CUDA_VISIBLE_DEVICES"] = "0";
  t.RankLaunched(gang, RankWith(0, ""), true);
  EXPECT_THAT(t.Text(),
              HasSubstr("gangway_agent_gpu_memory_used_bytes{gpu=\"0\",job_id=\"train-1\""));
}

TEST_F(AgentTelemetryTest, RanksByJobAndStateLaunchesExitsAndRestarts) {
  AgentTelemetry t(dir_.string(), nullptr);
  t.RankLaunched(Gang("a", 1), RankWith(0, ""), true);
  t.RankLaunched(Gang("a", 1), RankWith(1, ""), true);
  t.RankLaunched(Gang("b", 2), RankWith(0, ""), true);
  t.RankLaunched(Gang("b", 2), RankWith(1, ""), false);
  t.RankExited("a", 1, 1, 3);
  t.RankExited("b", 2, 0, 0);
  std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_agent_ranks{job_id=\"a\",state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_ranks{job_id=\"a\",state=\"exited\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_ranks{job_id=\"b\",state=\"exited\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_launches_total{result=\"started\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_launches_total{result=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_exits_total{outcome=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_exits_total{outcome=\"succeeded\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_restarts_total 2\n"));  // b's attempt 2
  t.RankForgotten("b", 2, 0);
  t.RankForgotten("b", 2, 1);
  text = t.Text();
  EXPECT_THAT(text, Not(HasSubstr("job_id=\"b\"")));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_exits_total{outcome=\"succeeded\"} 1\n"));
}

TEST_F(AgentTelemetryTest, AdoptedRanksAreCounted) {
  AgentTelemetry t(dir_.string(), nullptr);
  t.RankAdopted("a", 3, 0, true);
  t.RankAdopted("a", 3, 1, false);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_agent_ranks{job_id=\"a\",state=\"running\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_ranks{job_id=\"a\",state=\"exited\"} 1\n"));
}

TEST_F(AgentTelemetryTest, LogBytesAreTheSizesOfTheTrackedRanksLogs) {
  AgentTelemetry t(dir_.string(), nullptr);
  for (int rank = 0; rank < 2; ++rank) {
    const std::filesystem::path log = Agent::LogPath(dir_.string(), "a", 1, rank);
    std::filesystem::create_directories(log.parent_path());
    std::ofstream(log) << std::string(10 * (rank + 1), 'x');
    t.RankLaunched(Gang("a", 1), RankWith(rank, ""), true);
  }
  t.RankLaunched(Gang("c", 1), RankWith(0, ""), true);  // no log yet: 0
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_log_bytes{job_id=\"a\"} 30\n"));
  EXPECT_THAT(text, HasSubstr("gangway_agent_rank_log_bytes{job_id=\"c\"} 0\n"));
}

TEST_F(AgentTelemetryTest, WithoutNvmlThereAreNoGpuSeries) {
  AgentTelemetry t(dir_.string(), nullptr);
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_agent_nvml_up 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("gangway_agent_gpu_")));
}

TEST_F(AgentTelemetryTest, AFailingSamplerReadsAsNvmlDown) {
  AgentTelemetry t(dir_.string(), std::make_unique<FixedSampler>(absl::InternalError("gone")));
  const std::string text = t.Text();
  EXPECT_THAT(text, HasSubstr("gangway_agent_nvml_up 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("gangway_agent_gpu_memory_used_bytes{")));
}

TEST_F(AgentTelemetryTest, ABadListenAddressIsRefusedWithTheFlagNamed) {
  AgentTelemetry t(dir_.string(), nullptr);
  absl::Status s = t.Serve("not-an-address");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--metrics-listen not-an-address"));
}

// ---- NVML over a fake API ----------------------------------------------------

struct FakeNvml {
  static inline int init_result = 0;
  static inline int shutdowns = 0;
  static int Init() { return init_result; }
  static int Shutdown() { return ++shutdowns, 0; }
  static int Count(unsigned int* n) { return *n = 2, 0; }
  static int Handle(unsigned int i, gpu::NvmlApi::Device* d) {
    *d = reinterpret_cast<gpu::NvmlApi::Device>(static_cast<uintptr_t>(i + 1));
    return 0;
  }
  static int Index(gpu::NvmlApi::Device d) {
    return static_cast<int>(reinterpret_cast<uintptr_t>(d)) - 1;
  }
  static int Name(gpu::NvmlApi::Device, char* name, unsigned int n) {
    std::strncpy(name, "Fake", n);
    return 0;
  }
  static int Memory(gpu::NvmlApi::Device d, gpu::NvmlApi::Memory* m) {
    m->total = 100;
    m->used = 10 * (Index(d) + 1);
    m->free = m->total - m->used;
    return 0;
  }
  static int Uuid(gpu::NvmlApi::Device d, char* uuid, unsigned int n) {
    std::snprintf(uuid, n, "GPU-fake-%d", Index(d));
    return 0;
  }
  static int Utilization(gpu::NvmlApi::Device d, gpu::NvmlApi::Utilization* u) {
    if (Index(d) == 1) return 3;  // NVML_ERROR_NOT_SUPPORTED
    u->gpu = 75;
    u->memory = 10;
    return 0;
  }
  static gpu::NvmlApi Api() {
    gpu::NvmlApi api;
    api.init = Init;
    api.shutdown = Shutdown;
    api.device_get_count = Count;
    api.device_get_handle_by_index = Handle;
    api.device_get_name = Name;
    api.device_get_memory_info = Memory;
    api.device_get_uuid = Uuid;
    api.device_get_utilization_rates = Utilization;
    return api;
  }
};

TEST(NvmlSamplerTest, ReadsMemoryUuidAndUtilizationWhereSupported) {
  FakeNvml::init_result = 0;
  FakeNvml::shutdowns = 0;
  const gpu::NvmlApi api = FakeNvml::Api();
  {
    absl::StatusOr<std::unique_ptr<NvmlSampler>> sampler = NvmlSampler::Start(&api);
    ASSERT_TRUE(sampler.ok()) << sampler.status();
    absl::StatusOr<std::vector<GpuSample>> samples = (*sampler)->Sample();
    ASSERT_TRUE(samples.ok()) << samples.status();
    ASSERT_EQ(samples->size(), 2u);
    EXPECT_EQ((*samples)[0].uuid, "GPU-fake-0");
    EXPECT_EQ((*samples)[1].memory_used_bytes, 20);
    EXPECT_EQ((*samples)[1].memory_total_bytes, 100);
    EXPECT_DOUBLE_EQ((*samples)[0].utilization, 0.75);
    EXPECT_LT((*samples)[1].utilization, 0);  // not supported: no series
  }
  EXPECT_EQ(FakeNvml::shutdowns, 1);
}

TEST(NvmlSamplerTest, ADriverThatDoesNotStartIsAnError) {
  FakeNvml::init_result = 9;  // NVML_ERROR_DRIVER_NOT_LOADED
  const gpu::NvmlApi api = FakeNvml::Api();
  absl::StatusOr<std::unique_ptr<NvmlSampler>> sampler = NvmlSampler::Start(&api);
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kFailedPrecondition);
  FakeNvml::init_result = 0;
}

TEST(NvmlSamplerTest, NoLibraryIsNotFound) {
  absl::StatusOr<std::unique_ptr<NvmlSampler>> sampler =
      NvmlSampler::Open("libnvidia-ml-absent-for-this-test.so.1");
  EXPECT_EQ(sampler.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gangway::agent
