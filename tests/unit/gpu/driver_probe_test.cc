// The CUDA and NVML probes against fake drivers: function tables whose
// entries read a scripted machine. Covers what a GPU node would exercise
// (link counting, NVSwitch fabrics, old drivers, failing calls) without one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "gpu/cuda_driver.h"
#include "gpu/inventory.h"
#include "gpu/nvml_driver.h"

namespace gangway::gpu {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kGi = int64_t{1} << 30;

// ---- A scripted machine both fakes read. ----

struct FakeLink {
  std::string remote_bus_id;  // NVML spelling
  int remote_type = NvmlApi::kRemoteGpu;
};

struct FakeGpu {
  std::string bus_id;  // NVML spelling
  std::string name;
  std::string uuid;
  int64_t memory = 80 * kGi;
  int cc_major = 9, cc_minor = 0;
  std::vector<FakeLink> links;  // link i; absent past the end
  bool nvlink_supported = true;
};

struct FakeMachine {
  std::vector<FakeGpu> gpus;
  int nvml_init_result = 0;
  int nvml_init_calls = 0;
  int nvml_shutdown_calls = 0;
  int cuda_init_result = 0;
  std::vector<int> cuda_order;  // CUDA ordinal -> gpus index; default identity
  int fail_cuda_name_of = -1;
  // CUDA's peer matrix by gpus index: the performance rank, -1 for no
  // access. Empty: every pair has access at rank 0.
  std::vector<std::vector<int>> p2p_rank;
  bool fail_p2p_attribute = false;
};

FakeMachine* machine = nullptr;

NvmlApi::Device Handle(unsigned int i) {
  return reinterpret_cast<NvmlApi::Device>(uintptr_t{i} + 1);
}
const FakeGpu& Of(NvmlApi::Device d) { return machine->gpus[reinterpret_cast<uintptr_t>(d) - 1]; }

void CopyString(const std::string& from, char* to, size_t length) {
  const size_t n = std::min(from.size(), length - 1);
  std::memcpy(to, from.data(), n);
  to[n] = '\0';
}

void FillPci(const std::string& bus_id, NvmlApi::PciInfo* pci) {
  *pci = {};
  CopyString(bus_id, pci->bus_id, sizeof(pci->bus_id));
}

// Values the fakes return: NVML_SUCCESS, NVML_ERROR_INVALID_ARGUMENT,
// NVML_ERROR_NOT_SUPPORTED.
constexpr int kOk = 0, kInvalid = 2, kNotSupported = 3;

NvmlApi FakeNvml() {
  NvmlApi api;
  api.init = [] {
    ++machine->nvml_init_calls;
    return machine->nvml_init_result;
  };
  api.shutdown = [] {
    ++machine->nvml_shutdown_calls;
    return kOk;
  };
  api.device_get_count = [](unsigned int* n) {
    *n = static_cast<unsigned int>(machine->gpus.size());
    return kOk;
  };
  api.device_get_handle_by_index = [](unsigned int i, NvmlApi::Device* d) {
    if (i >= machine->gpus.size()) return kInvalid;
    *d = Handle(i);
    return kOk;
  };
  api.device_get_name = [](NvmlApi::Device d, char* name, unsigned int length) {
    CopyString(Of(d).name, name, length);
    return kOk;
  };
  api.device_get_uuid = [](NvmlApi::Device d, char* uuid, unsigned int length) {
    CopyString(Of(d).uuid, uuid, length);
    return kOk;
  };
  api.device_get_memory_info = [](NvmlApi::Device d, NvmlApi::Memory* memory) {
    *memory = {static_cast<unsigned long long>(Of(d).memory), 0, 0};
    return kOk;
  };
  api.device_get_pci_info = [](NvmlApi::Device d, NvmlApi::PciInfo* pci) {
    FillPci(Of(d).bus_id, pci);
    return kOk;
  };
  api.device_get_cuda_compute_capability = [](NvmlApi::Device d, int* major, int* minor) {
    *major = Of(d).cc_major;
    *minor = Of(d).cc_minor;
    return kOk;
  };
  api.device_get_nvlink_state = [](NvmlApi::Device d, unsigned int link, int* active) {
    if (!Of(d).nvlink_supported) return kNotSupported;
    if (link >= Of(d).links.size()) return kInvalid;
    *active = 1;
    return kOk;
  };
  api.device_get_nvlink_remote_pci_info = [](NvmlApi::Device d, unsigned int link,
                                             NvmlApi::PciInfo* pci) {
    FillPci(Of(d).links.at(link).remote_bus_id, pci);
    return kOk;
  };
  api.device_get_nvlink_remote_device_type = [](NvmlApi::Device d, unsigned int link, int* type) {
    *type = Of(d).links.at(link).remote_type;
    return kOk;
  };
  api.error_string = [](int result) -> const char* {
    return result == 9 ? "Driver Not Loaded" : "Unknown Error";
  };
  return api;
}

int CudaIndex(int ordinal) {
  return machine->cuda_order.empty() ? ordinal : machine->cuda_order.at(ordinal);
}

CudaApi FakeCuda() {
  CudaApi api;
  api.init = [](unsigned int) { return machine->cuda_init_result; };
  api.device_get_count = [](int* n) {
    *n = static_cast<int>(machine->gpus.size());
    return 0;
  };
  api.device_get = [](CudaApi::Device* d, int ordinal) {
    *d = ordinal;
    return 0;
  };
  api.device_get_name = [](char* name, int length, CudaApi::Device d) {
    if (d == machine->fail_cuda_name_of) return 999;
    CopyString(machine->gpus[CudaIndex(d)].name, name, length);
    return 0;
  };
  api.device_total_mem = [](size_t* bytes, CudaApi::Device d) {
    *bytes = machine->gpus[CudaIndex(d)].memory;
    return 0;
  };
  api.device_get_attribute = [](int* value, int attribute, CudaApi::Device d) {
    const FakeGpu& gpu = machine->gpus[CudaIndex(d)];
    if (attribute == 75) *value = gpu.cc_major;
    if (attribute == 76) *value = gpu.cc_minor;
    return 0;
  };
  api.device_get_uuid = [](CudaApi::Uuid* uuid, CudaApi::Device d) {
    for (int i = 0; i < 16; ++i) uuid->bytes[i] = static_cast<unsigned char>(16 * d + i);
    return 0;
  };
  api.device_get_pci_bus_id = [](char* bus_id, int length, CudaApi::Device d) {
    // CUDA's own spelling: 4-digit domain.
    CopyString(machine->gpus[CudaIndex(d)].bus_id.substr(4), bus_id, length);
    return 0;
  };
  api.device_can_access_peer = [](int* can, CudaApi::Device a, CudaApi::Device b) {
    *can = machine->p2p_rank.empty() || machine->p2p_rank[CudaIndex(a)][CudaIndex(b)] >= 0;
    return 0;
  };
  api.device_get_p2p_attribute = [](int* value, int attribute, CudaApi::Device a,
                                    CudaApi::Device b) {
    if (machine->fail_p2p_attribute) return 1;  // CUDA_ERROR_INVALID_VALUE
    if (attribute != 1) return 1;               // only PERFORMANCE_RANK is asked
    *value = machine->p2p_rank.empty() ? 0 : machine->p2p_rank[CudaIndex(a)][CudaIndex(b)];
    return 0;
  };
  api.get_error_string = [](int result, const char** text) {
    *text = result == 34 ? "CUDA_ERROR_STUB_LIBRARY" : "CUDA_ERROR_UNKNOWN";
    return 0;
  };
  return api;
}

std::string Bus(int i) {
  char text[32];
  std::snprintf(text, sizeof(text), "00000000:%02X:00.0", 0x10 + i);
  return text;
}

// n GPUs; links[i] lists (peer, count) pairs.
FakeMachine Machine(int n) {
  FakeMachine m;
  for (int i = 0; i < n; ++i) {
    FakeGpu& gpu = m.gpus.emplace_back();
    gpu.bus_id = Bus(i);
    gpu.name = "NVIDIA H100 80GB HBM3";
    gpu.uuid = "GPU-fake-" + std::to_string(i);
  }
  return m;
}

void Link(FakeMachine& m, int a, int b, int count) {
  for (int k = 0; k < count; ++k) {
    m.gpus[a].links.push_back({m.gpus[b].bus_id, NvmlApi::kRemoteGpu});
    m.gpus[b].links.push_back({m.gpus[a].bus_id, NvmlApi::kRemoteGpu});
  }
}

class DriverProbeTest : public ::testing::Test {
 protected:
  void Use(FakeMachine m) {
    fake_ = std::move(m);
    machine = &fake_;
  }
  void TearDown() override { machine = nullptr; }
  FakeMachine fake_;
};

// ---- NVML ----

TEST_F(DriverProbeTest, NvmlCountsPointToPointLinksPerPair) {
  FakeMachine m = Machine(4);
  Link(m, 0, 1, 12);
  Link(m, 2, 3, 12);
  Link(m, 1, 2, 2);
  Use(m);
  auto probe = ProbeNvml(FakeNvml());
  ASSERT_TRUE(probe.ok()) << probe.status();
  ASSERT_THAT(probe->gpus, SizeIs(4));
  EXPECT_EQ(probe->gpus[0].uuid, "GPU-fake-0");
  EXPECT_EQ(probe->gpus[0].compute_capability, "9.0");
  EXPECT_EQ(probe->gpus[3].memory_bytes, 80 * kGi);
  EXPECT_EQ(probe->gpus[3].pci, (PciAddress{0, 0x13, 0, 0}));
  EXPECT_THAT(probe->nvlinks[0], ElementsAre(0, 12, 0, 0));
  EXPECT_THAT(probe->nvlinks[1], ElementsAre(12, 0, 2, 0));
  EXPECT_THAT(probe->nvlinks[2], ElementsAre(0, 2, 0, 12));
  EXPECT_THAT(probe->nvlinks[3], ElementsAre(0, 0, 12, 0));
  EXPECT_EQ(fake_.nvml_init_calls, 1);
  EXPECT_EQ(fake_.nvml_shutdown_calls, 1);
}

TEST_F(DriverProbeTest, NvmlNvSwitchFabricLinksEveryPair) {
  FakeMachine m = Machine(4);
  for (int i = 0; i < 4; ++i) {
    for (int k = 0; k < 18; ++k)
      m.gpus[i].links.push_back({"00000000:C0:00.0", NvmlApi::kRemoteSwitch});
  }
  m.gpus[3].links.resize(6);  // a GPU with fewer switch links bounds its pairs
  Use(m);
  auto probe = ProbeNvml(FakeNvml());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_THAT(probe->nvlinks[0], ElementsAre(0, 18, 18, 6));
  EXPECT_THAT(probe->nvlinks[3], ElementsAre(6, 6, 6, 0));
}

TEST_F(DriverProbeTest, NvmlOldDriverTreatsUnknownFarEndsAsSwitches) {
  FakeMachine m = Machine(2);
  Link(m, 0, 1, 1);
  for (int i = 0; i < 2; ++i)
    m.gpus[i].links.push_back({"00000000:C0:00.0", NvmlApi::kRemoteSwitch});
  Use(m);
  NvmlApi api = FakeNvml();
  api.device_get_nvlink_remote_device_type = nullptr;  // driver < 470
  auto probe = ProbeNvml(api);
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_THAT(probe->nvlinks[0], ElementsAre(0, 2));  // one direct, one through the switch
}

TEST_F(DriverProbeTest, NvmlLinksToCpusAreNotGpuLinks) {
  FakeMachine m = Machine(2);
  for (int i = 0; i < 2; ++i) m.gpus[i].links.push_back({"00000000:00:00.0", 1 /* IBM NPU */});
  Use(m);
  auto probe = ProbeNvml(FakeNvml());
  ASSERT_TRUE(probe.ok());
  EXPECT_THAT(probe->nvlinks[0], ElementsAre(0, 0));
}

TEST_F(DriverProbeTest, NvmlWithoutNvLinkIsAllZeros) {
  FakeMachine m = Machine(3);
  for (auto& gpu : m.gpus) gpu.nvlink_supported = false;
  Use(m);
  auto probe = ProbeNvml(FakeNvml());
  ASSERT_TRUE(probe.ok());
  for (const auto& row : probe->nvlinks) EXPECT_THAT(row, ElementsAre(0, 0, 0));
}

TEST_F(DriverProbeTest, NvmlInitFailureIsFailedPreconditionWithTheDriversWords) {
  FakeMachine m = Machine(1);
  m.nvml_init_result = 9;
  Use(m);
  auto probe = ProbeNvml(FakeNvml());
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(probe.status().message()), HasSubstr("Driver Not Loaded"));
  EXPECT_EQ(fake_.nvml_shutdown_calls, 0);  // nothing to shut down
}

TEST_F(DriverProbeTest, NvmlLoadOfAMissingLibraryIsNotFound) {
  auto library = NvmlLibrary::Load("libgangway-no-such-nvml.so.1");
  ASSERT_FALSE(library.ok());
  EXPECT_EQ(library.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(library.status().message()), HasSubstr("libgangway-no-such-nvml.so.1"));
}

TEST_F(DriverProbeTest, LoadingALibraryWithoutTheEntryPointsIsNotFound) {
  // libm loads everywhere and has none of NVML's or CUDA's symbols.
  auto nvml = NvmlLibrary::Load("libm.so.6");
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(nvml.status().message()), HasSubstr("nvmlInit_v2"));
  auto cuda = CudaDriver::Load("libm.so.6");
  EXPECT_EQ(cuda.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(cuda.status().message()), HasSubstr("cuInit"));
}

// ---- CUDA ----

TEST_F(DriverProbeTest, CudaReportsEachDevice) {
  FakeMachine m = Machine(2);
  m.gpus[1].cc_major = 8;
  Use(m);
  auto probe = ProbeCuda(FakeCuda());
  ASSERT_TRUE(probe.ok()) << probe.status();
  ASSERT_THAT(probe->gpus, SizeIs(2));
  EXPECT_EQ(probe->gpus[0].model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(probe->gpus[0].memory_bytes, 80 * kGi);
  EXPECT_EQ(probe->gpus[1].compute_capability, "8.0");
  EXPECT_EQ(probe->gpus[1].pci, (PciAddress{0, 0x11, 0, 0}));
  EXPECT_EQ(probe->gpus[1].uuid, "GPU-10111213-1415-1617-1819-1a1b1c1d1e1f");
  EXPECT_THAT(probe->peer_access, ElementsAre(ElementsAre(false, true), ElementsAre(true, false)));
  EXPECT_THAT(probe->peer_performance_rank, ElementsAre(ElementsAre(0, 0), ElementsAre(0, 0)));
}

TEST_F(DriverProbeTest, CudaPeerRanksOnlyWhereThereIsAccess) {
  FakeMachine m = Machine(3);
  m.p2p_rank = {{0, 1, -1}, {1, 0, -1}, {-1, -1, 0}};
  Use(m);
  auto probe = ProbeCuda(FakeCuda());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_THAT(probe->peer_access,
              ElementsAre(ElementsAre(false, true, false), ElementsAre(true, false, false),
                          ElementsAre(false, false, false)));
  EXPECT_THAT(probe->peer_performance_rank,
              ElementsAre(ElementsAre(0, 1, 0), ElementsAre(1, 0, 0), ElementsAre(0, 0, 0)));
}

TEST_F(DriverProbeTest, CudaFailingPeerRankKeepsTheAccessMatrix) {
  FakeMachine m = Machine(2);
  m.fail_p2p_attribute = true;
  Use(m);
  auto probe = ProbeCuda(FakeCuda());
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_THAT(probe->peer_access, SizeIs(2));
  EXPECT_THAT(probe->peer_performance_rank, IsEmpty());  // unknown, not "all 0"
}

TEST_F(DriverProbeTest, CudaNoDeviceIsAnEmptyAnswer) {
  FakeMachine m = Machine(2);
  m.cuda_init_result = 100;  // CUDA_ERROR_NO_DEVICE
  Use(m);
  auto probe = ProbeCuda(FakeCuda());
  ASSERT_TRUE(probe.ok());
  EXPECT_THAT(probe->gpus, IsEmpty());
}

TEST_F(DriverProbeTest, CudaStubLibraryIsFailedPrecondition) {
  FakeMachine m = Machine(1);
  m.cuda_init_result = 34;
  Use(m);
  auto probe = ProbeCuda(FakeCuda());
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(probe.status().message()), HasSubstr("CUDA_ERROR_STUB_LIBRARY"));
}

TEST_F(DriverProbeTest, CudaFailingQueryIsInternalNamingTheDevice) {
  FakeMachine m = Machine(3);
  m.fail_cuda_name_of = 2;
  Use(m);
  auto probe = ProbeCuda(FakeCuda());
  ASSERT_FALSE(probe.ok());
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(probe.status().message()), HasSubstr("name of device 2"));
}

TEST_F(DriverProbeTest, CudaWithoutOptionalEntryPointsStillReportsGpus) {
  Use(Machine(1));
  CudaApi api = FakeCuda();
  api.device_get_uuid = nullptr;
  api.device_get_pci_bus_id = nullptr;  // falls back to the PCI attributes
  api.device_can_access_peer = nullptr;
  api.device_get_p2p_attribute = nullptr;
  api.get_error_string = nullptr;
  auto probe = ProbeCuda(api);
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(probe->gpus[0].uuid, "");
  EXPECT_EQ(probe->gpus[0].pci, (PciAddress{0, 0, 0, 0}));  // the fake has no PCI attributes
  EXPECT_THAT(probe->peer_access, IsEmpty());
}

// ---- Both, through Detect on this machine ----

TEST_F(DriverProbeTest, DetectOrdersByPciAndJoinsCudaWithNvmlLinks) {
  FakeMachine m = Machine(4);
  Link(m, 0, 1, 12);
  Link(m, 2, 3, 12);
  m.cuda_order = {2, 0, 3, 1};  // CUDA's fastest-first order is not PCI order
  for (auto& gpu : m.gpus) gpu.cc_major = 9;
  Use(m);
  const CudaApi cuda = FakeCuda();
  const NvmlApi nvml = FakeNvml();
  InventoryOptions options;
  options.cuda_api = &cuda;
  options.nvml_api = &nvml;
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok()) << detected.status();
  EXPECT_THAT(detected->notes, IsEmpty());
  const v1::NodeInventory& inv = detected->inventory;
  ASSERT_EQ(inv.gpus_size(), 4);
  for (int i = 0; i < 4; ++i) {
    const v1::GpuInfo& gpu = inv.gpus(i);
    EXPECT_EQ(gpu.index(), i);
    EXPECT_EQ(gpu.pci_bus_id(), Bus(i));
    EXPECT_EQ(gpu.compute_capability(), "9.0");
    // Not on this machine's PCI tree: locality unknown.
    EXPECT_EQ(gpu.numa_node(), -1);
    EXPECT_EQ(gpu.cpu_set(), "");
  }
  EXPECT_THAT(inv.gpus(0).nvlinks(), ElementsAre(0, 12, 0, 0));
  EXPECT_THAT(inv.gpus(3).nvlinks(), ElementsAre(0, 0, 12, 0));
}

TEST_F(DriverProbeTest, DetectPutsCudasPeerMatrixInPciOrder) {
  // By PCI index: NVLink pairs 0-1 and 2-3 at rank 0, 0-2 and 1-3 over PCIe
  // at rank 1, no access across 0-3 and 1-2.
  FakeMachine m = Machine(4);
  m.p2p_rank = {{0, 0, 1, -1}, {0, 0, -1, 1}, {1, -1, 0, 0}, {-1, 1, 0, 0}};
  m.cuda_order = {2, 0, 3, 1};
  Use(m);
  const CudaApi cuda = FakeCuda();
  InventoryOptions options;
  options.cuda_api = &cuda;
  options.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok()) << detected.status();
  const v1::NodeInventory& inv = detected->inventory;
  ASSERT_EQ(inv.gpus_size(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(inv.gpus(i).pci_bus_id(), Bus(i));
  EXPECT_THAT(inv.gpus(0).peer_access(), ElementsAre(false, true, true, false));
  EXPECT_THAT(inv.gpus(1).peer_access(), ElementsAre(true, false, false, true));
  EXPECT_THAT(inv.gpus(2).peer_access(), ElementsAre(true, false, false, true));
  EXPECT_THAT(inv.gpus(3).peer_access(), ElementsAre(false, true, true, false));
  EXPECT_THAT(inv.gpus(0).peer_performance_rank(), ElementsAre(0, 0, 1, 0));
  EXPECT_THAT(inv.gpus(3).peer_performance_rank(), ElementsAre(0, 1, 0, 0));
  EXPECT_EQ(inv.gpus(0).pci_switch(), "");  // not on this machine's PCI tree
}

TEST_F(DriverProbeTest, DetectWithNvmlOnlyStillFindsGpus) {
  Use(Machine(2));
  const NvmlApi nvml = FakeNvml();
  InventoryOptions options;
  options.cuda_library = "/nonexistent/libcuda.so.1";
  options.nvml_api = &nvml;
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok());
  EXPECT_EQ(detected->inventory.gpus_size(), 2);
  EXPECT_EQ(detected->inventory.gpus(1).uuid(), "GPU-fake-1");
  ASSERT_THAT(detected->notes, SizeIs(1));
  EXPECT_THAT(std::string(detected->notes[0].message()), HasSubstr("CUDA"));
}

TEST_F(DriverProbeTest, DetectWithCudaOnlyReportsZeroLinksAndSaysWhy) {
  Use(Machine(2));
  const CudaApi cuda = FakeCuda();
  InventoryOptions options;
  options.cuda_api = &cuda;
  options.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok());
  ASSERT_EQ(detected->inventory.gpus_size(), 2);
  EXPECT_THAT(detected->inventory.gpus(0).nvlinks(), ElementsAre(0, 0));
  ASSERT_THAT(detected->notes, SizeIs(2));
  EXPECT_THAT(std::string(detected->notes[1].message()), HasSubstr("NVLinks unknown"));
}

}  // namespace
}  // namespace gangway::gpu
