// The node's hardware as hwloc sees it: processing units, NUMA nodes,
// memory, and the PCI tree with each device's locality. Loaded from the live
// system or from an hwloc XML file (lstopo --of xml), so tests and laptops can
// pose as any machine.
//
// Loading the live system reads sysfs and takes tens of milliseconds: do it
// off the event loop (STYLE.md 8). A loaded object is immutable; const
// methods may be called from any thread.
#pragma once

#include <hwloc.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/pci_address.h"
#include "gpu/probed_gpu.h"

namespace gangway::gpu {

class HwlocTopology {
 public:
  // This machine, with PCI devices ("important" ones: GPUs, NICs, storage).
  static absl::StatusOr<HwlocTopology> Live();
  // NOT_FOUND when `path` does not exist; INVALID_ARGUMENT when hwloc cannot
  // read it as a topology.
  static absl::StatusOr<HwlocTopology> FromXml(const std::string& path);

  // Processing units (hardware threads) this process may use: cgroup cpusets
  // are honoured, CPU quotas are not visible to hwloc.
  int64_t processing_units() const;
  int64_t memory_bytes() const;  // sum of the NUMA nodes' local memory
  int32_t numa_nodes() const;    // at least 1

  struct Locality {
    int32_t numa_node = -1;  // OS index of the nearest NUMA node; -1 unknown
    std::string cpu_set;     // list form, e.g. "0-15,32-47"; "" unknown
    // Bus id of the topmost PCI-to-PCI bridge above the device (below the
    // host bridge); "" when none or unknown. See GpuInfo.pci_switch.
    std::string pci_switch;
  };
  // Locality of the PCI device at `address`: the cpus and the lowest NUMA
  // node of the first non-I/O object above it, and its PCIe switch. Unknown
  // when hwloc does not have the device.
  Locality LocalityOf(const PciAddress& address) const;

  // NVIDIA GPUs in the PCI tree (vendor 0x10de, class 3D 0x0302 or VGA
  // 0x0300), in PCI address order. When the topology also holds hwloc's CUDA
  // or NVML OS devices below a GPU (an lstopo run on a GPU node), their model
  // name, UUID and memory size are used; otherwise the model is the PCI
  // device name, or "NVIDIA [10de:XXXX]".
  std::vector<ProbedGpu> NvidiaGpus() const;

 private:
  struct Destroyer {
    void operator()(hwloc_topology* topology) const { hwloc_topology_destroy(topology); }
  };
  using Handle = std::unique_ptr<hwloc_topology, Destroyer>;

  explicit HwlocTopology(Handle topology) : topology_(std::move(topology)) {}

  Handle topology_;
};

}  // namespace gangway::gpu
