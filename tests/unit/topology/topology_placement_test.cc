// The scheduler's GPU choice on the shipped hwloc topologies, end to end:
// XML -> gpu::DetectInventory -> GpuTopologyFromInventory -> Place. This is
// the path a node registered with `gangway-agent --topology FILE.xml` takes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/gpu_topology.h"
#include "coordinator/scheduler.h"
#include "gpu/inventory.h"

namespace gangway {
namespace {

using coordinator::GpuTopology;
using coordinator::NodeView;
using coordinator::PendingJob;
using coordinator::Verdict;
using ::testing::ElementsAre;
using ::testing::NotNull;

constexpr int64_t kGi = int64_t{1} << 30;

v1::NodeInventory Inventory(const std::string& name) {
  gpu::InventoryOptions options;
  options.topology_xml = std::string(GANGWAY_SOURCE_DIR) + "/tests/data/topologies/" + name;
  auto inventory = gpu::DetectInventory(options);
  EXPECT_TRUE(inventory.ok()) << inventory.status();
  return inventory.ok() ? *inventory : v1::NodeInventory();
}

// What the core builds for a registered node, with `busy` GPUs taken.
NodeView View(const v1::NodeInventory& inv, uint64_t busy = 0) {
  NodeView node;
  node.name = "n";
  node.total_milli_cpus = node.free_milli_cpus = inv.milli_cpus();
  node.total_memory_bytes = node.free_memory_bytes = inv.memory_bytes();
  node.total_gpus = inv.gpus_size();
  node.free_gpu_mask = ((uint64_t{1} << inv.gpus_size()) - 1) & ~busy;
  node.gpu_topology = coordinator::GpuTopologyFromInventory(inv);
  return node;
}

std::vector<int32_t> GpusFor(const NodeView& node, int32_t gpus, int32_t procs = 1) {
  coordinator::ClusterSnapshot cluster;
  cluster.nodes.push_back(node);
  PendingJob job;
  job.id = "j";
  job.procs_per_node = procs;
  job.milli_cpus = 1000;
  job.memory_bytes = kGi;
  job.gpus = gpus;
  auto result = coordinator::Place(cluster, std::vector<PendingJob>{job});
  const auto& decision = result.decisions.at(0);
  EXPECT_EQ(decision.verdict, Verdict::kPlaced) << decision.reason;
  return decision.replicas.empty() ? std::vector<int32_t>{} : decision.replicas[0].gpu_indices;
}

TEST(TopologyPlacementTest, DgxLikeInventoryBecomesPairsOnTwoNumaNodes) {
  auto topology = coordinator::GpuTopologyFromInventory(Inventory("dgx_like.xml"));
  ASSERT_THAT(topology, NotNull());
  EXPECT_THAT(topology->numa_groups, ElementsAre(0x0f, 0xf0));
  EXPECT_THAT(topology->peers,
              ElementsAre(0b10, 0b01, 0b1000, 0b0100, 0b100000, 0b010000, 0b10000000, 0b01000000));
}

TEST(TopologyPlacementTest, DgxLikeTwoGpusGetALinkedPair) {
  const NodeView node = View(Inventory("dgx_like.xml"));
  EXPECT_THAT(GpusFor(node, 2), ElementsAre(0, 1));
}

TEST(TopologyPlacementTest, DgxLikeTwoGpusSkipTheBrokenPair) {
  const NodeView node = View(Inventory("dgx_like.xml"), /*busy=*/0b1);
  EXPECT_THAT(GpusFor(node, 2), ElementsAre(2, 3));  // not 1-2
  EXPECT_THAT(GpusFor(node, 1, 2), ElementsAre(2, 3));
}

TEST(TopologyPlacementTest, DgxLikeFourGpusStayOnOneNumaNode) {
  const v1::NodeInventory inv = Inventory("dgx_like.xml");
  EXPECT_THAT(GpusFor(View(inv), 4), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(GpusFor(View(inv, 0b1), 4), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(GpusFor(View(inv, 0b1), 2, 2), ElementsAre(4, 5, 6, 7));
  // And the ranks can be pinned near them.
  EXPECT_EQ(gpu::CpuSetForGpus(inv, std::vector<int>{4, 5, 6, 7}), "4-7,12-15");
}

TEST(TopologyPlacementTest, DgxLikeEightGpusTakeAll) {
  const NodeView node = View(Inventory("dgx_like.xml"));
  EXPECT_THAT(GpusFor(node, 8), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(GpusFor(node, 1, 8), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
}

TEST(TopologyPlacementTest, PcieBox) {
  const v1::NodeInventory inv = Inventory("pcie_box.xml");
  auto topology = coordinator::GpuTopologyFromInventory(inv);
  ASSERT_THAT(topology, NotNull());
  EXPECT_THAT(topology->peers, ElementsAre(0, 0));
  EXPECT_THAT(topology->numa_groups, ElementsAre(0b11));
  EXPECT_THAT(GpusFor(View(inv), 1), ElementsAre(0));
  EXPECT_THAT(GpusFor(View(inv), 2), ElementsAre(0, 1));
  EXPECT_THAT(GpusFor(View(inv, 0b1), 1), ElementsAre(1));
}

// An 8-GPU PCIe server (no NVLink): two NUMA nodes, two switches of two
// GPUs on each. Pairs stay below one switch, so their traffic does not
// cross the CPU.
TEST(TopologyPlacementTest, PcieSwitchServer) {
  const v1::NodeInventory inv = Inventory("pcie_switches.xml");
  auto topology = coordinator::GpuTopologyFromInventory(inv);
  ASSERT_THAT(topology, NotNull());
  EXPECT_THAT(topology->switch_groups, ElementsAre(0x03, 0x0c, 0x30, 0xc0));
  EXPECT_THAT(topology->numa_groups, ElementsAre(0x0f, 0xf0));
  EXPECT_THAT(GpusFor(View(inv), 2), ElementsAre(0, 1));
  EXPECT_THAT(GpusFor(View(inv, 0b1), 2), ElementsAre(2, 3));  // not 1-2
  EXPECT_THAT(GpusFor(View(inv, 0b1001), 2), ElementsAre(4, 5));
  EXPECT_THAT(GpusFor(View(inv, 0b0100), 1), ElementsAre(3));  // keeps 0-1 whole
  EXPECT_THAT(GpusFor(View(inv, 0b1), 4), ElementsAre(4, 5, 6, 7));
  EXPECT_EQ(gpu::CpuSetForGpus(inv, std::vector<int>{2, 3}), "0-7");
}

}  // namespace
}  // namespace gangway
