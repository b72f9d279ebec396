#include "gpu/cuda_driver.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gangway::gpu {
namespace {

// Values from cuda.h (CUresult, CUdevice_attribute); part of the stable ABI.
constexpr CudaApi::Result kSuccess = 0;
constexpr CudaApi::Result kErrorNoDevice = 100;
constexpr int kAttrPciBusId = 33;
constexpr int kAttrPciDeviceId = 34;
constexpr int kAttrPciDomainId = 50;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;
constexpr int kP2pPerformanceRank = 1;  // CUdevice_P2PAttribute

std::string ErrorText(const CudaApi& api, CudaApi::Result result) {
  const char* text = nullptr;
  if (api.get_error_string != nullptr && api.get_error_string(result, &text) == kSuccess &&
      text != nullptr) {
    return absl::StrCat(text, " (CUDA error ", result, ")");
  }
  return absl::StrCat("CUDA error ", result);
}

absl::Status QueryFailed(const CudaApi& api, absl::string_view what, int ordinal,
                         CudaApi::Result result) {
  return absl::InternalError(
      absl::StrCat("CUDA ", what, " of device ", ordinal, ": ", ErrorText(api, result)));
}

// nvidia-smi's spelling, so operators can match it.
std::string FormatUuid(const CudaApi::Uuid& uuid) {
  const unsigned char* b = uuid.bytes;
  return absl::StrFormat("GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

// The bus id string when the driver has the call, else the attributes (the
// function is then 0, which is what every GPU's compute function is).
absl::StatusOr<PciAddress> BusIdOf(const CudaApi& api, CudaApi::Device device, int ordinal) {
  if (api.device_get_pci_bus_id != nullptr) {
    char bus_id[32] = {};
    CudaApi::Result r = api.device_get_pci_bus_id(bus_id, sizeof(bus_id) - 1, device);
    if (r != kSuccess) return QueryFailed(api, "PCI bus id", ordinal, r);
    return ParsePciAddress(bus_id);
  }
  int domain = 0, bus = 0, dev = 0;
  for (auto [attribute, out] :
       {std::pair{kAttrPciDomainId, &domain}, std::pair{kAttrPciBusId, &bus},
        std::pair{kAttrPciDeviceId, &dev}}) {
    CudaApi::Result r = api.device_get_attribute(out, attribute, device);
    if (r != kSuccess) return QueryFailed(api, "PCI location", ordinal, r);
  }
  return PciAddress{static_cast<uint32_t>(domain), static_cast<uint32_t>(bus),
                    static_cast<uint32_t>(dev), 0};
}

}  // namespace

absl::StatusOr<CudaDriver> CudaDriver::Load(const std::string& library) {
  absl::StatusOr<SharedLibrary> lib = SharedLibrary::Open(library, {.no_delete = true});
  if (!lib.ok()) return lib.status();
  CudaApi api;
  for (absl::Status s :
       {lib->Bind("cuInit", api.init), lib->Bind("cuDeviceGetCount", api.device_get_count),
        lib->Bind("cuDeviceGet", api.device_get), lib->Bind("cuDeviceGetName", api.device_get_name),
        lib->Bind("cuDeviceTotalMem_v2", api.device_total_mem),
        lib->Bind("cuDeviceGetAttribute", api.device_get_attribute)}) {
    if (!s.ok()) return s;
  }
  // Optional ones: an older driver still yields GPUs, with less detail.
  if (!lib->Bind("cuDeviceGetUuid_v2", api.device_get_uuid).ok()) {
    (void)lib->Bind("cuDeviceGetUuid", api.device_get_uuid);
  }
  (void)lib->Bind("cuDeviceGetPCIBusId", api.device_get_pci_bus_id);
  (void)lib->Bind("cuDeviceCanAccessPeer", api.device_can_access_peer);
  (void)lib->Bind("cuDeviceGetP2PAttribute", api.device_get_p2p_attribute);
  (void)lib->Bind("cuGetErrorString", api.get_error_string);
  return CudaDriver(*std::move(lib), api);
}

absl::StatusOr<CudaProbe> ProbeCuda(const CudaApi& api) {
  CudaProbe probe;
  CudaApi::Result r = api.init(0);
  if (r == kErrorNoDevice) return probe;
  if (r != kSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA driver does not work here: cuInit: ", ErrorText(api, r)));
  }
  int count = 0;
  r = api.device_get_count(&count);
  if (r != kSuccess) {
    return absl::InternalError(absl::StrCat("CUDA device count: ", ErrorText(api, r)));
  }
  std::vector<CudaApi::Device> devices(std::max(count, 0));
  for (int i = 0; i < count; ++i) {
    CudaApi::Device& device = devices[i];
    if ((r = api.device_get(&device, i)) != kSuccess) return QueryFailed(api, "handle", i, r);
    ProbedGpu& gpu = probe.gpus.emplace_back();
    char name[256] = {};
    if ((r = api.device_get_name(name, sizeof(name) - 1, device)) != kSuccess) {
      return QueryFailed(api, "name", i, r);
    }
    gpu.model = name;
    size_t bytes = 0;
    if ((r = api.device_total_mem(&bytes, device)) != kSuccess) {
      return QueryFailed(api, "memory size", i, r);
    }
    gpu.memory_bytes = static_cast<int64_t>(bytes);
    int major = 0, minor = 0;
    if ((r = api.device_get_attribute(&major, kAttrComputeCapabilityMajor, device)) != kSuccess ||
        (r = api.device_get_attribute(&minor, kAttrComputeCapabilityMinor, device)) != kSuccess) {
      return QueryFailed(api, "compute capability", i, r);
    }
    gpu.compute_capability = absl::StrCat(major, ".", minor);
    CudaApi::Uuid uuid = {};
    if (api.device_get_uuid != nullptr && api.device_get_uuid(&uuid, device) == kSuccess) {
      gpu.uuid = FormatUuid(uuid);
    }
    absl::StatusOr<PciAddress> pci = BusIdOf(api, device, i);
    if (!pci.ok()) return pci.status();
    gpu.pci = *pci;
  }
  if (api.device_can_access_peer != nullptr) {
    probe.peer_access.assign(count, std::vector<bool>(count, false));
    for (int i = 0; i < count; ++i) {
      for (int j = 0; j < count; ++j) {
        int can = 0;
        if (i == j) continue;
        if ((r = api.device_can_access_peer(&can, devices[i], devices[j])) != kSuccess) {
          probe.peer_access.clear();  // partial answers would read as "no access"
          return probe;
        }
        probe.peer_access[i][j] = can != 0;
      }
    }
  }
  if (api.device_get_p2p_attribute != nullptr && !probe.peer_access.empty()) {
    probe.peer_performance_rank.assign(count, std::vector<int32_t>(count, 0));
    for (int i = 0; i < count; ++i) {
      for (int j = 0; j < count; ++j) {
        int rank = 0;
        if (!probe.peer_access[i][j]) continue;
        if ((r = api.device_get_p2p_attribute(&rank, kP2pPerformanceRank, devices[i],
                                              devices[j])) != kSuccess) {
          probe.peer_performance_rank.clear();
          return probe;
        }
        probe.peer_performance_rank[i][j] = rank;
      }
    }
  }
  return probe;
}

}  // namespace gangway::gpu
