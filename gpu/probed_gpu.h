// One GPU as a probe (CUDA, NVML, or an hwloc topology) saw it, before the
// inventory numbers GPUs and adds locality.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gpu/pci_address.h"

namespace gangway::gpu {

struct ProbedGpu {
  // The key that joins what CUDA, NVML and hwloc each say about one GPU.
  std::optional<PciAddress> pci;
  std::string uuid;                // "GPU-8c1b...", "" when unknown
  std::string model;               // "NVIDIA H100 80GB HBM3"
  std::string compute_capability;  // "9.0", "" when unknown
  int64_t memory_bytes = 0;        // 0 when unknown
};

}  // namespace gangway::gpu
