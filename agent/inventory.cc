#include "agent/inventory.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gangway::agent {

v1::NodeInventory DetectHostInventory() {
  v1::NodeInventory inv;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  inv.set_milli_cpus(cpus > 0 ? cpus * 1000 : 1000);
  inv.set_memory_bytes(pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0);
  inv.set_numa_nodes(1);
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) inv.set_hostname(host);
  inv.set_source("host");
  return inv;
}

v1::NodeInventory SimulatedInventory(int64_t milli_cpus, int64_t memory_bytes, int gpus,
                                     const std::string& model, int64_t gpu_memory_bytes) {
  v1::NodeInventory inv = DetectHostInventory();
  inv.set_milli_cpus(milli_cpus);
  inv.set_memory_bytes(memory_bytes);
  const int numa = gpus >= 2 ? 2 : 1;
  inv.set_numa_nodes(numa);
  inv.set_source("simulated");
  for (int i = 0; i < gpus; ++i) {
    v1::GpuInfo* g = inv.add_gpus();
    g->set_index(i);
    g->set_uuid(absl::StrCat("GPU-sim-", i));
    g->set_model(model);
    g->set_memory_bytes(gpu_memory_bytes);
    g->set_pci_bus_id(absl::StrFormat("00000000:%02X:00.0", 0x10 + i));
    g->set_numa_node(numa == 2 && i >= (gpus + 1) / 2 ? 1 : 0);
    g->set_compute_capability("9.0");
    for (int j = 0; j < gpus; ++j) g->add_nvlinks(j != i && j / 2 == i / 2 ? 18 : 0);
  }
  return inv;
}

}  // namespace gangway::agent
