#include "agent/placement.h"

#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gpu/cpu_list.h"
#include "gpu/inventory.h"

namespace gangway::agent {

std::vector<int> AffinityFor(const v1::NodeInventory& inventory, const v1::RankLaunch& rl) {
  auto env = rl.env().find("CUDA_VISIBLE_DEVICES");
  if (env == rl.env().end() || env->second.empty()) return {};
  std::vector<int> gpus;
  for (absl::string_view part : absl::StrSplit(env->second, ',')) {
    int g;
    if (!absl::SimpleAtoi(part, &g)) return {};
    gpus.push_back(g);
  }
  const std::string cpus = gpu::CpuSetForGpus(inventory, gpus);
  if (cpus.empty()) return {};
  absl::StatusOr<std::vector<int>> list = gpu::ParseCpuList(cpus);
  return list.ok() ? *list : std::vector<int>();
}

std::vector<int> MemoryNodesFor(const v1::NodeInventory& inventory, const v1::RankLaunch& rl) {
  if (inventory.numa_nodes() < 2) return {};
  auto env = rl.env().find("CUDA_VISIBLE_DEVICES");
  if (env == rl.env().end() || env->second.empty()) return {};
  std::set<int> nodes;
  for (absl::string_view part : absl::StrSplit(env->second, ',')) {
    int g;
    if (!absl::SimpleAtoi(part, &g) || g < 0 || g >= inventory.gpus_size()) return {};
    const int numa = inventory.gpus(g).numa_node();
    if (numa < 0) return {};  // locality unknown: do not restrict
    nodes.insert(numa);
  }
  return {nodes.begin(), nodes.end()};
}

}  // namespace gangway::agent
