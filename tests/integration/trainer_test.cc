// A real data-parallel job end to end: a coordinator, two agents and the
// example trainer (examples/jobs/trainer-gloo.yaml) as 4 ranks across both
// nodes. The ranks find each other through the coordinator's rendezvous
// (Gloo's full mesh over GlooStore), all-reduce gradients over Gloo's TCP
// transport, and must finish with the same weights and a trained model.
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

inline std::string TrainerBinary() { return BinaryPath("examples/trainer/gangway-trainer"); }

// The example spec with the trainer's path made absolute: the spec names it
// relative to the repository root, where `gangway local` is run from. The
// ranks run as the workload user: the build tree may be out of its reach.
std::string TrainerSpec(const TempDir& dir) {
  std::string yaml = ReadFile(SourcePath("examples/jobs/trainer-gloo.yaml"));
  const std::string relative = "build/examples/trainer/gangway-trainer";
  const size_t at = yaml.find(relative);
  if (at == std::string::npos) {
    ADD_FAILURE() << "examples/jobs/trainer-gloo.yaml no longer names " << relative;
    return yaml;
  }
  yaml.replace(at, relative.size(), WorkloadPath(dir, TrainerBinary()));
  return yaml;
}

struct RankResult {
  double first_loss = -1;  // step=0
  double final_loss = -1;
  double optimal_loss = -1;
  std::string sha;
};

// Reads the metric lines the trainer prints.
::testing::AssertionResult ParseRank(const std::string& log, RankResult* out) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(R"(step=0 loss=([0-9.]+))"))) {
    return ::testing::AssertionFailure() << "no step=0 line in:\n" << log;
  }
  out->first_loss = std::stod(m[1]);
  if (!std::regex_search(
          log, m,
          std::regex(
              R"(final_loss=([0-9.]+) optimal_loss=([0-9.]+) weights_sha=([0-9a-f]{64}))"))) {
    return ::testing::AssertionFailure() << "no final line in:\n" << log;
  }
  out->final_loss = std::stod(m[1]);
  out->optimal_loss = std::stod(m[2]);
  out->sha = m[3];
  return ::testing::AssertionSuccess();
}

TEST(TrainerIntegration, GlooDataParallelAcrossTwoAgents) {
  if (!std::filesystem::exists(TrainerBinary())) {
    GTEST_SKIP() << TrainerBinary() << " was not built (it needs Gloo and OpenSSL)";
  }
  ClusterOptions options;
  options.agents = 2;
  options.agent_cpus = "2";  // a 2 x 2 gang of 1-core ranks needs both nodes
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());

  const std::string id = cluster.Submit(TrainerSpec(cluster.dir()));
  ASSERT_FALSE(id.empty());
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 90s, &job))
      << "rank 0 log:\n"
      << cluster.Logs(id, 0).value_or("(none)");
  ASSERT_EQ(job.ranks_size(), 4);
  std::set<std::string> nodes;
  for (const auto& r : job.ranks()) nodes.insert(r.node());
  EXPECT_EQ(nodes.size(), 2u) << "the gang must span both agents";

  std::map<int, RankResult> results;
  for (int r = 0; r < 4; ++r) {
    std::optional<std::string> log = cluster.Logs(id, r);
    ASSERT_TRUE(log.has_value()) << "rank " << r;
    ASSERT_TRUE(ParseRank(*log, &results[r])) << "rank " << r;
  }
  for (int r = 0; r < 4; ++r) {
    const RankResult& res = results[r];
    SCOPED_TRACE(::testing::Message() << "rank " << r);
    // Every rank holds the same weights after every step only when the
    // gradients were really all-reduced: each rank's shard is different.
    EXPECT_EQ(res.sha, results[0].sha);
    EXPECT_EQ(res.final_loss, results[0].final_loss);
    // Weights start at zero, so the first loss is ln 2 = 0.693147.
    EXPECT_NEAR(res.first_loss, 0.693147, 1e-6);
    // The labels are drawn from the generating model, whose loss
    // (optimal_loss, about 0.3 at the spec's settings) no model can beat
    // by much on 8192 samples. A model that did not learn stays near ln 2;
    // one that learned from one shard only would not share the weights.
    // 0.45 sits well between the two; the margin above the optimum is what
    // 200 steps of full-batch gradient descent leave.
    EXPECT_LT(res.final_loss, 0.45);
    EXPECT_LT(res.final_loss, res.optimal_loss + 0.05);
    EXPECT_GT(res.final_loss, res.optimal_loss - 0.05);
  }
}

// Why the NCCL backend cannot be tried here ("" when it can): not built,
// or built without the backend.
std::string NcclBackendMissing() {
  if (!std::filesystem::exists(TrainerBinary())) {
    return TrainerBinary() + " was not built (it needs Gloo and OpenSSL)";
  }
  TempDir dir;
  RunResult help = RunCommand(dir, {TrainerBinary(), "--help"});
  if (help.code != 0) return "gangway-trainer --help failed: " + help.err;
  // The --backend help names nccl's use only when the backend is compiled in.
  if (help.out.find("nccl (one GPU per rank)") == std::string::npos) {
    return "gangway-trainer was built without the NCCL backend";
  }
  return "";
}

bool GpuPresent() {
  return std::filesystem::exists("/dev/nvidia0") || std::filesystem::exists("/dev/nvidiactl");
}

// The NCCL backend against the CUDA toolkit's stub driver (libcuda.so from
// lib64/stubs, which has every entry point and answers each call with
// CUDA_ERROR_STUB_LIBRARY): every driver and NCCL symbol the trainer needs
// must bind, and the first call must fail with the driver's code, not
// crash. This is as far as the GPU path goes without a GPU.
TEST(TrainerIntegration, NcclBindsTheDriverApiOfTheCudaStub) {
  if (std::string why = NcclBackendMissing(); !why.empty()) GTEST_SKIP() << why;
  const std::string stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  if (!std::filesystem::exists(stub)) GTEST_SKIP() << "no CUDA stub driver at " << stub;
  TempDir dir;
  // The trainer asks for the driver's soname.
  std::filesystem::create_symlink(stub, dir.Sub("libcuda.so.1"));
  RunResult run = RunCommand(dir, {TrainerBinary(), "--backend", "nccl", "--steps", "1"}, 20s,
                             {{"LD_LIBRARY_PATH", dir.path()},
                              {"RANK", "0"},
                              {"WORLD_SIZE", "1"},
                              {"LOCAL_RANK", "0"},
                              {"MASTER_ADDR", "127.0.0.1"},
                              {"GANGWAY_RDZV", "127.0.0.1:1"},
                              {"GANGWAY_JOB", "stub"},
                              {"GANGWAY_ATTEMPT", "1"}});
  if (run.err.find("cannot load libnccl.so.2") != std::string::npos) {
    GTEST_SKIP() << "NCCL is not installed here: " << run.err;
  }
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_EQ(run.err.find("lacks"), std::string::npos) << "a symbol did not bind: " << run.err;
  EXPECT_NE(run.err.find("cuInit: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("(CUDA error 34)"), std::string::npos) << run.err;  // STUB_LIBRARY
}

// The NCCL backend on a node without a GPU (NCCL may be installed; the
// driver and device are not): a rank must exit 1 at once with an error
// naming the CUDA/NCCL step, and the job must fail on that, not wait for its
// deadline. Where a GPU is present the job would succeed; the real-GPU
// check (scripts/gpu-check) covers that case.
TEST(TrainerIntegration, NcclWithoutAGpuFailsFastWithTheReason) {
  if (std::string why = NcclBackendMissing(); !why.empty()) GTEST_SKIP() << why;
  if (GpuPresent()) GTEST_SKIP() << "a GPU is present: there the NCCL job would succeed";
  ClusterOptions options;
  options.agents = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());

  // One node, two ranks. The trainer's own waits (--timeout) and the job's
  // deadline are both far beyond the bound below: the failure must come from
  // the ranks' exit.
  const std::string spec =
      "name: trainer-nccl\n"
      "replicas: 1\n"
      "procsPerNode: 2\n"
      "resources:\n"
      "  cpus: 1\n"
      "  memory: 256Mi\n"
      "command: [" +
      WorkloadPath(cluster.dir(), TrainerBinary()) +
      "]\n"
      "args: [--backend, nccl, --steps, \"20\", --timeout, \"120\"]\n"
      "restartPolicy: Never\n"
      "activeDeadlineSeconds: 300\n";
  const std::string id = cluster.Submit(spec);
  ASSERT_FALSE(id.empty());
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_FAILED, 30s, &job))
      << "rank 0 log:\n"
      << cluster.Logs(id, 0).value_or("(none)") << "\nrank 1 log:\n"
      << cluster.Logs(id, 1).value_or("(none)");
  EXPECT_EQ(job.reason().find("DeadlineExceeded"), std::string::npos) << job.reason();
  EXPECT_NE(job.reason().find("exit code 1"), std::string::npos) << job.reason();

  // Both ranks fail the same way; whichever exits first fails the job and
  // the other is stopped (143) before it may print. Every rank that exited
  // 1 names the step. Which step depends on what the node lacks: the driver
  // or NCCL (cannot load ...), or a working driver or device (cuInit,
  // cuDeviceGetCount).
  ASSERT_EQ(job.ranks_size(), 2);
  int failed = 0;
  for (const auto& r : job.ranks()) {
    std::optional<std::string> log = cluster.Logs(id, r.rank());
    ASSERT_TRUE(log.has_value()) << "rank " << r.rank();
    EXPECT_EQ(log->find("step="), std::string::npos) << "rank " << r.rank() << " trained:\n"
                                                     << *log;
    if (r.exit_code() != 1) continue;
    ++failed;
    EXPECT_TRUE(log->find("gangway-trainer: ") != std::string::npos &&
                (log->find("cuInit: ") != std::string::npos ||
                 log->find("cuDeviceGetCount: ") != std::string::npos ||
                 log->find("cannot load ") != std::string::npos ||
                 log->find("no GPU visible") != std::string::npos))
        << "rank " << r.rank() << " log:\n"
        << *log;
  }
  EXPECT_GE(failed, 1) << "no rank exited 1";
  EXPECT_TRUE(WaitFor([&] { return cluster.JobProcesses(id).empty(); }, 5s))
      << cluster.JobProcesses(id).size() << " processes of the failed job left";
}

}  // namespace
}  // namespace gangway::itest
