// Topology-aware GPU choice within a node, on synthetic wirings built with
// MakeGpuTopology (the shipped hwloc topologies are exercised end to end in
// tests/unit/gpu/topology_placement_test.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"

namespace gangway::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::IsNull;
using ::testing::NotNull;

constexpr int64_t kGi = int64_t{1} << 30;

// n x n link counts: `pairs` linked with 12 links each.
std::vector<int32_t> Links(int n, std::vector<std::pair<int, int>> pairs) {
  std::vector<int32_t> links(n * n, 0);
  for (auto [a, b] : pairs) links[a * n + b] = links[b * n + a] = 12;
  return links;
}

std::vector<int32_t> AllToAll(int n) {
  std::vector<int32_t> links(n * n, 18);
  for (int i = 0; i < n; ++i) links[i * n + i] = 0;
  return links;
}

// The DGX-like box: 8 GPUs, 0-3 on NUMA 0, 4-7 on NUMA 1, NVLink pairs.
std::shared_ptr<const GpuTopology> PairBox() {
  const std::vector<int32_t> numa = {0, 0, 0, 0, 1, 1, 1, 1};
  return MakeGpuTopology(numa, Links(8, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}));
}

NodeView Node(int32_t gpus, std::shared_ptr<const GpuTopology> topology, uint64_t busy = 0) {
  NodeView node;
  node.name = "n";
  node.total_milli_cpus = node.free_milli_cpus = 128'000;
  node.total_memory_bytes = node.free_memory_bytes = 1024 * kGi;
  node.total_gpus = gpus;
  node.free_gpu_mask = (gpus == 64 ? ~uint64_t{0} : (uint64_t{1} << gpus) - 1) & ~busy;
  node.gpu_topology = std::move(topology);
  return node;
}

PendingJob Job(int32_t gpus, int32_t procs = 1, int32_t replicas = 1) {
  PendingJob job;
  job.id = "j";
  job.replicas = replicas;
  job.procs_per_node = procs;
  job.milli_cpus = 1000;
  job.memory_bytes = kGi;
  job.gpus = gpus;
  return job;
}

uint64_t Mask(int a, int b) { return (uint64_t{1} << a) | (uint64_t{1} << b); }

// GPU indices of each replica of the one job in `jobs` that is placed in turn
// (each job sees what earlier ones took).
std::vector<std::vector<int32_t>> PlaceAll(std::vector<NodeView> nodes,
                                           const std::vector<PendingJob>& jobs,
                                           PlacementOptions options = {}) {
  ClusterSnapshot cluster;
  cluster.nodes = std::move(nodes);
  for (size_t i = 0; i < jobs.size(); ++i) {
    const_cast<PendingJob&>(jobs[i]).seq = static_cast<int64_t>(i);
  }
  PlacementResult result = Place(cluster, jobs, options);
  std::vector<std::vector<int32_t>> out;
  for (const JobDecision& d : result.decisions) {
    EXPECT_EQ(d.verdict, Verdict::kPlaced) << d.reason;
    for (const ReplicaPlacement& r : d.replicas) out.push_back(r.gpu_indices);
  }
  return out;
}

std::vector<int32_t> PlaceOne(NodeView node, PendingJob job, PlacementOptions options = {}) {
  auto placed = PlaceAll({std::move(node)}, {std::move(job)}, options);
  return placed.empty() ? std::vector<int32_t>{} : placed[0];
}

// ---- MakeGpuTopology ----

TEST(GpuTopologyTest, PeersAreSymmetricFromEitherDirection) {
  const std::vector<int32_t> numa = {0, 0, 0};
  std::vector<int32_t> links(9, 0);
  links[0 * 3 + 2] = 4;  // only 0 -> 2 reported
  auto t = MakeGpuTopology(numa, links);
  ASSERT_THAT(t, NotNull());
  EXPECT_THAT(t->peers, ElementsAre(0b100, 0, 0b001));
}

TEST(GpuTopologyTest, NumaGroupsInOrderOfTheirLowestGpuWithUnknownsTogether) {
  const std::vector<int32_t> numa = {3, -1, 3, 0, -7, 0};
  auto t = MakeGpuTopology(numa, {});
  ASSERT_THAT(t, NotNull());
  EXPECT_THAT(t->numa_groups, ElementsAre(0b000101, 0b010010, 0b101000));
  EXPECT_THAT(t->group_of, ElementsAre(0, 1, 0, 2, 1, 2));
  EXPECT_THAT(t->peers, ElementsAre(0, 0, 0, 0, 0, 0));
}

TEST(GpuTopologyTest, WrongSizedLinksMeanNoLinks) {
  const std::vector<int32_t> numa = {0, 0};
  const std::vector<int32_t> links = {0, 1, 1};
  EXPECT_THAT(MakeGpuTopology(numa, links)->peers, ElementsAre(0, 0));
}

TEST(GpuTopologyTest, MoreThanSixtyFourGpusIsNull) {
  EXPECT_THAT(MakeGpuTopology(std::vector<int32_t>(65, 0), {}), IsNull());
  EXPECT_THAT(MakeGpuTopology(std::vector<int32_t>(64, 0), {}), NotNull());
}

// ---- Choice on the NVLink-pair box ----

TEST(TopologyChoiceTest, TwoGpusGetALinkedPair) {
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(2)), ElementsAre(0, 1));
}

TEST(TopologyChoiceTest, TwoGpusSkipABrokenPair) {
  // GPU 0 taken: 1-2 would be lowest, but only 2-3 is linked.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(2)), ElementsAre(2, 3));
  // Without topology scoring the old rule holds.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(2), {.topology_scoring = false}),
              ElementsAre(1, 2));
}

TEST(TopologyChoiceTest, TwoProcsOfOneGpuAlsoGetAPair) {
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(1, 2)), ElementsAre(2, 3));
}

TEST(TopologyChoiceTest, OneGpuFillsABrokenPairFirst) {
  // GPU 0 taken: GPU 1 is the one whose partner is gone.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(1)), ElementsAre(1));
  // GPU 2 taken as well: 1 or 3 strand nothing; the lower wins.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b101), Job(1)), ElementsAre(1));
}

TEST(TopologyChoiceTest, OneGpuJobsPackPairByPair) {
  const auto placed = PlaceAll({Node(8, PairBox())}, {Job(1), Job(1), Job(1), Job(1), Job(2)});
  EXPECT_THAT(placed, ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2), ElementsAre(3),
                                  ElementsAre(4, 5)));
}

TEST(TopologyChoiceTest, PairPrefersTheFullerNumaNode) {
  // NUMA 0 has only 2-3 free, NUMA 1 is empty: take 2-3 and keep NUMA 1
  // whole for a 4-GPU job.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b0011), Job(2)), ElementsAre(2, 3));
  // Even when the emptier node has lower free indices.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b00110000), Job(2)), ElementsAre(6, 7));
}

TEST(TopologyChoiceTest, FourGpusStayOnOneNumaNode) {
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(4)), ElementsAre(0, 1, 2, 3));
  // NUMA 0 cannot hold four any more: all on NUMA 1, not 1-4.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(4)), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(2, 2)), ElementsAre(4, 5, 6, 7));
}

TEST(TopologyChoiceTest, ThreeGpusTakeAPairAndOneMoreOnOneNumaNode) {
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(3)), ElementsAre(0, 1, 2));
  // NUMA 0 has 1, 2, 3 free: the broken pair's GPU goes with the whole pair.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), 0b1), Job(3)), ElementsAre(1, 2, 3));
}

TEST(TopologyChoiceTest, SpanningUsesFewestNumaNodesAndKeepsPairs) {
  // 6 GPUs: one NUMA node whole, a pair from the other.
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(6)), ElementsAre(0, 1, 2, 3, 4, 5));
  // 5 free of NUMA 0 is impossible (4 GPUs); with 0 and 5 busy: NUMA 1 has
  // 3 free (4, 6, 7), NUMA 0 has 3 free (1, 2, 3). 5 GPUs: one group whole,
  // a linked pair from the other.
  EXPECT_THAT(PlaceOne(Node(8, PairBox(), Mask(0, 5)), Job(5)), ElementsAre(1, 2, 3, 6, 7));
}

TEST(TopologyChoiceTest, EightGpusTakeAll) {
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(8)), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(1, 8)), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
}

TEST(TopologyChoiceTest, ReplicasOnOneNodeEachGetAPair) {
  const auto placed = PlaceAll({Node(8, PairBox(), 0b1)}, {Job(2, 1, 3)});
  EXPECT_THAT(placed, ElementsAre(ElementsAre(2, 3), ElementsAre(4, 5), ElementsAre(6, 7)));
}

// ---- Other wirings ----

TEST(TopologyChoiceTest, NvSwitchBoxIsAllLinkedSoNumaDecides) {
  const std::vector<int32_t> numa = {0, 0, 0, 0, 1, 1, 1, 1};
  auto t = MakeGpuTopology(numa, AllToAll(8));
  // GPU 0 busy: a 4-GPU job fits only NUMA 1 on one node.
  EXPECT_THAT(PlaceOne(Node(8, t, 0b1), Job(4)), ElementsAre(4, 5, 6, 7));
  // 2 GPUs: best fit into NUMA 0's three free, lowest first.
  EXPECT_THAT(PlaceOne(Node(8, t, 0b1), Job(2)), ElementsAre(1, 2));
  // 6 of 7 free GPUs: all linked, both NUMA nodes either way; lowest.
  EXPECT_THAT(PlaceOne(Node(8, t, 0b1), Job(6)), ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(TopologyChoiceTest, QuadMeshPrefersALinkedQuad) {
  // DGX-1-like: quads 0-3 and 4-7 fully linked inside; one NUMA node.
  std::vector<std::pair<int, int>> pairs;
  for (int base : {0, 4}) {
    for (int a = base; a < base + 4; ++a) {
      for (int b = a + 1; b < base + 4; ++b) pairs.push_back({a, b});
    }
  }
  pairs.push_back({0, 4});  // a cross link does not make 0,1,2,4 a quad
  auto t = MakeGpuTopology(std::vector<int32_t>(8, 0), Links(8, pairs));
  EXPECT_THAT(PlaceOne(Node(8, t, 0b1000), Job(4)), ElementsAre(4, 5, 6, 7));
  EXPECT_THAT(PlaceOne(Node(8, t, 0b1000), Job(3)), ElementsAre(0, 1, 2));
}

TEST(TopologyChoiceTest, PcieBoxFallsBackToNumaAndIndices) {
  auto t = MakeGpuTopology(std::vector<int32_t>{0, 0}, {});
  EXPECT_THAT(PlaceOne(Node(2, t), Job(1)), ElementsAre(0));
  EXPECT_THAT(PlaceOne(Node(2, t), Job(2)), ElementsAre(0, 1));
  EXPECT_THAT(PlaceOne(Node(2, t, 0b1), Job(1)), ElementsAre(1));
}

// ---- PCIe switches (no NVLink) ----

// A PCIe server: 8 GPUs, two NUMA nodes, two switches of two GPUs on each.
std::shared_ptr<const GpuTopology> SwitchBox() {
  return MakeGpuTopology(std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 1}, {},
                         std::vector<int32_t>{10, 10, 11, 11, 20, 20, 21, 21});
}

TEST(GpuTopologyTest, SwitchGroupsInOrderOfTheirLowestGpuWithUnknownsTogether) {
  auto t = MakeGpuTopology(std::vector<int32_t>(5, 0), {}, std::vector<int32_t>{7, -1, 3, 7, -1});
  ASSERT_THAT(t, NotNull());
  EXPECT_THAT(t->switch_groups, ElementsAre(0b01001, 0b10010, 0b00100));
  EXPECT_THAT(t->switch_of, ElementsAre(0, 1, 2, 0, 1));
  // Not given, or of the wrong size: one unknown switch.
  EXPECT_THAT(MakeGpuTopology(std::vector<int32_t>(3, 0), {})->switch_groups, ElementsAre(0b111));
  EXPECT_THAT(MakeGpuTopology(std::vector<int32_t>(3, 0), {}, std::vector<int32_t>{1})->switch_of,
              ElementsAre(0, 0, 0));
}

TEST(TopologyChoiceTest, TwoGpusStayBelowOneSwitch) {
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox()), Job(2)), ElementsAre(0, 1));
  // GPU 0 taken: 1-2 would be lowest and on one NUMA node, but crosses the
  // CPU; 2-3 share a switch.
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b1), Job(2)), ElementsAre(2, 3));
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b1), Job(1, 2)), ElementsAre(2, 3));
  // GPUs 0 and 3 taken: no free pair on NUMA 0 shares a switch; NUMA 1 has.
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b1001), Job(2)), ElementsAre(4, 5));
}

TEST(TopologyChoiceTest, OneGpuFillsABrokenSwitchFirst) {
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b1), Job(1)), ElementsAre(1));
  // GPU 2 taken: 3 is alone below its switch; 0 would break the free pair.
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b0100), Job(1)), ElementsAre(3));
  // One-GPU jobs in turn pack switch by switch.
  EXPECT_THAT(PlaceAll({Node(8, SwitchBox(), 0b0100)}, {Job(1), Job(1), Job(1)}),
              ElementsAre(ElementsAre(3), ElementsAre(0), ElementsAre(1)));
}

TEST(TopologyChoiceTest, FourGpusTakeWholeSwitchesOnOneNumaNode) {
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox()), Job(4)), ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b1), Job(4)), ElementsAre(4, 5, 6, 7));
  // Three on NUMA 0 after GPU 0 went: the pair below one switch, plus one.
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b1), Job(3)), ElementsAre(1, 2, 3));
  EXPECT_THAT(PlaceOne(Node(8, SwitchBox(), 0b10000001), Job(3)), ElementsAre(1, 2, 3));
}

TEST(TopologyChoiceTest, SpillsIntoTheSwitchThatFitsTheRest) {
  // One NUMA node; switches of 4 (0-3), 2 (4-5) and 1 (6) free GPUs. Five
  // GPUs: the whole large switch, then the single one, so the free pair
  // below switch 4-5 stays whole.
  auto t =
      MakeGpuTopology(std::vector<int32_t>(7, 0), {}, std::vector<int32_t>{1, 1, 1, 1, 2, 2, 3});
  EXPECT_THAT(PlaceOne(Node(7, t), Job(5)), ElementsAre(0, 1, 2, 3, 6));
}

TEST(TopologyChoiceTest, NvlinkStillBeatsASharedSwitch) {
  // Switches pair 0-1 and 2-3, but NVLink pairs 1-2 and 0-3.
  auto t = MakeGpuTopology(std::vector<int32_t>(4, 0), Links(4, {{1, 2}, {0, 3}}),
                           std::vector<int32_t>{1, 1, 2, 2});
  EXPECT_THAT(PlaceOne(Node(4, t), Job(2)), ElementsAre(0, 3));
  EXPECT_THAT(PlaceOne(Node(4, t, 0b1), Job(2)), ElementsAre(1, 2));
}

TEST(TopologyChoiceTest, UnknownNumaIsOneGroup) {
  auto t = MakeGpuTopology(std::vector<int32_t>(4, -1), Links(4, {{1, 2}}));
  EXPECT_THAT(PlaceOne(Node(4, t), Job(2)), ElementsAre(1, 2));
}

TEST(TopologyChoiceTest, TopologyOfTheWrongSizeIsIgnored) {
  // A stale 8-GPU wiring on a node that now reports 4 GPUs.
  EXPECT_THAT(PlaceOne(Node(4, PairBox(), 0b1), Job(2)), ElementsAre(1, 2));
}

TEST(TopologyChoiceTest, ZeroGpuJobsGetNoGpus) {
  EXPECT_THAT(PlaceOne(Node(8, PairBox()), Job(0)), IsEmpty());
}

TEST(TopologyChoiceTest, SixtyFourGpusAllLinkedStaysFastAndCorrect) {
  // The worst case for the fully-linked search: every subset qualifies.
  auto t = MakeGpuTopology(std::vector<int32_t>(64, 0), AllToAll(64));
  NodeView node = Node(64, t, 0b1);
  const auto gpus = PlaceOne(node, Job(32));
  ASSERT_EQ(gpus.size(), 32u);
  EXPECT_EQ(gpus.front(), 1);
  EXPECT_EQ(gpus.back(), 32);
}

// Random wirings and free masks: every choice has the right size, uses only
// free GPUs, and is never worse than the lowest free indices on the
// preferences (a fully linked set when the lowest one is; no more NUMA
// nodes than the lowest one when neither is fully linked, and one PCIe
// switch when the lowest one is on one).
TEST(TopologyChoicePropertyTest, NeverWorseThanLowestIndicesOnRandomWirings) {
  std::mt19937 rng(7);
  for (int round = 0; round < 3000; ++round) {
    const int n = 1 + static_cast<int>(rng() % 16);
    std::vector<int32_t> numa(n);
    const int groups = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < n; ++i) numa[i] = static_cast<int32_t>(i * groups / n);
    std::vector<int32_t> links(n * n, 0);
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < n; ++j) {
        if (rng() % 3 == 0) links[i * n + j] = links[j * n + i] = 1;
      }
    }
    // PCIe switches inside the NUMA nodes: each node's GPUs split in two at
    // a random point (one switch when the split is at an end).
    std::vector<int32_t> pci_switch(n);
    const int split = static_cast<int>(rng() % (n + 1));
    for (int i = 0; i < n; ++i) pci_switch[i] = numa[i] * 2 + (i >= split ? 1 : 0);
    auto t = MakeGpuTopology(numa, links, pci_switch);
    const uint64_t busy = rng() & ((uint64_t{1} << n) - 1);
    const int free = n - std::popcount(busy);
    if (free == 0) continue;
    const int k = 1 + static_cast<int>(rng() % free);
    const auto chosen = PlaceOne(Node(n, t, busy), Job(k));
    ASSERT_EQ(static_cast<int>(chosen.size()), k);
    uint64_t set = 0;
    for (int32_t g : chosen) {
      ASSERT_FALSE(busy >> g & 1) << "GPU " << g << " is busy";
      set |= uint64_t{1} << g;
    }
    ASSERT_EQ(std::popcount(set), k) << "duplicate GPU";
    const auto lowest = PlaceOne(Node(n, t, busy), Job(k), {.topology_scoring = false});
    auto clique = [&](const std::vector<int32_t>& gpus) {
      for (int32_t a : gpus) {
        for (int32_t b : gpus) {
          if (a != b && links[a * n + b] == 0) return false;
        }
      }
      return true;
    };
    auto spread = [&](const std::vector<int32_t>& gpus) {
      uint64_t nodes = 0;
      for (int32_t g : gpus) nodes |= uint64_t{1} << numa[g];
      return std::popcount(nodes);
    };
    auto switches = [&](const std::vector<int32_t>& gpus) {
      uint64_t used = 0;
      for (int32_t g : gpus) used |= uint64_t{1} << pci_switch[g];
      return std::popcount(used);
    };
    if (clique(lowest)) {
      EXPECT_TRUE(clique(chosen)) << "round " << round;
    } else if (!clique(chosen)) {
      EXPECT_LE(spread(chosen), spread(lowest)) << "round " << round;
      if (switches(lowest) == 1) {
        EXPECT_EQ(switches(chosen), 1) << "round " << round;
      }
    }
  }
}

}  // namespace
}  // namespace gangway::coordinator
