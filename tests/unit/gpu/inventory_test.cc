// Node inventory from the shipped XML topologies and from this machine.
// Nothing here needs a GPU: the XML files stand in for GPU nodes, and the
// live checks only assert what holds on any machine.
#include "gpu/inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace gangway::gpu {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kGi = int64_t{1} << 30;

std::string Topology(const std::string& name) {
  return std::string(GANGWAY_SOURCE_DIR) + "/tests/data/topologies/" + name;
}

// A scratch directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("gangway_inventory_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string path = (path_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::string Copy(const std::string& from, const std::string& name) const {
    const std::string path = (path_ / name).string();
    std::filesystem::copy_file(from, path);
    return path;
  }

 private:
  std::filesystem::path path_;
};

v1::NodeInventory Load(const std::string& xml) {
  InventoryOptions options;
  options.topology_xml = xml;
  auto inventory = DetectInventory(options);
  EXPECT_TRUE(inventory.ok()) << inventory.status();
  return inventory.ok() ? *inventory : v1::NodeInventory();
}

std::vector<std::string> BusIds(const v1::NodeInventory& inventory) {
  std::vector<std::string> out;
  for (const auto& gpu : inventory.gpus()) out.push_back(gpu.pci_bus_id());
  return out;
}

TEST(InventoryXmlTest, DgxLikeBoxCpusMemoryAndNuma) {
  const v1::NodeInventory inv = Load(Topology("dgx_like.xml"));
  EXPECT_EQ(inv.milli_cpus(), 16'000);  // 2 sockets x 4 cores x 2 threads
  EXPECT_EQ(inv.memory_bytes(), 1024 * kGi);
  EXPECT_EQ(inv.numa_nodes(), 2);
  EXPECT_EQ(inv.source(), "topology:" + Topology("dgx_like.xml"));
}

TEST(InventoryXmlTest, DgxLikeBoxHasEightGpusInPciOrder) {
  const v1::NodeInventory inv = Load(Topology("dgx_like.xml"));
  // Not the NVSwitch (NVIDIA, class 0680), the NICs, nor the BMC's VGA.
  EXPECT_THAT(BusIds(inv), ElementsAre("00000000:07:00.0", "00000000:0F:00.0", "00000000:47:00.0",
                                       "00000000:4E:00.0", "00000000:87:00.0", "00000000:90:00.0",
                                       "00000000:B7:00.0", "00000000:BD:00.0"));
  for (int i = 0; i < inv.gpus_size(); ++i) {
    const v1::GpuInfo& gpu = inv.gpus(i);
    EXPECT_EQ(gpu.index(), i);
    // From the hwloc CUDA and NVML OS devices in the file.
    EXPECT_EQ(gpu.model(), "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(gpu.memory_bytes(), 80 * kGi);
    EXPECT_EQ(gpu.uuid(), "GPU-00000000-0000-4000-8000-00000000000" + std::to_string(i));
    EXPECT_EQ(gpu.compute_capability(), "");  // hwloc does not record it
  }
}

TEST(InventoryXmlTest, DgxLikeBoxGpuLocality) {
  const v1::NodeInventory inv = Load(Topology("dgx_like.xml"));
  ASSERT_EQ(inv.gpus_size(), 8);
  for (int i = 0; i < 8; ++i) {
    const v1::GpuInfo& gpu = inv.gpus(i);
    EXPECT_EQ(gpu.numa_node(), i < 4 ? 0 : 1) << i;
    EXPECT_EQ(gpu.cpu_set(), i < 4 ? "0-3,8-11" : "4-7,12-15") << i;
  }
}

TEST(InventoryXmlTest, DgxLikeBoxLinksFromTheSidecar) {
  const v1::NodeInventory inv = Load(Topology("dgx_like.xml"));
  ASSERT_EQ(inv.gpus_size(), 8);
  for (int i = 0; i < 8; ++i) {
    ASSERT_THAT(inv.gpus(i).nvlinks(), SizeIs(8));
    for (int j = 0; j < 8; ++j) {
      EXPECT_EQ(inv.gpus(i).nvlinks(j), i != j && i / 2 == j / 2 ? 12 : 0) << i << "," << j;
    }
  }
}

TEST(InventoryXmlTest, PcieBox) {
  const v1::NodeInventory inv = Load(Topology("pcie_box.xml"));
  EXPECT_EQ(inv.milli_cpus(), 8'000);
  EXPECT_EQ(inv.memory_bytes(), 64 * kGi);
  EXPECT_EQ(inv.numa_nodes(), 1);
  // VGA-class GPUs count; their HDMI audio function (also NVIDIA) does not.
  EXPECT_THAT(BusIds(inv), ElementsAre("00000000:01:00.0", "00000000:02:00.0"));
  for (const v1::GpuInfo& gpu : inv.gpus()) {
    EXPECT_EQ(gpu.model(), "GA102GL [RTX A6000]");  // the PCI name: no OS devices
    EXPECT_EQ(gpu.uuid(), "");
    EXPECT_EQ(gpu.numa_node(), 0);
    EXPECT_EQ(gpu.cpu_set(), "0-7");
    EXPECT_THAT(gpu.nvlinks(), ElementsAre(0, 0));  // no sidecar: no NVLink
  }
}

std::vector<std::string> Switches(const v1::NodeInventory& inventory) {
  std::vector<std::string> out;
  for (const auto& gpu : inventory.gpus()) out.push_back(gpu.pci_switch());
  return out;
}

TEST(InventoryXmlTest, PciSwitchIsTheTopmostBridgeBelowTheHostBridge) {
  // One bridge level: each pair's bridge.
  EXPECT_THAT(
      Switches(Load(Topology("dgx_like.xml"))),
      ElementsAre("00000000:02:00.0", "00000000:02:00.0", "00000000:42:00.0", "00000000:42:00.0",
                  "00000000:82:00.0", "00000000:82:00.0", "00000000:B2:00.0", "00000000:B2:00.0"));
  // A root port per GPU: nothing shared below the CPU.
  EXPECT_THAT(Switches(Load(Topology("pcie_box.xml"))),
              ElementsAre("00000000:00:01.1", "00000000:00:03.1"));
  // Root port, switch upstream port, downstream port: the root port names
  // the switch's whole subtree.
  EXPECT_THAT(
      Switches(Load(Topology("pcie_switches.xml"))),
      ElementsAre("00000000:00:01.1", "00000000:00:01.1", "00000000:00:03.1", "00000000:00:03.1",
                  "00000000:80:01.1", "00000000:80:01.1", "00000000:80:03.1", "00000000:80:03.1"));
}

TEST(InventoryXmlTest, PcieSwitchServer) {
  const v1::NodeInventory inv = Load(Topology("pcie_switches.xml"));
  EXPECT_EQ(inv.milli_cpus(), 16'000);
  EXPECT_EQ(inv.numa_nodes(), 2);
  ASSERT_EQ(inv.gpus_size(), 8);
  for (int i = 0; i < 8; ++i) {
    const v1::GpuInfo& gpu = inv.gpus(i);
    EXPECT_EQ(gpu.model(), "AD102GL [L40S]");
    EXPECT_EQ(gpu.numa_node(), i / 4) << i;
    EXPECT_EQ(gpu.cpu_set(), i < 4 ? "0-7" : "8-15") << i;
    EXPECT_THAT(gpu.nvlinks(), SizeIs(8));
    EXPECT_THAT(gpu.peer_access(), IsEmpty()) << "no driver is asked for a file";
  }
}

TEST(InventoryXmlTest, ExplicitLinksFileReplacesTheSidecar) {
  ScratchDir dir;
  InventoryOptions options;
  options.topology_xml = Topology("pcie_box.xml");
  options.links_file = dir.Write("bridge.links", "0 1 4\n");
  auto inv = DetectInventory(options);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->gpus(0).nvlinks(), ElementsAre(0, 4));
  EXPECT_THAT(inv->gpus(1).nvlinks(), ElementsAre(4, 0));
}

TEST(InventoryXmlTest, MissingTopologyIsNotFound) {
  InventoryOptions options;
  options.topology_xml = "/nonexistent/box.xml";
  auto inv = DetectInventory(options);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(inv.status().message()),
              AllOf(HasSubstr("/nonexistent/box.xml"), HasSubstr("no such file")));
}

TEST(InventoryXmlTest, GarbageTopologyIsInvalidArgument) {
  ScratchDir dir;
  for (const char* text : {"this is not xml\n", "<topology version=\"2.0\"><object",
                           "<?xml version=\"1.0\"?>\n<html><body/></html>\n", ""}) {
    InventoryOptions options;
    options.topology_xml = dir.Write("garbage.xml", text);
    auto inv = DetectInventory(options);
    ASSERT_FALSE(inv.ok()) << text;
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(inv.status().message()),
                AllOf(HasSubstr("garbage.xml"), HasSubstr("not an hwloc XML topology")));
  }
}

TEST(InventoryXmlTest, DirectoryIsNotATopology) {
  ScratchDir dir;
  InventoryOptions options;
  options.topology_xml = std::filesystem::temp_directory_path().string();
  EXPECT_FALSE(DetectInventory(options).ok());
}

TEST(InventoryXmlTest, BadSidecarIsAnErrorNamingItsLine) {
  ScratchDir dir;
  InventoryOptions options;
  options.topology_xml = dir.Copy(Topology("pcie_box.xml"), "box.xml");
  dir.Write("box.links", "0 1 4\n0 2 4\n");
  auto inv = DetectInventory(options);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(inv.status().message()),
              AllOf(HasSubstr("box.links:2"), HasSubstr("GPU 2 does not exist")));
}

TEST(InventoryXmlTest, MissingExplicitLinksFileIsNotFound) {
  InventoryOptions options;
  options.topology_xml = Topology("pcie_box.xml");
  options.links_file = "/nonexistent/box.links";
  EXPECT_EQ(DetectInventory(options).status().code(), absl::StatusCode::kNotFound);
}

TEST(InventoryXmlTest, NoDriverIsAskedForAFile) {
  // A file describes another machine: even a (fake) driver must not add GPUs.
  InventoryOptions options;
  options.topology_xml = Topology("pcie_box.xml");
  options.cuda_library = "/nonexistent/libcuda.so.1";
  options.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok());
  EXPECT_THAT(detected->notes, IsEmpty());
  EXPECT_EQ(detected->inventory.gpus_size(), 2);
}

TEST(InventoryLiveTest, ThisMachineHasCpusMemoryAndNoGpuWithoutADriver) {
  InventoryOptions options;
  options.cuda_library = "/nonexistent/libcuda.so.1";
  options.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok()) << detected.status();
  const v1::NodeInventory& inv = detected->inventory;
  EXPECT_GE(inv.milli_cpus(), 1000);
  EXPECT_EQ(inv.milli_cpus() % 1000, 0);
  EXPECT_GT(inv.memory_bytes(), 0);
  EXPECT_GE(inv.numa_nodes(), 1);
  EXPECT_EQ(inv.source(), "hwloc");
  EXPECT_FALSE(inv.hostname().empty());
  EXPECT_EQ(inv.gpus_size(), 0);
  // Both probes say why, and neither is an error of Detect.
  ASSERT_THAT(detected->notes, SizeIs(2));
  for (const absl::Status& note : detected->notes) {
    EXPECT_EQ(note.code(), absl::StatusCode::kNotFound);
  }
  EXPECT_THAT(std::string(detected->notes[0].message()),
              AllOf(HasSubstr("CUDA"), HasSubstr("/nonexistent/libcuda.so.1")));
  EXPECT_THAT(std::string(detected->notes[1].message()),
              AllOf(HasSubstr("NVML"), HasSubstr("/nonexistent/libnvidia-ml.so.1")));
}

TEST(InventoryLiveTest, DefaultProbeNeverFailsDetection) {
  // Whatever this machine has (no driver in CI; a real one on a GPU node),
  // detection succeeds and every GPU it reports is complete.
  auto detected = Detect({});
  ASSERT_TRUE(detected.ok()) << detected.status();
  for (const v1::GpuInfo& gpu : detected->inventory.gpus()) {
    EXPECT_FALSE(gpu.pci_bus_id().empty());
    EXPECT_FALSE(gpu.model().empty());
    EXPECT_THAT(gpu.nvlinks(), SizeIs(detected->inventory.gpus_size()));
  }
}

TEST(InventoryLiveTest, ProbeDriverOffMeansNoGpus) {
  InventoryOptions options;
  options.probe_driver = false;
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok()) << detected.status();
  EXPECT_EQ(detected->inventory.gpus_size(), 0);
  EXPECT_THAT(detected->notes, IsEmpty());
}

TEST(InventoryLiveTest, CudaStubLibraryGivesZeroGpus) {
  // The toolkit's link stub loads but answers every call with "stub
  // library": the shape of a node with the toolkit and no driver.
  const std::string stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  if (!std::filesystem::exists(stub)) GTEST_SKIP() << "no CUDA toolkit stub at " << stub;
  InventoryOptions options;
  options.cuda_library = stub;
  options.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  auto detected = Detect(options);
  ASSERT_TRUE(detected.ok()) << detected.status();
  EXPECT_EQ(detected->inventory.gpus_size(), 0);
  ASSERT_THAT(detected->notes, SizeIs(2));
  EXPECT_EQ(detected->notes[0].code(), absl::StatusCode::kFailedPrecondition) << detected->notes[0];
  EXPECT_THAT(std::string(detected->notes[0].message()), HasSubstr("cuInit"));
}

TEST(CpuSetForGpusTest, UnionOfTheGpusCpus) {
  const v1::NodeInventory inv = Load(Topology("dgx_like.xml"));
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{0, 1}), "0-3,8-11");
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{3, 4}), "0-15");
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{7}), "4-7,12-15");
}

TEST(CpuSetForGpusTest, UnknownGpuOrLocalityMeansDoNotPin) {
  v1::NodeInventory inv = Load(Topology("dgx_like.xml"));
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{}), "");
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{0, 8}), "");
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{-1}), "");
  inv.mutable_gpus(1)->set_cpu_set("");
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{0, 1}), "");
  inv.mutable_gpus(1)->set_cpu_set("garbage");
  EXPECT_EQ(CpuSetForGpus(inv, std::vector<int>{1}), "");
}

}  // namespace
}  // namespace gangway::gpu
