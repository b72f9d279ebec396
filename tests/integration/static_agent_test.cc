// gangway-agent-static (-DGANGWAY_STATIC_AGENT=ON): it needs no shared
// library beyond glibc's, and it starts, registers with a coordinator and
// runs a job. Skipped when the build does not make it.
#include <filesystem>
#include <set>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

std::string StaticAgent() { return BinaryPath("gangway-agent-static"); }

class StaticAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(StaticAgent())) {
      GTEST_SKIP() << "no " << StaticAgent() << " (configure with -DGANGWAY_STATIC_AGENT=ON)";
    }
  }
};

TEST_F(StaticAgentTest, NeedsNoSharedLibraryBeyondGlibc) {
  TempDir dir;
  RunResult r = RunCommand(dir, {"/usr/bin/readelf", "-d", StaticAgent()});
  ASSERT_EQ(r.code, 0) << r.err;
  // glibc's own, which stays shared so that dlopen (libcuda, NVML, NCCL)
  // and NSS work.
  const std::set<std::string> glibc = {"libc.so.6",       "libm.so.6",  "libdl.so.2",
                                       "libpthread.so.0", "librt.so.1", "ld-linux-x86-64.so.2"};
  std::vector<std::string> needed;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    const size_t open = line.find("Shared library: [");
    if (open == absl::string_view::npos) continue;
    const size_t start = open + 17;
    needed.emplace_back(line.substr(start, line.find(']', start) - start));
  }
  EXPECT_FALSE(needed.empty()) << "a fully static binary could not dlopen the GPU driver";
  for (const std::string& lib : needed) EXPECT_TRUE(glibc.count(lib)) << lib << " is not glibc's";
}

TEST_F(StaticAgentTest, StartsRegistersAndRunsAJob) {
  ClusterOptions options;
  options.agents = 0;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.StartCoordinator());
  const std::string state = cluster.dir().Sub("static-node");
  std::unique_ptr<Process> agent =
      Process::Spawn({StaticAgent(), "--coordinator", cluster.address(), "--name", "static-node",
                      "--address", "127.0.0.1", "--state", state, "--cpus", "1", "--memory", "1Gi"},
                     cluster.dir().Sub("static.out"), cluster.dir().Sub("static.log"));
  ASSERT_TRUE(agent);
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 1; }, 20s)) << agent->Stderr();
  RunResult version = RunCommand(cluster.dir(), {StaticAgent(), "--version"});
  std::optional<v1::Node> node = cluster.GetNode("static-node");
  ASSERT_TRUE(node);
  EXPECT_EQ(node->agent_version() + "\n", version.out);

  const std::string id = cluster.Submit(
      "name: s\nresources: {cpus: 1, memory: 64Mi}\ncommand: [sh, -c, 'echo static']\n");
  EXPECT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s));
  EXPECT_EQ(agent->Stop(10s), std::optional<int>(0));
}

}  // namespace
}  // namespace gangway::itest
