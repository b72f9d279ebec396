// Where on the node a rank runs: the cores and NUMA nodes near the GPUs it
// is given (CUDA_VISIBLE_DEVICES), from the node's inventory.
#pragma once

#include <vector>

#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

// The cores near the rank's GPUs, when the inventory knows them; empty
// (inherit) for CPU ranks and unknown locality.
std::vector<int> AffinityFor(const v1::NodeInventory& inventory, const v1::RankLaunch& rl);

// With several NUMA nodes, a GPU rank allocates on its GPUs' nodes; empty
// (inherit) otherwise, or when locality is unknown.
std::vector<int> MemoryNodesFor(const v1::NodeInventory& inventory, const v1::RankLaunch& rl);

}  // namespace gangway::agent
