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
//    fit now does not block smaller jobs behind it (backfill).
//  - Packing: a job's replicas go onto as few nodes as possible; ties go to
//    the node left with the least free capacity (best fit), then the lower
//    node index, so results are deterministic.
//  - A job that could not fit even on the empty cluster is kNeverFits with a
//    reason, so it fails fast instead of waiting forever.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace gangway::coordinator {

struct NodeView {
  std::string name;
  bool ready = true;
  int64_t total_milli_cpus = 0;
  int64_t total_memory_bytes = 0;
  int32_t total_gpus = 0;  // at most 64
  int64_t free_milli_cpus = 0;
  int64_t free_memory_bytes = 0;
  uint64_t free_gpu_mask = 0;  // bit i set: GPU index i is free
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
};

struct ReplicaPlacement {
  int32_t node_index = -1;  // into ClusterSnapshot::nodes
  // procs_per_node x gpus indices: local rank i owns [i*gpus, (i+1)*gpus).
  std::vector<int32_t> gpu_indices;
};

enum class Verdict { kPlaced, kNoRoomNow, kNeverFits };

struct JobDecision {
  Verdict verdict = Verdict::kNoRoomNow;
  std::vector<ReplicaPlacement> replicas;  // replica r at index r, when placed
  std::string reason;                      // when not placed: why, for people
};

struct PlacementOptions {
  // Reserved for topology-aware GPU choice; the spine takes the lowest free
  // indices.
  bool topology_scoring = true;
};

struct PlacementResult {
  std::vector<JobDecision> decisions;  // same order as the pending input
};

PlacementResult Place(const ClusterSnapshot& cluster, std::span<const PendingJob> pending,
                      const PlacementOptions& options = {});

}  // namespace gangway::coordinator
