#include "gpu/nvml_driver.h"

#include <map>
#include <string>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gangway::gpu {
namespace {

constexpr NvmlApi::Return kSuccess = 0;

std::string ErrorText(const NvmlApi& api, NvmlApi::Return result) {
  const char* text = api.error_string != nullptr ? api.error_string(result) : nullptr;
  if (text != nullptr) return absl::StrCat(text, " (NVML error ", result, ")");
  return absl::StrCat("NVML error ", result);
}

absl::Status QueryFailed(const NvmlApi& api, absl::string_view what, unsigned int index,
                         NvmlApi::Return result) {
  return absl::InternalError(
      absl::StrCat("NVML ", what, " of GPU ", index, ": ", ErrorText(api, result)));
}

// The bus id string, else the numeric fields (older drivers leave the
// string in the legacy field only).
PciAddress AddressOf(const NvmlApi::PciInfo& pci) {
  char text[sizeof(pci.bus_id) + 1] = {};
  std::copy(std::begin(pci.bus_id), std::end(pci.bus_id), text);
  if (absl::StatusOr<PciAddress> parsed = ParsePciAddress(text); parsed.ok()) return *parsed;
  return PciAddress{pci.domain, pci.bus & 0xff, pci.device & 0x1f, 0};
}

// Fills probe.nvlinks. Links are counted from each GPU's own side, so a
// failed query on one link loses that link only.
void CountLinks(const NvmlApi& api, const std::vector<NvmlApi::Device>& devices, NvmlProbe& probe) {
  const size_t n = devices.size();
  probe.nvlinks.assign(n, std::vector<int32_t>(n, 0));
  if (api.device_get_nvlink_state == nullptr || api.device_get_nvlink_remote_pci_info == nullptr) {
    return;
  }
  std::map<PciAddress, size_t> index_of;
  for (size_t i = 0; i < n; ++i) index_of[*probe.gpus[i].pci] = i;
  std::vector<int32_t> switch_links(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (unsigned int link = 0; link < NvmlApi::kMaxLinks; ++link) {
      int active = 0;
      // NOT_SUPPORTED (no NVLink) and INVALID_ARGUMENT (past this GPU's
      // last link) both just mean "no link here".
      if (api.device_get_nvlink_state(devices[i], link, &active) != kSuccess || active == 0) {
        continue;
      }
      int type = -1;
      if (api.device_get_nvlink_remote_device_type != nullptr &&
          api.device_get_nvlink_remote_device_type(devices[i], link, &type) == kSuccess) {
        if (type == NvmlApi::kRemoteSwitch) {
          ++switch_links[i];
          continue;
        }
        if (type != NvmlApi::kRemoteGpu) continue;  // a CPU (IBM NPU) or unknown
      } else {
        type = -1;
      }
      NvmlApi::PciInfo remote = {};
      if (api.device_get_nvlink_remote_pci_info(devices[i], link, &remote) != kSuccess) continue;
      auto it = index_of.find(AddressOf(remote));
      if (it != index_of.end() && it->second != i) {
        ++probe.nvlinks[i][it->second];
      } else if (type == -1) {
        // Drivers before 470 cannot name the far end; the far end of an NVLink
        // that is not one of our GPUs is, on every such system, an NVSwitch.
        ++switch_links[i];
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i != j && switch_links[i] > 0 && switch_links[j] > 0) {
        probe.nvlinks[i][j] += std::min(switch_links[i], switch_links[j]);
      }
    }
  }
}

}  // namespace

absl::StatusOr<NvmlLibrary> NvmlLibrary::Load(const std::string& library) {
  absl::StatusOr<SharedLibrary> lib = SharedLibrary::Open(library);
  if (!lib.ok()) return lib.status();
  NvmlApi api;
  for (absl::Status s :
       {lib->Bind("nvmlInit_v2", api.init), lib->Bind("nvmlShutdown", api.shutdown),
        lib->Bind("nvmlDeviceGetCount_v2", api.device_get_count),
        lib->Bind("nvmlDeviceGetHandleByIndex_v2", api.device_get_handle_by_index),
        lib->Bind("nvmlDeviceGetName", api.device_get_name),
        lib->Bind("nvmlDeviceGetMemoryInfo", api.device_get_memory_info),
        lib->Bind("nvmlDeviceGetPciInfo_v3", api.device_get_pci_info)}) {
    if (!s.ok()) return s;
  }
  (void)lib->Bind("nvmlDeviceGetUUID", api.device_get_uuid);
  (void)lib->Bind("nvmlDeviceGetCudaComputeCapability", api.device_get_cuda_compute_capability);
  (void)lib->Bind("nvmlDeviceGetNvLinkState", api.device_get_nvlink_state);
  (void)lib->Bind("nvmlDeviceGetNvLinkRemotePciInfo_v2", api.device_get_nvlink_remote_pci_info);
  (void)lib->Bind("nvmlDeviceGetNvLinkRemoteDeviceType", api.device_get_nvlink_remote_device_type);
  (void)lib->Bind("nvmlDeviceGetUtilizationRates", api.device_get_utilization_rates);
  (void)lib->Bind("nvmlErrorString", api.error_string);
  return NvmlLibrary(*std::move(lib), api);
}

absl::StatusOr<NvmlProbe> ProbeNvml(const NvmlApi& api) {
  NvmlApi::Return r = api.init();
  if (r != kSuccess) {
    return absl::FailedPreconditionError(
        absl::StrCat("NVML does not work here: nvmlInit: ", ErrorText(api, r)));
  }
  // NVML counts init/shutdown pairs, so this leaves other users in-process alone.
  absl::Cleanup shutdown = [&api] { api.shutdown(); };
  unsigned int count = 0;
  if ((r = api.device_get_count(&count)) != kSuccess) {
    return absl::InternalError(absl::StrCat("NVML device count: ", ErrorText(api, r)));
  }
  NvmlProbe probe;
  std::vector<NvmlApi::Device> devices(count, nullptr);
  for (unsigned int i = 0; i < count; ++i) {
    NvmlApi::Device device = nullptr;
    if ((r = api.device_get_handle_by_index(i, &device)) != kSuccess) {
      return QueryFailed(api, "handle", i, r);
    }
    devices[i] = device;
    ProbedGpu& gpu = probe.gpus.emplace_back();
    char name[256] = {};
    if ((r = api.device_get_name(device, name, sizeof(name) - 1)) != kSuccess) {
      return QueryFailed(api, "name", i, r);
    }
    gpu.model = name;
    NvmlApi::Memory memory = {};
    if ((r = api.device_get_memory_info(device, &memory)) != kSuccess) {
      return QueryFailed(api, "memory size", i, r);
    }
    gpu.memory_bytes = static_cast<int64_t>(memory.total);
    NvmlApi::PciInfo pci = {};
    if ((r = api.device_get_pci_info(device, &pci)) != kSuccess) {
      return QueryFailed(api, "PCI info", i, r);
    }
    gpu.pci = AddressOf(pci);
    char uuid[128] = {};
    if (api.device_get_uuid != nullptr &&
        api.device_get_uuid(device, uuid, sizeof(uuid) - 1) == kSuccess) {
      gpu.uuid = uuid;
    }
    int major = 0, minor = 0;
    if (api.device_get_cuda_compute_capability != nullptr &&
        api.device_get_cuda_compute_capability(device, &major, &minor) == kSuccess) {
      gpu.compute_capability = absl::StrCat(major, ".", minor);
    }
  }
  CountLinks(api, devices, probe);
  return probe;
}

}  // namespace gangway::gpu
