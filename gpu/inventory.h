// What a node offers the scheduler: cores, memory, NUMA nodes and GPUs with
// their locality and NVLink wiring (gangway.v1.NodeInventory).
//
// Sources:
//  - Live (no topology_xml): hwloc reads this machine; GPUs come from the
//    CUDA driver API (libcuda.so.1: list, name, memory, compute capability,
//    UUID, bus id) and NVML (libnvidia-ml.so.1: the same, plus NVLinks), both
//    loaded with dlopen. A node without a driver has zero GPUs; that is not
//    an error, and why is in DetectedInventory::notes. CUDA's list wins (it
//    is what ranks will see); NVML fills in what CUDA lacks and gives the
//    links. CUDA also gives the peer matrix (peer_access and the driver's
//    performance rank per pair); without NVML, nvlinks are 0 even where
//    CUDA reports peer access.
//  - XML (topology_xml = FILE.xml, `gangway-agent --topology`): hwloc reads
//    the file; GPUs are its NVIDIA PCI devices (vendor 0x10de, class 0x0302
//    or 0x0300), enriched by hwloc CUDA/NVML OS devices when the file has
//    them. No driver is asked: the file describes another machine. NVLinks
//    come from the sidecar FILE.links (see links_file.h) when it exists.
//
// GPUs are numbered in PCI address order (nvidia-smi's order). CUDA numbers
// devices fastest-first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, so ranks must
// get that variable or UUIDs in CUDA_VISIBLE_DEVICES.
//
// Locality of each GPU is hwloc's: the cpus and NUMA node of the first
// non-I/O object above its PCI device, and the topmost PCIe bridge above it
// (pci_switch); numa_node -1, cpu_set "" and pci_switch "" when hwloc does
// not know the device.
//
// Detection blocks (sysfs, driver calls: up to a second on a large node):
// call it off the event loop. Thread-compatible.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"
#include "gpu/cuda_driver.h"
#include "gpu/nvml_driver.h"

namespace gangway::gpu {

struct InventoryOptions {
  // An hwloc XML topology to describe instead of this machine.
  std::string topology_xml;
  // NVLink sidecar. Empty: FILE.links beside topology_xml if it exists (none
  // for the live system). Given: it must exist, and it replaces what NVML
  // reported.
  std::string links_file;
  // Live system only: ask the CUDA driver and NVML for GPUs; false means no
  // GPUs.
  bool probe_driver = true;
  std::string cuda_library = "libcuda.so.1";
  std::string nvml_library = "libnvidia-ml.so.1";
  // Tests: function tables used instead of loading the libraries above.
  const CudaApi* cuda_api = nullptr;
  const NvmlApi* nvml_api = nullptr;
};

struct DetectedInventory {
  v1::NodeInventory inventory;
  // Why a probe answered nothing or less than everything (no driver, a
  // failed query). For the agent's log; none of them is fatal.
  std::vector<absl::Status> notes;
};

// Errors only for what the caller must fix: a topology or links file that is
// missing (NOT_FOUND) or unreadable (INVALID_ARGUMENT), or hwloc failing on
// this machine (INTERNAL).
absl::StatusOr<DetectedInventory> Detect(const InventoryOptions& options);

// Detect() without the notes.
absl::StatusOr<v1::NodeInventory> DetectInventory(const InventoryOptions& options);

// The cpus near the given GPUs (by GpuInfo.index), in list form for
// sched_setaffinity / taskset -c: the union of their cpu_sets. "" (do not
// pin) when a GPU is unknown or its locality is, since pinning near only
// some of a rank's GPUs would be worse than not pinning.
std::string CpuSetForGpus(const v1::NodeInventory& inventory, std::span<const int> gpu_indices);

}  // namespace gangway::gpu
