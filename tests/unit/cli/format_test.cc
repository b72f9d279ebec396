// What `gangway nodes -o wide` says about GPUs.
#include "cli/format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"

namespace gangway::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Node NodeWithOneGpu() {
  v1::Node node;
  node.set_name("dgx-0");
  v1::GpuInfo* gpu = node.mutable_inventory()->add_gpus();
  gpu->set_index(0);
  gpu->set_model("NVIDIA H100 80GB HBM3");
  gpu->set_memory_bytes(int64_t{80} << 30);
  gpu->set_numa_node(0);
  gpu->set_cpu_set("0-3,8-11");
  gpu->set_pci_bus_id("00000000:07:00.0");
  return node;
}

TEST(GpuRowTest, UnknownsAndNonesAreDashes) {
  v1::Node node = NodeWithOneGpu();
  v1::GpuInfo gpu = node.inventory().gpus(0);
  gpu.set_numa_node(-1);
  gpu.set_cpu_set("");
  gpu.set_memory_bytes(0);
  EXPECT_THAT(GpuRow(node, gpu), ElementsAre("dgx-0", "0", "NVIDIA H100 80GB HBM3", "-", "-", "-",
                                             "00000000:07:00.0", "-", "-", "-", "no"));
}

TEST(GpuRowTest, SwitchNvlinksAndPciePeersWithTheirRank) {
  v1::Node node = NodeWithOneGpu();
  node.add_allocated_gpus(0);
  v1::GpuInfo gpu = node.inventory().gpus(0);
  gpu.set_pci_switch("00000000:02:00.0");
  for (int links : {0, 12, 0, 0}) gpu.add_nvlinks(links);
  for (bool access : {false, true, true, false}) gpu.add_peer_access(access);
  for (int rank : {0, 0, 1, 0}) gpu.add_peer_performance_rank(rank);
  // GPU 1 is listed once, as an NVLink peer; 3 has no access.
  EXPECT_THAT(GpuRow(node, gpu),
              ElementsAre("dgx-0", "0", "NVIDIA H100 80GB HBM3", "80Gi", "0", "0-3,8-11",
                          "00000000:07:00.0", "00000000:02:00.0", "1x12", "2:r1", "yes"));
}

TEST(GpuRowTest, PeerAccessWithoutRanks) {
  v1::Node node = NodeWithOneGpu();
  v1::GpuInfo gpu = node.inventory().gpus(0);
  gpu.add_peer_access(false);
  gpu.add_peer_access(true);
  EXPECT_EQ(GpuRow(node, gpu)[9], "1");
}

TEST(MemoryUsageTest, MiForSmallNodesGiForLargeOnes) {
  constexpr int64_t kMi = int64_t{1} << 20, kGi = int64_t{1} << 30;
  EXPECT_EQ(MemoryUsage(512 * kMi, 4 * kGi), "512/4096Mi");
  EXPECT_EQ(MemoryUsage(0, 1024 * kGi), "0/1024Gi");
  EXPECT_EQ(MemoryUsage(12 * kGi + 512 * kMi, 755 * kGi + 300 * kMi), "12.5/755.3Gi");
}

TEST(NodesTableTest, WideAddsAGpuTableOnlyWhenThereAreGpus) {
  const v1::Node node = NodeWithOneGpu();
  EXPECT_THAT(NodesTable({node}, false), Not(HasSubstr("NVLINK")));
  const std::string wide = NodesTable({node}, true);
  EXPECT_THAT(wide, HasSubstr("NODE "));
  EXPECT_THAT(wide, HasSubstr("00000000:07:00.0"));
  v1::Node cpu_only;
  cpu_only.set_name("cpu-0");
  EXPECT_THAT(NodesTable({cpu_only}, true), Not(HasSubstr("NVLINK")));
}

TEST(NodesTableTest, WideShowsEachAgentsVersionAndDrainingNodesSayTheyAre) {
  v1::Node node;
  node.set_name("n1");
  node.set_state(v1::NODE_STATE_READY);
  node.set_agent_version("gangway-agent 0.1.0 (commit abc, Release)");
  v1::Node old = node;
  old.set_name("n2");
  old.set_agent_version("");  // an agent from before versions were reported
  old.set_draining(true);
  EXPECT_THAT(NodesTable({node}, false), Not(HasSubstr("VERSION")));
  const std::string wide = NodesTable({node, old}, true);
  const std::vector<std::string> lines = absl::StrSplit(wide, '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("VERSION"));
  EXPECT_THAT(lines[1], HasSubstr("gangway-agent 0.1.0 (commit abc, Release)"));
  EXPECT_THAT(lines[2], HasSubstr("Ready,Draining"));
  EXPECT_THAT(lines[2], testing::EndsWith("-"));
}

}  // namespace
}  // namespace gangway::cli
