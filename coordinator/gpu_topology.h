// The scheduler's view of a node's GPU wiring, from the inventory the node
// registered. Header-only so the pure scheduler library stays free of the
// wire types: only callers that already hold a v1::NodeInventory (the core,
// tests) include this.
//
// Build it once per registration and keep it with the node; every snapshot
// then shares it (NodeView::gpu_topology).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "coordinator/scheduler.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

// GPU i of the scheduler is inventory.gpus(i), as in the core's GPU masks.
// An inventory whose nvlinks rows are not one entry per GPU is taken as
// having no NVLink. Null when there are more than 64 GPUs.
inline std::shared_ptr<const GpuTopology> GpuTopologyFromInventory(
    const v1::NodeInventory& inventory) {
  const int n = inventory.gpus_size();
  std::vector<int32_t> numa_node;
  std::vector<int32_t> nvlinks;
  numa_node.reserve(n);
  nvlinks.reserve(static_cast<size_t>(n) * n);
  bool links_complete = true;
  for (const v1::GpuInfo& gpu : inventory.gpus()) {
    numa_node.push_back(gpu.numa_node());
    links_complete = links_complete && gpu.nvlinks_size() == n;
    if (links_complete) nvlinks.insert(nvlinks.end(), gpu.nvlinks().begin(), gpu.nvlinks().end());
  }
  if (!links_complete) nvlinks.clear();
  return MakeGpuTopology(numa_node, nvlinks);
}

}  // namespace gangway::coordinator
