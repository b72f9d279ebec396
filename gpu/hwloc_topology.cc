#include "gpu/hwloc_topology.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gpu/cpu_list.h"

namespace gangway::gpu {
namespace {

constexpr unsigned kNvidiaVendorId = 0x10de;
constexpr unsigned kClassVga = 0x0300;
constexpr unsigned kClass3d = 0x0302;

absl::StatusOr<hwloc_topology*> NewTopology() {
  hwloc_topology_t topology = nullptr;
  if (hwloc_topology_init(&topology) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("hwloc_topology_init: ", std::strerror(errno)));
  }
  // Bridges are kept only where they lead to a kept device, so the tree stays
  // small; GPUs are always "important".
  hwloc_topology_set_io_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  return topology;
}

std::string CpuList(hwloc_const_bitmap_t set) {
  if (set == nullptr || hwloc_bitmap_weight(set) <= 0) return "";
  std::vector<int> cpus;
  for (int id = hwloc_bitmap_first(set); id >= 0; id = hwloc_bitmap_next(set, id)) {
    cpus.push_back(id);
  }
  return FormatCpuList(cpus);
}

const char* Info(hwloc_obj_t object, const char* name) {
  const char* value = hwloc_obj_get_info_by_name(object, name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

// What hwloc's cuda and nvml components attached below a GPU.
void AddOsDeviceDetails(hwloc_obj_t pci_device, ProbedGpu& gpu) {
  for (hwloc_obj_t child = pci_device->io_first_child; child != nullptr;
       child = child->next_sibling) {
    if (child->type != HWLOC_OBJ_OS_DEVICE || child->subtype == nullptr) continue;
    const std::string subtype = child->subtype;
    if (subtype != "CUDA" && subtype != "NVML") continue;
    if (const char* model = Info(child, "GPUModel"); model != nullptr) gpu.model = model;
    if (const char* uuid = Info(child, "NVIDIAUUID"); uuid != nullptr) gpu.uuid = uuid;
    // hwloc's cuda component writes it in KiB.
    int64_t kib = 0;
    if (const char* size = Info(child, "CUDAGlobalMemorySize");
        size != nullptr && absl::SimpleAtoi(size, &kib) && kib > 0) {
      gpu.memory_bytes = kib * 1024;
    }
  }
}

}  // namespace

absl::StatusOr<HwlocTopology> HwlocTopology::Live() {
  absl::StatusOr<hwloc_topology*> raw = NewTopology();
  if (!raw.ok()) return raw.status();
  Handle topology(*raw);
  // gangway probes CUDA and NVML itself, with a status per probe; hwloc's own
  // plugins for them (and OpenCL/GL, which load the same driver) would only
  // make discovery slower and their failures silent.
  for (const char* component : {"cuda", "nvml", "opencl", "gl", "rsmi", "levelzero"}) {
    hwloc_topology_set_components(topology.get(), HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST,
                                  component);
  }
  if (hwloc_topology_load(topology.get()) != 0) {
    return absl::InternalError(
        absl::StrCat("hwloc cannot read this machine's topology: ", std::strerror(errno)));
  }
  return HwlocTopology(std::move(topology));
}

absl::StatusOr<HwlocTopology> HwlocTopology::FromXml(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("topology file ", path, ": no such file"));
  }
  absl::StatusOr<hwloc_topology*> raw = NewTopology();
  if (!raw.ok()) return raw.status();
  Handle topology(*raw);
  auto unreadable = [&](const char* step) {
    return absl::InvalidArgumentError(absl::StrCat(
        "topology file ", path, ": not an hwloc XML topology (", step,
        " failed: ", std::strerror(errno), "); write one with `lstopo --of xml FILE.xml`"));
  };
  errno = 0;
  if (hwloc_topology_set_xml(topology.get(), path.c_str()) != 0) return unreadable("reading");
  if (hwloc_topology_load(topology.get()) != 0) return unreadable("loading");
  return HwlocTopology(std::move(topology));
}

int64_t HwlocTopology::processing_units() const {
  return std::max(hwloc_get_nbobjs_by_type(topology_.get(), HWLOC_OBJ_PU), 0);
}

int64_t HwlocTopology::memory_bytes() const {
  return static_cast<int64_t>(hwloc_get_root_obj(topology_.get())->total_memory);
}

int32_t HwlocTopology::numa_nodes() const {
  return std::max(hwloc_get_nbobjs_by_type(topology_.get(), HWLOC_OBJ_NUMANODE), 1);
}

HwlocTopology::Locality HwlocTopology::LocalityOf(const PciAddress& address) const {
  Locality locality;
  hwloc_obj_t device = hwloc_get_pcidev_by_busid(topology_.get(), address.domain, address.bus,
                                                 address.device, address.function);
  if (device == nullptr) return locality;
  for (hwloc_obj_t up = device->parent; up != nullptr && up->type == HWLOC_OBJ_BRIDGE;
       up = up->parent) {
    const auto& bridge = up->attr->bridge;
    if (bridge.upstream_type != HWLOC_OBJ_BRIDGE_PCI) break;  // the host bridge
    const auto& pci = bridge.upstream.pci;
    locality.pci_switch = FormatPciAddress(PciAddress{pci.domain, pci.bus, pci.dev, pci.func});
  }
  hwloc_obj_t anchor = hwloc_get_non_io_ancestor_obj(topology_.get(), device);
  if (anchor == nullptr) return locality;
  locality.cpu_set = CpuList(anchor->cpuset);
  if (anchor->nodeset != nullptr && hwloc_bitmap_weight(anchor->nodeset) > 0) {
    locality.numa_node = hwloc_bitmap_first(anchor->nodeset);
  }
  return locality;
}

std::vector<ProbedGpu> HwlocTopology::NvidiaGpus() const {
  std::vector<ProbedGpu> gpus;
  for (hwloc_obj_t pci = hwloc_get_next_pcidev(topology_.get(), nullptr); pci != nullptr;
       pci = hwloc_get_next_pcidev(topology_.get(), pci)) {
    const auto& attr = pci->attr->pcidev;
    if (attr.vendor_id != kNvidiaVendorId ||
        (attr.class_id != kClass3d && attr.class_id != kClassVga)) {
      continue;
    }
    ProbedGpu& gpu = gpus.emplace_back();
    gpu.pci = PciAddress{attr.domain, attr.bus, attr.dev, attr.func};
    const char* name = Info(pci, "PCIDevice");
    gpu.model = name != nullptr ? name : absl::StrFormat("NVIDIA [10de:%04x]", attr.device_id);
    AddOsDeviceDetails(pci, gpu);
  }
  std::sort(gpus.begin(), gpus.end(),
            [](const ProbedGpu& a, const ProbedGpu& b) { return *a.pci < *b.pci; });
  return gpus;
}

}  // namespace gangway::gpu
