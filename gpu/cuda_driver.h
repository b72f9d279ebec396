// The CUDA driver API (libcuda.so.1), loaded at run time.
//
// The entry points are declared here rather than taken from cuda.h so that
// the build needs no CUDA toolkit: these are the driver's stable C ABI, the
// versioned names (cuDeviceTotalMem_v2, cuDeviceGetUuid_v2) being the ones
// cuda.h maps the plain names to. Tests fill a CudaApi with fakes, so the
// probe logic runs without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "gpu/probed_gpu.h"
#include "gpu/shared_library.h"

namespace gangway::gpu {

struct CudaApi {
  using Result = int;  // CUresult; 0 is CUDA_SUCCESS
  using Device = int;  // CUdevice
  struct Uuid {
    unsigned char bytes[16];
  };  // CUuuid

  // Required.
  Result (*init)(unsigned int flags) = nullptr;
  Result (*device_get_count)(int* count) = nullptr;
  Result (*device_get)(Device* device, int ordinal) = nullptr;
  Result (*device_get_name)(char* name, int length, Device device) = nullptr;
  Result (*device_total_mem)(size_t* bytes, Device device) = nullptr;
  Result (*device_get_attribute)(int* value, int attribute, Device device) = nullptr;
  // Optional: left null when the driver lacks them.
  Result (*device_get_uuid)(Uuid* uuid, Device device) = nullptr;
  Result (*device_get_pci_bus_id)(char* bus_id, int length, Device device) = nullptr;
  Result (*device_can_access_peer)(int* can_access, Device device, Device peer) = nullptr;
  Result (*device_get_p2p_attribute)(int* value, int attribute, Device source,
                                     Device destination) = nullptr;
  Result (*get_error_string)(Result error, const char** text) = nullptr;
};

// Owns the loaded library; api() is valid while the object lives.
class CudaDriver {
 public:
  // NOT_FOUND when the library is absent, or lacks a required entry point.
  static absl::StatusOr<CudaDriver> Load(const std::string& library);
  const CudaApi& api() const { return api_; }

 private:
  CudaDriver(SharedLibrary library, CudaApi api) : library_(std::move(library)), api_(api) {}
  SharedLibrary library_;
  CudaApi api_;
};

struct CudaProbe {
  std::vector<ProbedGpu> gpus;  // in CUDA ordinal order
  // peer_access[i][j]: device i can map device j's memory (NVLink or PCIe).
  // Empty when the driver could not say.
  std::vector<std::vector<bool>> peer_access;
  // peer_performance_rank[i][j]: the driver's relative rank of the path
  // from i to j, lower is faster; 0 where there is no access. Empty when
  // the driver could not say (then peer_access may still be known).
  std::vector<std::vector<int32_t>> peer_performance_rank;
};

// An OK result with no GPUs when the driver reports no device.
// FAILED_PRECONDITION when the driver does not work here (a stub library, a
// driver older than the library, no kernel module); INTERNAL when a query
// on a present device fails. Messages carry the driver's own error text.
absl::StatusOr<CudaProbe> ProbeCuda(const CudaApi& api);

}  // namespace gangway::gpu
