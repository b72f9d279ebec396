#include "coordinator/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace gangway::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr int64_t kGi = int64_t{1} << 30;

uint64_t AllGpus(int32_t n) { return n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

// An empty, ready node.
NodeView Node(int64_t milli_cpus, int64_t memory_bytes, int32_t gpus) {
  NodeView node;
  node.name = "n";
  node.total_milli_cpus = node.free_milli_cpus = milli_cpus;
  node.total_memory_bytes = node.free_memory_bytes = memory_bytes;
  node.total_gpus = gpus;
  node.free_gpu_mask = AllGpus(gpus);
  return node;
}

// The same node with nothing free.
NodeView Busy(NodeView node) {
  node.free_milli_cpus = 0;
  node.free_memory_bytes = 0;
  node.free_gpu_mask = 0;
  return node;
}

NodeView NotReady(NodeView node) {
  node.ready = false;
  return node;
}

PendingJob Job(std::string id, int32_t replicas, int32_t procs, int64_t milli_cpus,
               int64_t memory_bytes, int32_t gpus) {
  PendingJob job;
  job.id = std::move(id);
  job.replicas = replicas;
  job.procs_per_node = procs;
  job.milli_cpus = milli_cpus;
  job.memory_bytes = memory_bytes;
  job.gpus = gpus;
  return job;
}

PendingJob WithOrder(PendingJob job, int32_t priority, int64_t seq) {
  job.priority = priority;
  job.seq = seq;
  return job;
}

PlacementResult PlaceOn(std::vector<NodeView> nodes, const std::vector<PendingJob>& jobs) {
  ClusterSnapshot cluster;
  cluster.nodes = std::move(nodes);
  return Place(cluster, jobs);
}

std::vector<int32_t> NodesOf(const JobDecision& d) {
  std::vector<int32_t> out;
  for (const auto& r : d.replicas) out.push_back(r.node_index);
  return out;
}

// ---- Empty cluster, readiness ----

TEST(SchedulerTest, EmptyInputGivesEmptyResult) {
  EXPECT_THAT(PlaceOn({Node(4000, kGi, 0)}, {}).decisions, IsEmpty());
}

TEST(SchedulerTest, NoNodesIsNoRoomNowBecauseNodesMayJoin) {
  auto result = PlaceOn({}, {Job("a", 1, 1, 1000, kGi, 8), Job("zero", 1, 1, 0, 0, 0)});
  ASSERT_EQ(result.decisions.size(), 2u);
  for (const auto& d : result.decisions) {
    EXPECT_EQ(d.verdict, Verdict::kNoRoomNow);
    EXPECT_EQ(d.reason, "no nodes registered");
    EXPECT_THAT(d.replicas, IsEmpty());
  }
}

TEST(SchedulerTest, NotReadyNodesAreSkipped) {
  auto result = PlaceOn({NotReady(Node(64000, 64 * kGi, 8)), Node(4000, 4 * kGi, 1),
                         NotReady(Node(64000, 64 * kGi, 8))},
                        {Job("a", 1, 1, 1000, kGi, 1)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(1));
}

TEST(SchedulerTest, OnlyNotReadyNodesIsNoRoomNowNotNeverFits) {
  auto result = PlaceOn({NotReady(Node(8000, 8 * kGi, 8)), NotReady(Node(8000, 8 * kGi, 8))},
                        {Job("a", 1, 1, 1000, kGi, 8), Job("zero", 1, 1, 0, 0, 0)});
  for (const auto& d : result.decisions) {
    EXPECT_EQ(d.verdict, Verdict::kNoRoomNow);
    EXPECT_THAT(d.reason, HasSubstr("none of the 2 registered nodes is ready"));
  }
}

TEST(SchedulerTest, CapacityOnlyOnNotReadyNodeIsNoRoomNow) {
  // The big node counts for "never fits" (it may come back), not for "now".
  auto result = PlaceOn({NotReady(Node(8000, 8 * kGi, 8)), Node(1000, kGi, 0)},
                        {Job("a", 1, 1, 1000, kGi, 8)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[0].reason,
            "waiting for 1 replica of {cpus: 1, memory: 1Gi, gpus: 8}; 0 fit now "
            "(most free on one ready node: gpus 0)");
}

// ---- Fit and GPU indices ----

TEST(SchedulerTest, SingleReplicaGetsLowestFreeGpuIndices) {
  NodeView node = Node(8000, 8 * kGi, 8);
  node.free_gpu_mask = 0b10110110;  // 1, 2, 4, 5, 7 free
  auto result = PlaceOn({node}, {Job("a", 1, 1, 1000, kGi, 3)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  ASSERT_EQ(result.decisions[0].replicas.size(), 1u);
  EXPECT_EQ(result.decisions[0].replicas[0].node_index, 0);
  EXPECT_THAT(result.decisions[0].replicas[0].gpu_indices, ElementsAre(1, 2, 4));
}

TEST(SchedulerTest, GpuIndicesCoverEveryLocalRankInOrder) {
  // procsPerNode 2 x gpus 2: local rank 0 owns [0, 2), local rank 1 [2, 4).
  NodeView node = Node(8000, 8 * kGi, 8);
  node.free_gpu_mask = 0b11101010;  // 1, 3, 5, 6, 7
  auto result = PlaceOn({node}, {Job("a", 1, 2, 1000, kGi, 2)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_THAT(result.decisions[0].replicas[0].gpu_indices, ElementsAre(1, 3, 5, 6));
}

TEST(SchedulerTest, JobsInOneCallGetDisjointGpus) {
  auto result = PlaceOn(
      {Node(8000, 8 * kGi, 8)},
      {Job("a", 1, 1, 1000, kGi, 3), Job("b", 1, 1, 1000, kGi, 3), Job("c", 1, 1, 1000, kGi, 3)});
  EXPECT_THAT(result.decisions[0].replicas[0].gpu_indices, ElementsAre(0, 1, 2));
  EXPECT_THAT(result.decisions[1].replicas[0].gpu_indices, ElementsAre(3, 4, 5));
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerTest, ReplicasSharingANodeGetDisjointGpus) {
  auto result = PlaceOn({Node(8000, 8 * kGi, 8)}, {Job("a", 4, 1, 1000, kGi, 2)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  const auto& replicas = result.decisions[0].replicas;
  ASSERT_EQ(replicas.size(), 4u);
  EXPECT_THAT(replicas[0].gpu_indices, ElementsAre(0, 1));
  EXPECT_THAT(replicas[1].gpu_indices, ElementsAre(2, 3));
  EXPECT_THAT(replicas[2].gpu_indices, ElementsAre(4, 5));
  EXPECT_THAT(replicas[3].gpu_indices, ElementsAre(6, 7));
}

TEST(SchedulerTest, MaskBitsBeyondTotalGpusAreNotGpus) {
  NodeView node = Node(8000, 8 * kGi, 2);
  node.free_gpu_mask = 0xff;  // only 0 and 1 exist
  auto result = PlaceOn({node}, {Job("a", 1, 1, 0, 0, 2), Job("b", 1, 1, 0, 0, 1)});
  EXPECT_THAT(result.decisions[0].replicas[0].gpu_indices, ElementsAre(0, 1));
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerTest, SixtyFourGpuNode) {
  auto result = PlaceOn({Node(8000, 8 * kGi, 64)}, {Job("a", 1, 64, 0, 0, 1)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  const auto& gpus = result.decisions[0].replicas[0].gpu_indices;
  ASSERT_EQ(gpus.size(), 64u);
  EXPECT_EQ(gpus.front(), 0);
  EXPECT_EQ(gpus.back(), 63);
}

TEST(SchedulerTest, EachResourceMustFit) {
  const NodeView node = Node(4000, 4 * kGi, 2);
  auto result =
      PlaceOn({Busy(node), node}, {Job("cpu", 1, 1, 5000, 0, 0), Job("mem", 1, 1, 0, 5 * kGi, 0),
                                   Job("gpu", 1, 1, 0, 0, 3), Job("ok", 1, 1, 4000, 4 * kGi, 2)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNeverFits);
  ASSERT_EQ(result.decisions[3].verdict, Verdict::kPlaced);
  EXPECT_THAT(NodesOf(result.decisions[3]), ElementsAre(1));
}

// ---- Zero-resource jobs ----

TEST(SchedulerTest, ZeroResourceJobFitsOnAFullNode) {
  auto result = PlaceOn({Busy(Node(4000, kGi, 8))}, {Job("a", 1, 1, 0, 0, 0)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(0));
  EXPECT_THAT(result.decisions[0].replicas[0].gpu_indices, IsEmpty());
}

TEST(SchedulerTest, ZeroResourceReplicasAllPackOntoOneNode) {
  auto result = PlaceOn({Node(4000, kGi, 0), Node(4000, kGi, 0), Node(4000, kGi, 0)},
                        {Job("a", 5, 3, 0, 0, 0)});
  ASSERT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(0, 0, 0, 0, 0));
}

TEST(SchedulerTest, ZeroResourceJobConsumesNothing) {
  auto result =
      PlaceOn({Node(1000, kGi, 1)}, {Job("zero", 3, 1, 0, 0, 0), Job("whole", 1, 1, 1000, kGi, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
}

// ---- Gang ----

TEST(SchedulerTest, GangIsAllOrNothing) {
  // Room for 3 of 4 replicas now: nothing is placed, and the room stays free
  // for the job behind it.
  auto result =
      PlaceOn({Node(8000, 8 * kGi, 2), Node(8000, 8 * kGi, 1), Busy(Node(8000, 8 * kGi, 1))},
              {WithOrder(Job("gang", 4, 1, 1000, kGi, 1), 1, 0),
               WithOrder(Job("next", 3, 1, 1000, kGi, 1), 0, 1)});
  const JobDecision& gang = result.decisions[0];
  EXPECT_EQ(gang.verdict, Verdict::kNoRoomNow);
  EXPECT_THAT(gang.replicas, IsEmpty());
  EXPECT_EQ(gang.reason, "waiting for 4 replicas of {cpus: 1, memory: 1Gi, gpus: 1}; 3 fit now");
  ASSERT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
  EXPECT_THAT(NodesOf(result.decisions[1]), ElementsAre(0, 0, 1));
}

TEST(SchedulerTest, MultiProcessReplicaMustFitOnOneNode) {
  // 4 GPUs free in total, but a replica needs 4 on one node.
  NodeView half = Node(8000, 8 * kGi, 4);
  half.free_gpu_mask = 0b0011;
  auto result = PlaceOn({half, half}, {Job("a", 1, 4, 1000, kGi, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[0].reason,
            "waiting for 1 replica of {cpus: 4, memory: 4Gi, gpus: 4}; 0 fit now "
            "(most free on one ready node: gpus 2)");
}

TEST(SchedulerTest, NoRoomNowReasonFromTheBrief) {
  const NodeView node = Node(4000, 2 * kGi, 1);
  NodeView gpu_taken = node;
  gpu_taken.free_gpu_mask = 0;
  auto result = PlaceOn({node, gpu_taken}, {Job("a", 2, 1, 2000, kGi, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[0].reason,
            "waiting for 2 replicas of {cpus: 2, memory: 1Gi, gpus: 1}; 1 fits now");
}

TEST(SchedulerTest, NoRoomNowReasonCountsWhatEarlierJobsInTheCallTook) {
  auto result = PlaceOn(
      {Node(8000, 8 * kGi, 8), Node(8000, 8 * kGi, 8)},
      {Job("a", 1, 6, 1000, kGi, 1), Job("b", 1, 7, 1000, kGi, 1), Job("c", 1, 1, 1000, kGi, 3)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[2].reason,
            "waiting for 1 replica of {cpus: 1, memory: 1Gi, gpus: 3}; 0 fit now "
            "(most free on one ready node: gpus 2)");
}

TEST(SchedulerTest, NoRoomNowWhenResourcesAreFreeOnlyOnDifferentNodes) {
  NodeView cpus_only = Node(8000, 8 * kGi, 2);
  cpus_only.free_gpu_mask = 0;
  NodeView gpus_only = Node(8000, 8 * kGi, 2);
  gpus_only.free_milli_cpus = 0;
  auto result = PlaceOn({cpus_only, gpus_only}, {Job("a", 1, 1, 1500, 512 << 20, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[0].reason,
            "waiting for 1 replica of {cpus: 1.5, memory: 512Mi, gpus: 1}; 0 fit now "
            "(no ready node has all of it free at once)");
}

// ---- Never fits ----

TEST(SchedulerTest, NeverFitsNamesGpus) {
  auto result = PlaceOn({Node(64000, 512 * kGi, 8), NotReady(Node(64000, 512 * kGi, 4))},
                        {Job("a", 1, 2, 1000, kGi, 8)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[0].reason,
            "a replica needs 16 GPUs (procsPerNode 2 x gpus 8) but the largest node has 8");
}

TEST(SchedulerTest, NeverFitsNamesCpusAndMemory) {
  auto result = PlaceOn({Node(48000, 256 * kGi, 8)},
                        {Job("cpu", 1, 2, 32000, kGi, 0), Job("mem", 1, 2, 1000, 256 * kGi, 0),
                         Job("both", 1, 4, 16000, 128 * kGi, 4)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[0].reason,
            "a replica needs 64 cpus (procsPerNode 2 x cpus 32) but the largest node has 48");
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[1].reason,
            "a replica needs 512Gi memory (procsPerNode 2 x memory 256Gi) but the largest node "
            "has 256Gi");
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNeverFits);
  EXPECT_THAT(result.decisions[2].reason, HasSubstr("16 GPUs"));
  EXPECT_THAT(result.decisions[2].reason, HasSubstr("64 cpus"));
  EXPECT_THAT(result.decisions[2].reason, HasSubstr("512Gi memory"));
}

TEST(SchedulerTest, NeverFitsWhenNoSingleNodeHasEverything) {
  // The largest-cpu node and the largest-GPU node are different nodes.
  auto result =
      PlaceOn({Node(64000, 64 * kGi, 0), Node(8000, 64 * kGi, 8)}, {Job("a", 1, 1, 16000, kGi, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[0].reason,
            "a replica needs {cpus: 16, memory: 1Gi, gpus: 1} but no single node has all of it, "
            "even when empty");
}

TEST(SchedulerTest, NeverFitsWhenTheWholeClusterIsTooSmall) {
  auto result = PlaceOn({Node(64000, 64 * kGi, 8), NotReady(Node(64000, 64 * kGi, 8))},
                        {Job("a", 3, 8, 1000, kGi, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNeverFits);
  EXPECT_EQ(result.decisions[0].reason,
            "the job needs 3 replicas of {cpus: 8, memory: 8Gi, gpus: 8} but the whole cluster "
            "holds at most 2 even when empty");
}

TEST(SchedulerTest, BusyButLargeEnoughClusterIsNoRoomNow) {
  auto result = PlaceOn({Busy(Node(64000, 64 * kGi, 8)), NotReady(Node(64000, 64 * kGi, 8))},
                        {Job("a", 2, 8, 1000, kGi, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[0].reason,
            "waiting for 2 replicas of {cpus: 8, memory: 8Gi, gpus: 8}; 0 fit now "
            "(most free on one ready node: cpus 0, memory 0, gpus 0)");
}

TEST(SchedulerTest, InvalidJobsNeverFit) {
  PendingJob zero_replicas = Job("r", 0, 1, 0, 0, 0);
  PendingJob zero_procs = Job("p", 1, 0, 0, 0, 0);
  PendingJob negative_cpus = Job("c", 1, 1, -1, 0, 0);
  PendingJob negative_memory = Job("m", 1, 1, 0, -1, 0);
  PendingJob negative_gpus = Job("g", 1, 1, 0, 0, -1);
  PendingJob overflow = Job("o", 1, 1 << 30, int64_t{1} << 40, 0, 0);
  auto result = PlaceOn({Node(8000, 8 * kGi, 8)}, {zero_replicas, zero_procs, negative_cpus,
                                                   negative_memory, negative_gpus, overflow});
  for (const auto& d : result.decisions) {
    EXPECT_EQ(d.verdict, Verdict::kNeverFits);
    EXPECT_THAT(d.replicas, IsEmpty());
  }
  EXPECT_EQ(result.decisions[0].reason, "replicas must be at least 1, got 0");
  EXPECT_EQ(result.decisions[1].reason, "procsPerNode must be at least 1, got 0");
  EXPECT_THAT(result.decisions[2].reason, HasSubstr("cpus must not be negative"));
  EXPECT_THAT(result.decisions[3].reason, HasSubstr("memory must not be negative"));
  EXPECT_THAT(result.decisions[4].reason, HasSubstr("gpus must not be negative"));
  EXPECT_THAT(result.decisions[5].reason, HasSubstr("more than can be counted"));
}

TEST(SchedulerTest, HugeReplicaCountsDoNotOverflow) {
  auto result = PlaceOn({Node(int64_t{1} << 62, int64_t{1} << 62, 64)},
                        {Job("many", 2'000'000'000, 1, int64_t{1} << 40, 1, 0),
                         Job("fits", 4096, 1, int64_t{1} << 50, 1, 0)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNeverFits);
  EXPECT_THAT(result.decisions[0].reason, HasSubstr("holds at most 4194304"));
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
}

// ---- Packing ----

TEST(SchedulerTest, PacksOntoFewestNodes) {
  // Free GPUs per node: 1, 2, 4, 3. Replicas of 1 GPU each.
  std::vector<NodeView> nodes;
  for (uint64_t mask : {0b1ull, 0b11ull, 0b1111ull, 0b111ull}) {
    NodeView node = Node(64000, 64 * kGi, 4);
    node.free_gpu_mask = mask;
    nodes.push_back(node);
  }
  auto four = PlaceOn(nodes, {Job("a", 4, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(four.decisions[0]), ElementsAre(2, 2, 2, 2));
  // 5 = 4 + 1: the remainder goes to the snuggest node (1 free), not node 3.
  auto five = PlaceOn(nodes, {Job("a", 5, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(five.decisions[0]), ElementsAre(2, 2, 2, 2, 0));
  // 7 = 4 + 3.
  auto seven = PlaceOn(nodes, {Job("a", 7, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(seven.decisions[0]), ElementsAre(2, 2, 2, 2, 3, 3, 3));
  // 10 needs all four nodes.
  auto ten = PlaceOn(nodes, {Job("a", 10, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(ten.decisions[0]), ElementsAre(2, 2, 2, 2, 3, 3, 3, 1, 1, 0));
}

TEST(SchedulerTest, PackingPrefersAWholeNodeOverSpreading) {
  // Eight 1-GPU replicas: one empty 8-GPU node beats eight half-free ones.
  std::vector<NodeView> nodes;
  for (int i = 0; i < 8; ++i) {
    NodeView node = Node(64000, 64 * kGi, 8);
    node.free_gpu_mask = 0x0f;
    nodes.push_back(node);
  }
  nodes.push_back(Node(64000, 64 * kGi, 8));
  auto result = PlaceOn(nodes, {Job("a", 8, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(8, 8, 8, 8, 8, 8, 8, 8));
}

TEST(SchedulerTest, PackingIsLimitedByEveryResource) {
  // Node 0 has 8 GPUs but cpus for 2 replicas; node 1 cpus for 3.
  auto result =
      PlaceOn({Node(2000, 64 * kGi, 8), Node(3000, 64 * kGi, 4)}, {Job("a", 5, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(1, 1, 1, 0, 0));
}

TEST(SchedulerTest, BestFitPicksTheNodeLeftWithLeastFreeCapacity) {
  NodeView roomy = Node(16000, 16 * kGi, 4);
  NodeView snug = Node(16000, 16 * kGi, 4);
  snug.free_gpu_mask = 0b1100;
  auto result = PlaceOn({roomy, snug, roomy}, {Job("a", 1, 1, 1000, kGi, 2)});
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(1));
  EXPECT_THAT(result.decisions[0].replicas[0].gpu_indices, ElementsAre(2, 3));
}

TEST(SchedulerTest, BestFitComparesGpusThenCpusThenMemory) {
  // A CPU-only job goes to the node without free GPUs even though it has
  // more free cpus: it keeps the GPU node whole.
  NodeView gpu_node = Node(8000, 16 * kGi, 8);
  NodeView cpu_node = Node(32000, 16 * kGi, 0);
  auto by_gpus = PlaceOn({gpu_node, cpu_node}, {Job("a", 1, 1, 1000, kGi, 0)});
  EXPECT_THAT(NodesOf(by_gpus.decisions[0]), ElementsAre(1));
  // Same GPUs: fewer free cpus wins; same cpus: less free memory wins.
  auto by_cpus =
      PlaceOn({Node(16000, kGi, 0), Node(8000, 16 * kGi, 0)}, {Job("a", 1, 1, 1000, kGi, 0)});
  EXPECT_THAT(NodesOf(by_cpus.decisions[0]), ElementsAre(1));
  auto by_memory =
      PlaceOn({Node(8000, 16 * kGi, 0), Node(8000, 4 * kGi, 0)}, {Job("a", 1, 1, 1000, kGi, 0)});
  EXPECT_THAT(NodesOf(by_memory.decisions[0]), ElementsAre(1));
}

TEST(SchedulerTest, ExactTiesGoToTheLowerNodeIndex) {
  const NodeView node = Node(8000, 8 * kGi, 8);
  auto single = PlaceOn({node, node, node}, {Job("a", 1, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(single.decisions[0]), ElementsAre(0));
  auto gang = PlaceOn({node, node, node}, {Job("a", 12, 1, 1000, kGi, 1)});
  EXPECT_THAT(NodesOf(gang.decisions[0]), ElementsAre(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1));
}

// ---- Order and backfill ----

TEST(SchedulerTest, HigherPriorityGoesFirstWhateverTheInputOrder) {
  const NodeView node = Node(8000, 8 * kGi, 8);
  auto result = PlaceOn({node}, {WithOrder(Job("low", 1, 8, 0, 0, 1), -5, 0),
                                 WithOrder(Job("mid", 1, 8, 0, 0, 1), 0, 0),
                                 WithOrder(Job("high", 1, 8, 0, 0, 1), 7, 99)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kPlaced);
}

TEST(SchedulerTest, FifoWithinAPriority) {
  const NodeView node = Node(8000, 8 * kGi, 8);
  auto result = PlaceOn({node}, {WithOrder(Job("third", 1, 4, 0, 0, 1), 1, 30),
                                 WithOrder(Job("first", 1, 4, 0, 0, 1), 1, 10),
                                 WithOrder(Job("second", 1, 4, 0, 0, 1), 1, 20)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  ASSERT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
  ASSERT_EQ(result.decisions[2].verdict, Verdict::kPlaced);
  EXPECT_THAT(result.decisions[1].replicas[0].gpu_indices, ElementsAre(0, 1, 2, 3));
  EXPECT_THAT(result.decisions[2].replicas[0].gpu_indices, ElementsAre(4, 5, 6, 7));
}

TEST(SchedulerTest, EqualPriorityAndSeqFallBackToInputOrder) {
  const NodeView node = Node(8000, 8 * kGi, 8);
  auto result = PlaceOn({node}, {Job("a", 1, 8, 0, 0, 1), Job("b", 1, 8, 0, 0, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerTest, BackfillPlacesSmallerJobsBehindOneThatDoesNotFit) {
  NodeView node = Node(8000, 8 * kGi, 8);
  node.free_gpu_mask = 0x0f;
  auto result = PlaceOn(
      {node},
      {WithOrder(Job("big", 1, 8, 0, 0, 1), 9, 0), WithOrder(Job("small", 1, 2, 0, 0, 1), 0, 1),
       WithOrder(Job("small2", 2, 1, 0, 0, 1), 0, 2), WithOrder(Job("late", 1, 1, 0, 0, 1), 0, 3)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_THAT(result.decisions[0].reason,
              HasSubstr("0 fit now (most free on one ready node: gpus 4)"));
  ASSERT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
  ASSERT_EQ(result.decisions[2].verdict, Verdict::kPlaced);
  EXPECT_EQ(result.decisions[3].verdict, Verdict::kNoRoomNow);
  EXPECT_THAT(result.decisions[1].replicas[0].gpu_indices, ElementsAre(0, 1));
  EXPECT_THAT(result.decisions[2].replicas[1].gpu_indices, ElementsAre(3));
}

// ---- Holding capacity for a starving job (PendingJob::reserve) ----

PendingJob Reserving(PendingJob job) {
  job.reserve = true;
  return job;
}

NodeView Named(NodeView node, std::string name) {
  node.name = std::move(name);
  return node;
}

TEST(SchedulerReserveTest, HeldJobKeepsLaterJobsOffWhatItNeeds) {
  NodeView node = Named(Node(8000, 8 * kGi, 8), "gpu-a");
  node.free_gpu_mask = 0x0f;
  auto result = PlaceOn({node}, {WithOrder(Reserving(Job("big", 1, 8, 0, 0, 1)), 0, 0),
                                 WithOrder(Job("small", 1, 2, 0, 0, 1), 0, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_THAT(result.decisions[0].reason, HasSubstr("0 fit now"));
  EXPECT_THAT(result.decisions[0].reason, HasSubstr("holding gpu-a for it"));
  EXPECT_THAT(result.decisions[0].held_nodes, ElementsAre(0));
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kNoRoomNow);  // backfilled without the hold
}

TEST(SchedulerReserveTest, OnlyWhatItNeedsIsHeld) {
  // The held job needs 4 cpus and 8 GPUs; 6 cpus and 4 GPUs are free: CPU
  // jobs after it may take the 2 cpus it does not need, no more.
  NodeView node = Node(8000, 8 * kGi, 8);
  node.free_milli_cpus = 6000;
  node.free_gpu_mask = 0xf0;
  auto result = PlaceOn({node}, {WithOrder(Reserving(Job("big", 1, 8, 500, 0, 1)), 0, 0),
                                 WithOrder(Job("cpu", 1, 2, 1000, kGi, 0), 0, 1),
                                 WithOrder(Job("cpu2", 1, 1, 1000, kGi, 0), 0, 2)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerReserveTest, HoldsTheNodesClosestToFitting) {
  NodeView a = Named(Node(8000, 8 * kGi, 8), "a"), b = Named(Node(8000, 8 * kGi, 8), "b"),
           c = Named(Node(8000, 8 * kGi, 8), "c");
  a.free_gpu_mask = 0x03;  // 2 free
  b.free_gpu_mask = 0x3f;  // 6 free
  c.free_gpu_mask = 0x0f;  // 4 free
  auto result = PlaceOn({a, b, c}, {WithOrder(Reserving(Job("gang", 2, 8, 0, 0, 1)), 0, 0),
                                    WithOrder(Job("one", 1, 1, 0, 0, 1), 0, 1),
                                    WithOrder(Job("three", 1, 3, 0, 0, 1), 0, 2)});
  EXPECT_THAT(result.decisions[0].held_nodes, ElementsAre(1, 2));
  EXPECT_THAT(result.decisions[0].reason, HasSubstr("holding b, c for it"));
  EXPECT_THAT(NodesOf(result.decisions[1]), ElementsAre(0));  // on the node not held
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerReserveTest, JobsBeforeItInOrderAreNotHeldBack) {
  NodeView node = Node(8000, 8 * kGi, 8);
  node.free_gpu_mask = 0x0f;
  auto result = PlaceOn({node}, {WithOrder(Reserving(Job("big", 1, 8, 0, 0, 1)), 0, 5),
                                 WithOrder(Job("urgent", 1, 2, 0, 0, 1), 1, 9),
                                 WithOrder(Job("older", 1, 1, 0, 0, 1), 0, 1)});
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);  // higher priority
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kPlaced);  // submitted earlier
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_THAT(result.decisions[0].held_nodes, ElementsAre(0));
}

TEST(SchedulerReserveTest, NothingHeldWhenTheReadyNodesCannotHoldEveryReplica) {
  // Two replicas of a whole node, one of the two nodes not ready: the job
  // waits for the node, and holding the other would only idle it.
  NodeView a = Node(8000, 8 * kGi, 8);
  a.free_gpu_mask = 0x0f;
  auto result = PlaceOn({a, NotReady(Node(8000, 8 * kGi, 8))},
                        {WithOrder(Reserving(Job("gang", 2, 8, 0, 0, 1)), 0, 0),
                         WithOrder(Job("small", 1, 2, 0, 0, 1), 0, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kNoRoomNow);
  EXPECT_THAT(result.decisions[0].held_nodes, IsEmpty());
  EXPECT_THAT(result.decisions[0].reason, Not(HasSubstr("holding")));
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
}

TEST(SchedulerReserveTest, OnlyTheFirstStarvingJobsHold) {
  NodeView a = Named(Node(8000, 8 * kGi, 8), "a"), b = Named(Node(8000, 8 * kGi, 8), "b");
  a.free_gpu_mask = 0x0f;
  b.free_gpu_mask = 0x03;
  const std::vector<PendingJob> jobs = {WithOrder(Reserving(Job("first", 1, 8, 0, 0, 1)), 0, 0),
                                        WithOrder(Reserving(Job("second", 1, 8, 0, 0, 1)), 0, 1),
                                        WithOrder(Job("small", 1, 1, 0, 0, 1), 0, 2)};
  ClusterSnapshot cluster;
  cluster.nodes = {a, b};
  // By default the head of the queue holds; the second still backfills.
  PlacementResult result = Place(cluster, jobs);
  EXPECT_THAT(result.decisions[0].held_nodes, ElementsAre(0));
  EXPECT_THAT(result.decisions[1].held_nodes, IsEmpty());
  EXPECT_THAT(NodesOf(result.decisions[2]), ElementsAre(1));
  // Two may hold: they take different nodes, and nothing is left.
  result = Place(cluster, jobs, {.max_holding_jobs = 2});
  EXPECT_THAT(result.decisions[0].held_nodes, ElementsAre(0));
  EXPECT_THAT(result.decisions[1].held_nodes, ElementsAre(1));
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerReserveTest, AJobThatCannotHoldLeavesItsTurnToTheNext) {
  // "wide" needs two nodes but one is not ready: it holds nothing, and the
  // next starving job holds instead.
  NodeView a = Named(Node(8000, 8 * kGi, 8), "a");
  a.free_gpu_mask = 0x0f;
  auto result = PlaceOn({a, NotReady(Node(8000, 8 * kGi, 8))},
                        {WithOrder(Reserving(Job("wide", 2, 8, 0, 0, 1)), 0, 0),
                         WithOrder(Reserving(Job("whole", 1, 8, 0, 0, 1)), 0, 1),
                         WithOrder(Job("small", 1, 1, 0, 0, 1), 0, 2)});
  EXPECT_THAT(result.decisions[0].held_nodes, IsEmpty());
  EXPECT_THAT(result.decisions[1].held_nodes, ElementsAre(0));
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
}

TEST(SchedulerReserveTest, AJobThatFitsIsPlacedNotHeld) {
  auto result =
      PlaceOn({Node(8000, 8 * kGi, 8)}, {WithOrder(Reserving(Job("fits", 1, 4, 0, 0, 1)), 0, 0),
                                         WithOrder(Job("small", 1, 4, 0, 0, 1), 0, 1)});
  EXPECT_EQ(result.decisions[0].verdict, Verdict::kPlaced);
  EXPECT_THAT(result.decisions[0].held_nodes, IsEmpty());
  EXPECT_EQ(result.decisions[1].verdict, Verdict::kPlaced);
}

TEST(SchedulerTest, NoDoubleBookingAcrossJobs) {
  auto result = PlaceOn(
      {Node(4000, 4 * kGi, 0), Node(4000, 4 * kGi, 0)},
      {Job("a", 1, 1, 3000, kGi, 0), Job("b", 1, 1, 3000, kGi, 0), Job("c", 1, 1, 3000, kGi, 0),
       Job("d", 2, 1, 1000, 3 * kGi, 0), Job("e", 2, 1, 1000, kGi, 0)});
  EXPECT_THAT(NodesOf(result.decisions[0]), ElementsAre(0));
  EXPECT_THAT(NodesOf(result.decisions[1]), ElementsAre(1));
  EXPECT_EQ(result.decisions[2].verdict, Verdict::kNoRoomNow);
  EXPECT_EQ(result.decisions[3].verdict, Verdict::kPlaced);  // 1 cpu, 3Gi left on each
  EXPECT_THAT(result.decisions[4].reason, HasSubstr("0 fit now"));
}

TEST(SchedulerTest, ReasonFormatsQuantities) {
  auto result = PlaceOn({Busy(Node(64000, 64 * kGi, 8))},
                        {Job("a", 1, 1, 250, 1536 << 20, 0), Job("b", 1, 1, 1001, 1000, 0),
                         Job("c", 1, 1, 0, 3 * 1024, 0)});
  EXPECT_THAT(result.decisions[0].reason, HasSubstr("{cpus: 0.25, memory: 1536Mi, gpus: 0}"));
  EXPECT_THAT(result.decisions[1].reason, HasSubstr("{cpus: 1.001, memory: 1000, gpus: 0}"));
  EXPECT_THAT(result.decisions[2].reason, HasSubstr("{cpus: 0, memory: 3Ki, gpus: 0}"));
}

// ---- Properties over random clusters ----

// Reference model: the free capacity of every node, replayed in processing
// order from the decisions the scheduler returned.
struct ModelNode {
  bool ready;
  int64_t cpus, memory;
  uint64_t mask;
  int64_t gpus() const { return std::popcount(mask); }
};

int64_t Holds(int64_t cpus, int64_t memory, int64_t gpus, const PendingJob& job) {
  const int64_t c = job.procs_per_node * job.milli_cpus;
  const int64_t m = job.procs_per_node * job.memory_bytes;
  const int64_t g = int64_t{job.procs_per_node} * job.gpus;
  int64_t k = job.replicas;
  if (c > 0) k = std::min(k, cpus / c);
  if (m > 0) k = std::min(k, memory / m);
  if (g > 0) k = std::min(k, gpus / g);
  return k;
}

// Fewest nodes whose capacities sum to `replicas` (capacities sorted desc).
int FewestNodes(std::vector<int64_t> holds, int64_t replicas) {
  std::sort(holds.rbegin(), holds.rend());
  int n = 0;
  for (int64_t sum = 0; sum < replicas; sum += holds[n++]) {
  }
  return n;
}

struct RandomCase {
  ClusterSnapshot cluster;
  std::vector<PendingJob> jobs;
};

RandomCase MakeRandomCase(std::mt19937& rng) {
  auto pick = [&](auto... values) {
    const int64_t options[] = {static_cast<int64_t>(values)...};
    return options[std::uniform_int_distribution<size_t>(0, sizeof...(values) - 1)(rng)];
  };
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  RandomCase c;
  const int nodes = static_cast<int>(uniform(0, 12));
  for (int i = 0; i < nodes; ++i) {
    NodeView node;
    node.name = "n" + std::to_string(i);
    node.ready = uniform(0, 9) < 8;
    node.total_milli_cpus = pick(0, 4000, 8000, 16000, 32000);
    node.total_memory_bytes = pick(0, 8 * kGi, 16 * kGi, 64 * kGi);
    node.total_gpus = static_cast<int32_t>(pick(0, 2, 4, 8, 8));
    const bool empty = uniform(0, 2) == 0;
    node.free_milli_cpus = empty ? node.total_milli_cpus : uniform(0, node.total_milli_cpus);
    node.free_memory_bytes = empty ? node.total_memory_bytes : uniform(0, node.total_memory_bytes);
    node.free_gpu_mask = AllGpus(node.total_gpus) & (empty ? ~uint64_t{0} : rng());
    c.cluster.nodes.push_back(node);
  }
  const int jobs = static_cast<int>(uniform(0, 20));
  for (int j = 0; j < jobs; ++j) {
    PendingJob job;
    job.id = "j" + std::to_string(j);
    job.priority = static_cast<int32_t>(uniform(0, 2));
    job.seq = uniform(0, 10);  // duplicates on purpose
    job.replicas = static_cast<int32_t>(pick(1, 1, 1, 2, 3, 4, 6, 9));
    job.procs_per_node = static_cast<int32_t>(pick(1, 1, 2, 3));
    job.milli_cpus = pick(0, 500, 1000, 2000, 4000);
    job.memory_bytes = pick(0, kGi, 4 * kGi);
    job.gpus = static_cast<int32_t>(pick(0, 0, 1, 1, 2, 4));
    job.reserve = uniform(0, 3) == 0;
    c.jobs.push_back(job);
  }
  return c;
}

// A job marked reserve that got kNoRoomNow: the ready nodes with the most
// free (GPUs, cpus, memory; then lowest index) take as many of its replicas
// as they hold when empty; their free capacity loses what those need. The
// scheduler must name exactly those nodes, or none when the ready nodes
// cannot hold every replica. Only the first jobs that hold, up to
// PlacementOptions::max_holding_jobs (`holds_left`), do.
void HoldInModel(const RandomCase& c, const PendingJob& job, const JobDecision& d,
                 std::vector<ModelNode>& model, int& holds_left) {
  if (!job.reserve || holds_left == 0) {
    EXPECT_THAT(d.held_nodes, IsEmpty());
    return;
  }
  const auto& nodes = c.cluster.nodes;
  std::vector<size_t> ready;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (model[n].ready) ready.push_back(n);
  }
  std::stable_sort(ready.begin(), ready.end(), [&](size_t a, size_t b) {
    return std::make_tuple(model[a].gpus(), model[a].cpus, model[a].memory) >
           std::make_tuple(model[b].gpus(), model[b].cpus, model[b].memory);
  });
  std::vector<std::pair<size_t, int64_t>> held;
  int64_t left = job.replicas;
  for (size_t n : ready) {
    if (left == 0) break;
    const int64_t fit = std::min(left, Holds(nodes[n].total_milli_cpus, nodes[n].total_memory_bytes,
                                             nodes[n].total_gpus, job));
    if (fit == 0) continue;
    held.emplace_back(n, fit);
    left -= fit;
  }
  if (left > 0) {
    EXPECT_THAT(d.held_nodes, IsEmpty());
    return;
  }
  std::vector<int32_t> expected;
  for (const auto& [n, count] : held) {
    expected.push_back(static_cast<int32_t>(n));
    ModelNode& node = model[n];
    node.cpus = std::max<int64_t>(0, node.cpus - count * job.procs_per_node * job.milli_cpus);
    node.memory = std::max<int64_t>(0, node.memory - count * job.procs_per_node * job.memory_bytes);
    for (int64_t g = std::min(node.gpus(), count * job.procs_per_node * job.gpus); g > 0; --g) {
      node.mask &= node.mask - 1;
    }
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(d.held_nodes, expected);
  --holds_left;
}

// Checks every decision against the reference model; counts placed jobs into
// `placed` so the caller can see the test is not vacuous.
void CheckAgainstModel(const RandomCase& c, const PlacementResult& result, int& placed) {
  const auto& nodes = c.cluster.nodes;
  std::vector<ModelNode> model;
  for (const auto& n : nodes) {
    model.push_back(
        {n.ready, n.free_milli_cpus, n.free_memory_bytes, n.free_gpu_mask & AllGpus(n.total_gpus)});
  }
  std::vector<size_t> order(c.jobs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = c.jobs[a];
    const auto& y = c.jobs[b];
    return x.priority != y.priority ? x.priority > y.priority : x.seq < y.seq;
  });
  int holds_left = PlacementOptions().max_holding_jobs;

  for (size_t i : order) {
    const PendingJob& job = c.jobs[i];
    const JobDecision& d = result.decisions[i];
    SCOPED_TRACE("job " + job.id);
    std::vector<int64_t> holds_now, holds_empty;
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (model[n].ready) {
        holds_now.push_back(Holds(model[n].cpus, model[n].memory, model[n].gpus(), job));
      }
      holds_empty.push_back(
          Holds(nodes[n].total_milli_cpus, nodes[n].total_memory_bytes, nodes[n].total_gpus, job));
    }
    int64_t fit_now = 0, fit_empty = 0;
    for (int64_t h : holds_now) fit_now += h;
    for (int64_t h : holds_empty) fit_empty += h;

    switch (d.verdict) {
      case Verdict::kPlaced: {
        ++placed;
        EXPECT_GE(fit_now, job.replicas);
        ASSERT_EQ(d.replicas.size(), static_cast<size_t>(job.replicas));
        std::set<int32_t> used;
        for (const auto& r : d.replicas) {
          ASSERT_GE(r.node_index, 0);
          ASSERT_LT(r.node_index, static_cast<int32_t>(nodes.size()));
          ModelNode& node = model[r.node_index];
          EXPECT_TRUE(node.ready);
          used.insert(r.node_index);
          node.cpus -= job.procs_per_node * job.milli_cpus;
          node.memory -= job.procs_per_node * job.memory_bytes;
          EXPECT_GE(node.cpus, 0) << "cpus double-booked on node " << r.node_index;
          EXPECT_GE(node.memory, 0) << "memory double-booked on node " << r.node_index;
          ASSERT_EQ(r.gpu_indices.size(), static_cast<size_t>(job.procs_per_node * job.gpus));
          for (int32_t g : r.gpu_indices) {
            ASSERT_TRUE(g >= 0 && g < 64);
            EXPECT_TRUE(node.mask >> g & 1) << "GPU " << g << " not free on " << r.node_index;
            node.mask &= ~(uint64_t{1} << g);
          }
        }
        EXPECT_EQ(static_cast<int>(used.size()), FewestNodes(holds_now, job.replicas));
        if (job.replicas == 1 && !d.replicas.empty()) {
          // Single replica: the best fit among nodes that fit.
          int32_t best = -1;
          for (size_t n = 0; n < nodes.size(); ++n) {
            // Capacity before this job's placement: add the job back.
            if (!model[n].ready) continue;
            const bool chosen = static_cast<int32_t>(n) == d.replicas[0].node_index;
            const int64_t g = model[n].gpus() + (chosen ? job.procs_per_node * job.gpus : 0);
            const int64_t cp = model[n].cpus + (chosen ? job.procs_per_node * job.milli_cpus : 0);
            const int64_t m =
                model[n].memory + (chosen ? job.procs_per_node * job.memory_bytes : 0);
            if (Holds(cp, m, g, job) < 1) continue;
            if (best < 0) {
              best = static_cast<int32_t>(n);
              continue;
            }
            const bool best_chosen = best == d.replicas[0].node_index;
            const int64_t bg =
                model[best].gpus() + (best_chosen ? job.procs_per_node * job.gpus : 0);
            const int64_t bc =
                model[best].cpus + (best_chosen ? job.procs_per_node * job.milli_cpus : 0);
            const int64_t bm =
                model[best].memory + (best_chosen ? job.procs_per_node * job.memory_bytes : 0);
            if (std::tie(g, cp, m) < std::tie(bg, bc, bm)) best = static_cast<int32_t>(n);
          }
          EXPECT_EQ(best, d.replicas[0].node_index);
        }
        break;
      }
      case Verdict::kNoRoomNow:
        EXPECT_THAT(d.replicas, IsEmpty());
        EXPECT_FALSE(d.reason.empty());
        // Backfill: nothing that fits now is left waiting.
        EXPECT_LT(fit_now, job.replicas);
        if (!nodes.empty()) {
          EXPECT_GE(fit_empty, job.replicas);
        }
        HoldInModel(c, job, d, model, holds_left);
        break;
      case Verdict::kNeverFits:
        EXPECT_THAT(d.replicas, IsEmpty());
        EXPECT_FALSE(d.reason.empty());
        EXPECT_FALSE(nodes.empty());
        EXPECT_LT(fit_empty, job.replicas);
        break;
    }
  }
}

bool SameDecision(const JobDecision& a, const JobDecision& b) {
  if (a.verdict != b.verdict || a.reason != b.reason || a.replicas.size() != b.replicas.size()) {
    return false;
  }
  for (size_t r = 0; r < a.replicas.size(); ++r) {
    if (a.replicas[r].node_index != b.replicas[r].node_index ||
        a.replicas[r].gpu_indices != b.replicas[r].gpu_indices) {
      return false;
    }
  }
  return true;
}

TEST(SchedulerPropertyTest, RandomClustersNeverOverbookAndMatchTheModel) {
  std::mt19937 rng(20240611);
  int placed = 0, jobs = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    RandomCase c = MakeRandomCase(rng);
    const PlacementResult result = Place(c.cluster, c.jobs);
    ASSERT_EQ(result.decisions.size(), c.jobs.size());
    CheckAgainstModel(c, result, placed);
    jobs += static_cast<int>(c.jobs.size());
    if (HasFatalFailure() || HasNonfatalFailure()) break;
  }
  // Not vacuous: a fair share of jobs is placed and a fair share is not.
  EXPECT_GT(placed, jobs / 5);
  EXPECT_LT(placed, jobs * 4 / 5);
}

TEST(SchedulerPropertyTest, DecisionsDoNotDependOnInputOrderWhenKeysAreUnique) {
  std::mt19937 rng(7);
  for (int iteration = 0; iteration < 500; ++iteration) {
    RandomCase c = MakeRandomCase(rng);
    for (size_t j = 0; j < c.jobs.size(); ++j) c.jobs[j].seq = static_cast<int64_t>(j);
    const PlacementResult base = Place(c.cluster, c.jobs);
    std::vector<size_t> perm(c.jobs.size());
    for (size_t j = 0; j < perm.size(); ++j) perm[j] = j;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<PendingJob> shuffled;
    for (size_t j : perm) shuffled.push_back(c.jobs[j]);
    const PlacementResult again = Place(c.cluster, shuffled);
    for (size_t j = 0; j < perm.size(); ++j) {
      ASSERT_TRUE(SameDecision(base.decisions[perm[j]], again.decisions[j]))
          << "iteration " << iteration << " job " << c.jobs[perm[j]].id;
    }
    // And the same input twice gives the same answer.
    const PlacementResult repeat = Place(c.cluster, c.jobs);
    for (size_t j = 0; j < c.jobs.size(); ++j) {
      ASSERT_TRUE(SameDecision(base.decisions[j], repeat.decisions[j]));
    }
  }
}

}  // namespace
}  // namespace gangway::coordinator
