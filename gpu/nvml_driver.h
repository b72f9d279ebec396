// NVML (libnvidia-ml.so.1), loaded at run time: GPU identity and the NVLink
// wiring between GPUs.
//
// Declared here rather than taken from nvml.h so the build needs no CUDA
// toolkit; the layouts and versioned names (nvmlInit_v2,
// nvmlDeviceGetPciInfo_v3, ...) are NVML's stable C ABI. Tests fill an
// NvmlApi with fakes, so link counting is tested without a GPU.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "gpu/probed_gpu.h"
#include "gpu/shared_library.h"

namespace gangway::gpu {

struct NvmlApi {
  using Return = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
  struct DeviceOpaque;
  using Device = DeviceOpaque*;  // nvmlDevice_t
  struct Memory {                // nvmlMemory_t
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
  };
  struct PciInfo {  // nvmlPciInfo_t (v3 layout)
    char bus_id_legacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pci_device_id;
    unsigned int pci_subsystem_id;
    char bus_id[32];
  };
  struct Utilization {  // nvmlUtilization_t: percent of the last sample period
    unsigned int gpu;
    unsigned int memory;
  };
  static constexpr unsigned int kMaxLinks = 18;  // NVML_NVLINK_MAX_LINKS
  // nvmlIntNvLinkDeviceType_t values.
  static constexpr int kRemoteGpu = 0;
  static constexpr int kRemoteSwitch = 2;

  // Required.
  Return (*init)() = nullptr;
  Return (*shutdown)() = nullptr;
  Return (*device_get_count)(unsigned int* count) = nullptr;
  Return (*device_get_handle_by_index)(unsigned int index, Device* device) = nullptr;
  Return (*device_get_name)(Device device, char* name, unsigned int length) = nullptr;
  Return (*device_get_memory_info)(Device device, Memory* memory) = nullptr;
  Return (*device_get_pci_info)(Device device, PciInfo* pci) = nullptr;
  // Optional: left null when the driver lacks them.
  Return (*device_get_uuid)(Device device, char* uuid, unsigned int length) = nullptr;
  Return (*device_get_cuda_compute_capability)(Device device, int* major, int* minor) = nullptr;
  Return (*device_get_nvlink_state)(Device device, unsigned int link, int* is_active) = nullptr;
  Return (*device_get_nvlink_remote_pci_info)(Device device, unsigned int link,
                                              PciInfo* pci) = nullptr;
  Return (*device_get_nvlink_remote_device_type)(Device device, unsigned int link,
                                                 int* type) = nullptr;
  Return (*device_get_utilization_rates)(Device device, Utilization* utilization) = nullptr;
  const char* (*error_string)(Return result) = nullptr;
};

// Owns the loaded library; api() is valid while the object lives.
class NvmlLibrary {
 public:
  // NOT_FOUND when the library is absent, or lacks a required entry point.
  static absl::StatusOr<NvmlLibrary> Load(const std::string& library);
  const NvmlApi& api() const { return api_; }

 private:
  NvmlLibrary(SharedLibrary library, NvmlApi api) : library_(std::move(library)), api_(api) {}
  SharedLibrary library_;
  NvmlApi api_;
};

struct NvmlProbe {
  std::vector<ProbedGpu> gpus;  // NVML index order (PCI bus order)
  // nvlinks[i][j]: active NVLinks between GPU i and j. GPUs that reach each
  // other through NVSwitches count min(i's switch links, j's switch links):
  // all switches of one baseboard form one fabric. All zero without NVLink.
  std::vector<std::vector<int32_t>> nvlinks;
};

// FAILED_PRECONDITION when NVML cannot start (no driver loaded, library and
// kernel module versions differ); INTERNAL when a query on a present device
// fails. A GPU without NVLink is not an error: its links are zero.
absl::StatusOr<NvmlProbe> ProbeNvml(const NvmlApi& api);

}  // namespace gangway::gpu
