// What a node offers. The spine counts cores and memory from the OS; GPU
// detection (hwloc, CUDA, NVML) lives in gpu/. A simulated inventory lets
// tests and laptops schedule GPU jobs without GPUs.
#pragma once

#include <string>

#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

v1::NodeInventory DetectHostInventory();

// `gpus` GPUs of `model` with `gpu_memory_bytes` each, on `cpus` cores and
// `memory_bytes`; GPUs are split evenly over two NUMA nodes when there are
// at least two, and linked in NVLink pairs (0-1, 2-3, ...).
v1::NodeInventory SimulatedInventory(int64_t milli_cpus, int64_t memory_bytes, int gpus,
                                     const std::string& model, int64_t gpu_memory_bytes);

}  // namespace gangway::agent
