// The scheduler's view of a node's GPU wiring, from the inventory the node
// registered. Header-only so the pure scheduler library stays free of the
// wire types: only callers that already hold a v1::NodeInventory (the core,
// tests) include this.
//
// Build it once per registration and keep it with the node; every snapshot
// then shares it (NodeView::gpu_topology).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

// GPU i of the scheduler is inventory.gpus(i), as in the core's GPU masks.
// An inventory whose nvlinks rows are not one entry per GPU is taken as
// having no NVLink; GPUs with an empty pci_switch share one "unknown"
// switch. Null when there are more than 64 GPUs.
inline std::shared_ptr<const GpuTopology> GpuTopologyFromInventory(
    const v1::NodeInventory& inventory) {
  const int n = inventory.gpus_size();
  std::vector<int32_t> numa_node;
  std::vector<int32_t> nvlinks;
  std::vector<int32_t> pci_switch;  // index into `switches`, -1 unknown
  std::vector<std::string> switches;
  numa_node.reserve(n);
  nvlinks.reserve(static_cast<size_t>(n) * n);
  bool links_complete = true;
  for (const v1::GpuInfo& gpu : inventory.gpus()) {
    numa_node.push_back(gpu.numa_node());
    if (gpu.pci_switch().empty()) {
      pci_switch.push_back(-1);
    } else {
      auto it = std::find(switches.begin(), switches.end(), gpu.pci_switch());
      if (it == switches.end()) it = switches.insert(switches.end(), gpu.pci_switch());
      pci_switch.push_back(static_cast<int32_t>(it - switches.begin()));
    }
    links_complete = links_complete && gpu.nvlinks_size() == n;
    if (links_complete) nvlinks.insert(nvlinks.end(), gpu.nvlinks().begin(), gpu.nvlinks().end());
  }
  if (!links_complete) nvlinks.clear();
  return MakeGpuTopology(numa_node, nvlinks, pci_switch);
}

}  // namespace gangway::coordinator
