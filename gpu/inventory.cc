#include "gpu/inventory.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gpu/cpu_list.h"
#include "gpu/hwloc_topology.h"
#include "gpu/links_file.h"

namespace gangway::gpu {
namespace {

std::string LocalHostname() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "";
  return host;
}

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

std::optional<CudaProbe> RunCuda(const InventoryOptions& options,
                                 std::vector<absl::Status>& notes) {
  absl::StatusOr<CudaProbe> probe;
  if (options.cuda_api != nullptr) {
    probe = ProbeCuda(*options.cuda_api);
  } else {
    absl::StatusOr<CudaDriver> driver = CudaDriver::Load(options.cuda_library);
    if (!driver.ok()) {
      notes.push_back(WithContext(driver.status(), "CUDA"));
      return std::nullopt;
    }
    probe = ProbeCuda(driver->api());
  }
  if (!probe.ok()) {
    notes.push_back(WithContext(probe.status(), "CUDA"));
    return std::nullopt;
  }
  return *std::move(probe);
}

std::optional<NvmlProbe> RunNvml(const InventoryOptions& options,
                                 std::vector<absl::Status>& notes) {
  absl::StatusOr<NvmlProbe> probe;
  if (options.nvml_api != nullptr) {
    probe = ProbeNvml(*options.nvml_api);
  } else {
    absl::StatusOr<NvmlLibrary> library = NvmlLibrary::Load(options.nvml_library);
    if (!library.ok()) {
      notes.push_back(WithContext(library.status(), "NVML"));
      return std::nullopt;
    }
    probe = ProbeNvml(library->api());
  }
  if (!probe.ok()) {
    notes.push_back(WithContext(probe.status(), "NVML"));
    return std::nullopt;
  }
  return *std::move(probe);
}

void FillGaps(ProbedGpu& gpu, const ProbedGpu& other) {
  if (gpu.uuid.empty()) gpu.uuid = other.uuid;
  if (gpu.model.empty()) gpu.model = other.model;
  if (gpu.compute_capability.empty()) gpu.compute_capability = other.compute_capability;
  if (gpu.memory_bytes == 0) gpu.memory_bytes = other.memory_bytes;
}

struct DriverGpus {
  std::vector<ProbedGpu> gpus;  // PCI order
  LinkMatrix links;             // empty when unknown
  // CUDA's peer matrix in PCI order; empty when unknown.
  std::vector<std::vector<bool>> peer_access;
  std::vector<std::vector<int32_t>> peer_performance_rank;
};

// A CUDA matrix ([ordinal][ordinal]) in the order of `gpus` (PCI order, the
// same GPUs). Empty when `matrix` is.
template <typename T>
std::vector<std::vector<T>> InPciOrder(const std::vector<std::vector<T>>& matrix,
                                       const std::vector<ProbedGpu>& cuda_order,
                                       const std::vector<ProbedGpu>& gpus) {
  if (matrix.size() != gpus.size() || cuda_order.size() != gpus.size()) return {};
  std::map<PciAddress, size_t> ordinal;
  for (size_t i = 0; i < cuda_order.size(); ++i) ordinal[*cuda_order[i].pci] = i;
  std::vector<size_t> from(gpus.size());
  for (size_t i = 0; i < gpus.size(); ++i) from[i] = ordinal.at(*gpus[i].pci);
  std::vector<std::vector<T>> out(gpus.size(), std::vector<T>(gpus.size()));
  for (size_t i = 0; i < gpus.size(); ++i) {
    for (size_t j = 0; j < gpus.size(); ++j) out[i][j] = matrix[from[i]][from[j]];
  }
  return out;
}

// CUDA's list (what ranks can open), completed by NVML; NVML's links.
DriverGpus ProbeDrivers(const InventoryOptions& options, std::vector<absl::Status>& notes) {
  std::optional<CudaProbe> cuda = RunCuda(options, notes);
  std::optional<NvmlProbe> nvml = RunNvml(options, notes);
  DriverGpus out;
  if (cuda.has_value() && !cuda->gpus.empty()) {
    out.gpus = cuda->gpus;
  } else if (nvml.has_value()) {
    out.gpus = nvml->gpus;
  }
  std::map<PciAddress, size_t> nvml_index;
  if (nvml.has_value()) {
    for (size_t i = 0; i < nvml->gpus.size(); ++i) nvml_index[*nvml->gpus[i].pci] = i;
  }
  for (ProbedGpu& gpu : out.gpus) {
    auto it = nvml_index.find(*gpu.pci);
    if (it != nvml_index.end()) FillGaps(gpu, nvml->gpus[it->second]);
  }
  std::stable_sort(out.gpus.begin(), out.gpus.end(),
                   [](const ProbedGpu& a, const ProbedGpu& b) { return *a.pci < *b.pci; });
  if (cuda.has_value() && !cuda->gpus.empty()) {
    out.peer_access = InPciOrder(cuda->peer_access, cuda->gpus, out.gpus);
    out.peer_performance_rank = InPciOrder(cuda->peer_performance_rank, cuda->gpus, out.gpus);
  }
  if (nvml.has_value()) {
    const size_t n = out.gpus.size();
    out.links.assign(n, std::vector<int32_t>(n, 0));
    for (size_t i = 0; i < n; ++i) {
      auto a = nvml_index.find(*out.gpus[i].pci);
      for (size_t j = 0; j < n && a != nvml_index.end(); ++j) {
        auto b = nvml_index.find(*out.gpus[j].pci);
        if (b != nvml_index.end()) out.links[i][j] = nvml->nvlinks[a->second][b->second];
      }
    }
  } else if (!out.gpus.empty()) {
    notes.push_back(absl::UnavailableError(
        "NVLinks unknown without NVML; every GPU pair is reported with 0 links"));
  }
  return out;
}

}  // namespace

absl::StatusOr<DetectedInventory> Detect(const InventoryOptions& options) {
  const bool from_file = !options.topology_xml.empty();
  absl::StatusOr<HwlocTopology> topology =
      from_file ? HwlocTopology::FromXml(options.topology_xml) : HwlocTopology::Live();
  if (!topology.ok()) return topology.status();

  DetectedInventory out;
  v1::NodeInventory& inventory = out.inventory;
  inventory.set_milli_cpus(topology->processing_units() * 1000);
  inventory.set_memory_bytes(topology->memory_bytes());
  inventory.set_numa_nodes(topology->numa_nodes());
  inventory.set_hostname(LocalHostname());
  inventory.set_source(from_file ? absl::StrCat("topology:", options.topology_xml) : "hwloc");

  DriverGpus found;
  if (from_file) {
    found.gpus = topology->NvidiaGpus();
  } else if (options.probe_driver) {
    found = ProbeDrivers(options, out.notes);
  }
  const int count = static_cast<int>(found.gpus.size());

  std::string links_path = options.links_file;
  if (links_path.empty() && from_file) {
    std::error_code error;
    const std::string beside = LinksPathFor(options.topology_xml);
    if (std::filesystem::exists(beside, error)) links_path = beside;
  }
  if (!links_path.empty()) {
    absl::StatusOr<LinkMatrix> links = ReadLinksFile(links_path, count);
    if (!links.ok()) return links.status();
    found.links = *std::move(links);
  }

  for (int i = 0; i < count; ++i) {
    const ProbedGpu& probed = found.gpus[i];
    v1::GpuInfo* gpu = inventory.add_gpus();
    gpu->set_index(i);
    gpu->set_uuid(probed.uuid);
    gpu->set_model(probed.model);
    gpu->set_memory_bytes(probed.memory_bytes);
    gpu->set_compute_capability(probed.compute_capability);
    HwlocTopology::Locality locality;
    if (probed.pci.has_value()) {
      gpu->set_pci_bus_id(FormatPciAddress(*probed.pci));
      locality = topology->LocalityOf(*probed.pci);
    }
    gpu->set_numa_node(locality.numa_node);
    gpu->set_cpu_set(locality.cpu_set);
    gpu->set_pci_switch(locality.pci_switch);
    for (int j = 0; j < count; ++j) {
      gpu->add_nvlinks(found.links.empty() || i == j ? 0 : found.links[i][j]);
    }
    for (int j = 0; j < count && !found.peer_access.empty(); ++j) {
      gpu->add_peer_access(found.peer_access[i][j]);
    }
    for (int j = 0; j < count && !found.peer_performance_rank.empty(); ++j) {
      gpu->add_peer_performance_rank(found.peer_performance_rank[i][j]);
    }
  }
  return out;
}

absl::StatusOr<v1::NodeInventory> DetectInventory(const InventoryOptions& options) {
  absl::StatusOr<DetectedInventory> detected = Detect(options);
  if (!detected.ok()) return detected.status();
  return std::move(detected->inventory);
}

std::string CpuSetForGpus(const v1::NodeInventory& inventory, std::span<const int> gpu_indices) {
  std::vector<int> cpus;
  for (int index : gpu_indices) {
    auto it = std::find_if(inventory.gpus().begin(), inventory.gpus().end(),
                           [index](const v1::GpuInfo& gpu) { return gpu.index() == index; });
    if (it == inventory.gpus().end() || it->cpu_set().empty()) return "";
    absl::StatusOr<std::vector<int>> near = ParseCpuList(it->cpu_set());
    if (!near.ok()) return "";
    cpus.insert(cpus.end(), near->begin(), near->end());
  }
  return FormatCpuList(cpus);
}

}  // namespace gangway::gpu
