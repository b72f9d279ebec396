// Scheduler throughput: placement decisions per second, single-threaded.
// Target: >= 100,000/s for 10,000 single-rank jobs on 1,000 nodes and for
// 1,000 8-rank gang jobs on 1,000 8-GPU nodes, with topology-aware GPU
// choice on (`topology` = 1: every node is a DGX-like box, 2 NUMA nodes of 4
// GPUs wired in NVLink pairs, each pair below its own PCIe switch; 2: a PCIe
// server, the same NUMA nodes and switches without NVLink) as well as off.
// Inputs are generated from a fixed seed so runs compare.
//
//   scheduler_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"

namespace gangway::coordinator {
namespace {

constexpr int64_t kGi = int64_t{1} << 30;

// 8 GPUs, 0-3 on NUMA 0 and 4-7 on NUMA 1, pairs 0-1, 2-3, 4-5, 6-7 below
// one PCIe switch each; with `nvlink`, each pair also NVLinked.
std::shared_ptr<const GpuTopology> EightGpuBox(bool nvlink) {
  const std::vector<int32_t> numa = {0, 0, 0, 0, 1, 1, 1, 1};
  const std::vector<int32_t> pci_switch = {0, 0, 1, 1, 2, 2, 3, 3};
  std::vector<int32_t> links(64, 0);
  for (int i = 0; nvlink && i < 8; i += 2) links[i * 8 + i + 1] = links[(i + 1) * 8 + i] = 12;
  return MakeGpuTopology(numa, links, pci_switch);
}

// `fragmented`: every node is already partly used (random free GPUs, cpus and
// memory), so gangs cannot simply take a whole empty node. `topology`: 0
// none, 1 NVLink pairs, 2 PCIe switches only.
ClusterSnapshot MakeCluster(int nodes, bool fragmented, std::mt19937& rng, int topology = 0) {
  ClusterSnapshot cluster;
  cluster.nodes.reserve(nodes);
  const std::shared_ptr<const GpuTopology> wiring =
      topology == 0 ? nullptr : EightGpuBox(/*nvlink=*/topology == 1);
  for (int i = 0; i < nodes; ++i) {
    NodeView node;
    node.name = "node-" + std::to_string(i);
    node.total_milli_cpus = node.free_milli_cpus = 96'000;
    node.total_memory_bytes = node.free_memory_bytes = 1024 * kGi;
    node.total_gpus = 8;
    node.free_gpu_mask = 0xff;
    if (fragmented) {
      node.free_gpu_mask = rng() & 0xff;
      node.free_milli_cpus = std::uniform_int_distribution<int64_t>(8'000, 96'000)(rng);
      node.free_memory_bytes = std::uniform_int_distribution<int64_t>(64, 1024)(rng) * kGi;
    }
    node.ready = rng() % 50 != 0;  // a few nodes are always draining
    node.gpu_topology = wiring;
    cluster.nodes.push_back(std::move(node));
  }
  return cluster;
}

std::vector<PendingJob> MakeJobs(int count, std::mt19937& rng, auto&& shape) {
  std::vector<PendingJob> jobs(count);
  for (int i = 0; i < count; ++i) {
    jobs[i].id = "job-" + std::to_string(i);
    jobs[i].priority = static_cast<int32_t>(rng() % 4);
    jobs[i].seq = i;
    shape(jobs[i]);
  }
  return jobs;
}

void Report(benchmark::State& state, const ClusterSnapshot& cluster,
            const std::vector<PendingJob>& jobs) {
  int64_t placed = 0;
  for (const auto& d : Place(cluster, jobs).decisions) placed += d.verdict == Verdict::kPlaced;
  state.counters["decisions_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(jobs.size()),
                         benchmark::Counter::kIsRate);
  state.counters["placed"] = static_cast<double>(placed);
  state.counters["jobs"] = static_cast<double>(jobs.size());
}

// Args: nodes, jobs, fragmented. Single-rank jobs with mixed cpu/memory and a
// third wanting one GPU; with 250 nodes the cluster is oversubscribed, so
// many decisions are "no room now" with a reason.
void BM_SingleRankJobs(benchmark::State& state) {
  std::mt19937 rng(42);
  const ClusterSnapshot cluster = MakeCluster(static_cast<int>(state.range(0)), state.range(2) != 0,
                                              rng, static_cast<int>(state.range(3)));
  const auto jobs = MakeJobs(static_cast<int>(state.range(1)), rng, [&](PendingJob& job) {
    job.milli_cpus = 1000 << (rng() % 4);
    job.memory_bytes = (int64_t{4} << (rng() % 4)) * kGi;
    job.gpus = rng() % 3 == 0 ? 1 : 0;
  });
  for (auto _ : state) {
    PlacementResult result = Place(cluster, jobs);
    benchmark::DoNotOptimize(result);
  }
  Report(state, cluster, jobs);
}
BENCHMARK(BM_SingleRankJobs)
    ->ArgNames({"nodes", "jobs", "fragmented", "topology"})
    ->Args({1000, 10000, 0, 0})
    ->Args({1000, 10000, 1, 0})
    ->Args({250, 10000, 0, 0})
    ->Args({1000, 10000, 0, 1})
    ->Args({1000, 10000, 1, 1})
    ->Args({250, 10000, 0, 1})
    ->Unit(benchmark::kMillisecond);

// Args: nodes, jobs, fragmented, topology, starving. 8-rank gangs on 8-GPU
// nodes, alternating "1 replica x 8 procs x 1 GPU" (needs a whole node) and
// "8 replicas x 1 proc x 1 GPU" (packs onto as few nodes as possible).
// `starving`: every job has waited past --reserve-after
// (PendingJob::reserve), so the first that does not fit holds nodes.
void BM_GangJobs(benchmark::State& state) {
  std::mt19937 rng(42);
  const ClusterSnapshot cluster = MakeCluster(static_cast<int>(state.range(0)), state.range(2) != 0,
                                              rng, static_cast<int>(state.range(3)));
  int i = 0;
  const auto jobs = MakeJobs(static_cast<int>(state.range(1)), rng, [&](PendingJob& job) {
    const bool one_node = i++ % 2 == 0;
    job.replicas = one_node ? 1 : 8;
    job.procs_per_node = one_node ? 8 : 1;
    job.milli_cpus = 4000;
    job.memory_bytes = 16 * kGi;
    job.gpus = 1;
    job.reserve = state.range(4) != 0;
  });
  for (auto _ : state) {
    PlacementResult result = Place(cluster, jobs);
    benchmark::DoNotOptimize(result);
  }
  Report(state, cluster, jobs);
}
BENCHMARK(BM_GangJobs)
    ->ArgNames({"nodes", "jobs", "fragmented", "topology", "starving"})
    ->Args({1000, 1000, 0, 0, 0})
    ->Args({1000, 1000, 1, 0, 0})
    ->Args({1000, 1000, 0, 1, 0})
    ->Args({1000, 1000, 1, 1, 0})
    ->Args({1000, 1000, 1, 2, 0})
    ->Args({1000, 1000, 1, 0, 1})
    ->Unit(benchmark::kMillisecond);

// Args: nodes, jobs, fragmented, topology. Jobs for which the GPU choice
// within a node matters: 1, 2, 3 or 4 GPUs as one process, or 2 x 2 GPUs;
// fragmented nodes start with random GPUs taken, so pairs are often broken
// and NUMA nodes half full. 4,000 empty nodes hold all 10,000 jobs.
void BM_TopologyChoice(benchmark::State& state) {
  std::mt19937 rng(42);
  const ClusterSnapshot cluster = MakeCluster(static_cast<int>(state.range(0)), state.range(2) != 0,
                                              rng, static_cast<int>(state.range(3)));
  const auto jobs = MakeJobs(static_cast<int>(state.range(1)), rng, [&](PendingJob& job) {
    const int shape = static_cast<int>(rng() % 5);
    job.procs_per_node = shape == 4 ? 2 : 1;
    job.gpus = shape == 4 ? 2 : shape + 1;
    job.milli_cpus = 2000;
    job.memory_bytes = 8 * kGi;
  });
  for (auto _ : state) {
    PlacementResult result = Place(cluster, jobs);
    benchmark::DoNotOptimize(result);
  }
  Report(state, cluster, jobs);
  // How good the choices are: the share of 2-GPU sets that are one of the
  // box's pairs (NVLinked with topology 1, below one switch with 2; the
  // same pairs either way, so runs without topology compare).
  int64_t sets = 0, whole = 0;
  const PlacementResult result = Place(cluster, jobs);
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].gpus != 2) continue;
    for (const auto& r : result.decisions[j].replicas) {
      for (size_t p = 0; p + 1 < r.gpu_indices.size(); p += 2) {
        ++sets;
        whole += r.gpu_indices[p] / 2 == r.gpu_indices[p + 1] / 2;
      }
    }
  }
  state.counters["pairs_whole_pct"] = sets == 0 ? 0.0 : 100.0 * static_cast<double>(whole) / sets;
}
BENCHMARK(BM_TopologyChoice)
    ->ArgNames({"nodes", "jobs", "fragmented", "topology"})
    ->Args({4000, 10000, 0, 0})
    ->Args({4000, 10000, 0, 1})
    ->Args({4000, 10000, 0, 2})
    ->Args({1000, 10000, 1, 0})
    ->Args({1000, 10000, 1, 1})
    ->Args({1000, 10000, 1, 2})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gangway::coordinator

BENCHMARK_MAIN();
