// The scheduler: a pure function from a cluster snapshot and the pending jobs
// to placement decisions. No RPC, clock, logging or globals, so it is tested
// exhaustively and benchmarked alone (benchmarks/scheduler_bench.cc).
//
// Rules, in order:
//  - Gang: every replica of a job is placed in one call, or none is.
//  - Fit: a replica needs procs_per_node x the per-process cpus, memory and
//    GPUs on one ready node; nothing is ever double-booked (the call works on
//    a private copy of the free capacity and subtracts as it places).
//  - Order: higher priority first, then lower seq (FIFO). A job that does not
//    fit now does not block smaller jobs behind it (backfill), unless it is
//    marked `reserve` (it has waited long enough): then it holds what it
//    needs on the ready nodes that come closest to fitting it (most free
//    GPUs, then cpus, then memory), so jobs after it in order cannot take
//    that capacity and the nodes drain towards it. Jobs before it in order
//    (higher priority) are not held back. Only the first
//    PlacementOptions::max_holding_jobs such jobs in order hold (EASY
//    backfill: the head of the queue is protected, the rest still backfill).
//  - Packing: a job's replicas go onto as few nodes as possible; ties go to
//    the node left with the least free capacity (best fit), then the lower
//    node index, so results are deterministic.
//  - A job that could not fit even on the empty cluster is kNeverFits with a
//    reason, so it fails fast instead of waiting forever.
//  - GPUs within a node (when the node has a GpuTopology and
//    PlacementOptions::topology_scoring is on): a replica's GPUs are, in
//    order of preference, fully NVLink-connected (every pair linked), below
//    one PCIe switch, on one NUMA node, on as few NUMA nodes as possible.
//    Among equals: the fewest PCIe switches, then the choice that strands
//    the fewest free NVLink peers, then the one that leaves the fewest free
//    GPUs below the switches it touches, then on the NUMA nodes it touches
//    (best fit, so whole groups stay free for bigger jobs), then the lowest
//    indices. Without a topology: the
//    lowest free indices.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace gangway::coordinator {

// How one node's GPUs are wired, for choosing among its free GPUs. Immutable
// once built; built once per node (when it registers) and shared by every
// snapshot, so a snapshot costs a pointer copy. Make it with MakeGpuTopology.
struct GpuTopology {
  // peers[i]: bit j set when GPUs i and j share at least one NVLink
  // (symmetric, never i itself). One entry per GPU, at most 64.
  std::vector<uint64_t> peers;
  // The GPUs of each NUMA node: disjoint, covering every GPU, ordered by
  // their lowest GPU. GPUs whose NUMA node is unknown form one group.
  std::vector<uint64_t> numa_groups;
  // group_of[i]: index into numa_groups of GPU i.
  std::vector<uint8_t> group_of;
  // The GPUs below each PCIe switch, likewise; GPUs whose switch is unknown
  // form one group.
  std::vector<uint64_t> switch_groups;
  std::vector<uint8_t> switch_of;

  int32_t gpus() const { return static_cast<int32_t>(peers.size()); }
};

// numa_node[i]: NUMA node of GPU i, -1 when unknown. nvlinks: link counts,
// gpus x gpus row-major (GpuInfo.nvlinks of each GPU in turn); a pair is
// linked when either direction counts at least one link; a span of any other
// size means "no NVLink". pci_switch[i]: any number naming GPU i's PCIe
// switch (equal numbers, same switch), -1 when unknown; a span of any other
// size means "unknown" for all. Null when there are more than 64 GPUs.
std::shared_ptr<const GpuTopology> MakeGpuTopology(std::span<const int32_t> numa_node,
                                                   std::span<const int32_t> nvlinks,
                                                   std::span<const int32_t> pci_switch = {});

struct NodeView {
  std::string name;
  bool ready = true;
  int64_t total_milli_cpus = 0;
  int64_t total_memory_bytes = 0;
  int32_t total_gpus = 0;  // at most 64
  int64_t free_milli_cpus = 0;
  int64_t free_memory_bytes = 0;
  uint64_t free_gpu_mask = 0;  // bit i set: GPU index i is free
  // Null, or describing a different GPU count than total_gpus: GPUs are
  // taken lowest index first.
  std::shared_ptr<const GpuTopology> gpu_topology;
};

struct ClusterSnapshot {
  std::vector<NodeView> nodes;
};

struct PendingJob {
  std::string id;
  int32_t priority = 0;
  int64_t seq = 0;
  int32_t replicas = 1;
  int32_t procs_per_node = 1;
  // Per process.
  int64_t milli_cpus = 0;
  int64_t memory_bytes = 0;
  int32_t gpus = 0;
  // Starving: when it does not fit now, hold capacity for it (see above).
  bool reserve = false;
};

struct ReplicaPlacement {
  int32_t node_index = -1;  // into ClusterSnapshot::nodes
  // procs_per_node x gpus indices, ascending: local rank i owns
  // [i*gpus, (i+1)*gpus). Ascending keeps NVLink pairs and NUMA groups (which
  // topologies number contiguously) within one rank's share.
  std::vector<int32_t> gpu_indices;
};

enum class Verdict { kPlaced, kNoRoomNow, kNeverFits };

struct JobDecision {
  Verdict verdict = Verdict::kNoRoomNow;
  std::vector<ReplicaPlacement> replicas;  // replica r at index r, when placed
  std::string reason;                      // when not placed: why, for people
  // kNoRoomNow with reserve: the nodes (ClusterSnapshot::nodes indices)
  // whose capacity is held for it. Empty when the ready nodes cannot hold
  // all its replicas even empty (then nothing is held).
  std::vector<int32_t> held_nodes;
};

struct PlacementOptions {
  // Choose GPUs within a node by NodeView::gpu_topology (see the rules
  // above). Off: lowest free indices, whatever the topology.
  bool topology_scoring = true;
  // How many `reserve` jobs that do not fit may hold capacity, first in
  // order. Each one held idles capacity until its nodes drain.
  int32_t max_holding_jobs = 1;
};

struct PlacementResult {
  std::vector<JobDecision> decisions;  // same order as the pending input
};

PlacementResult Place(const ClusterSnapshot& cluster, std::span<const PendingJob> pending,
                      const PlacementOptions& options = {});

}  // namespace gangway::coordinator
