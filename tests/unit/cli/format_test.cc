// What `gangway nodes -o wide` says about one GPU.
#include "cli/format.h"

#include <gtest/gtest.h>

namespace gangway::cli {
namespace {

v1::GpuInfo Gpu() {
  v1::GpuInfo gpu;
  gpu.set_index(0);
  gpu.set_model("NVIDIA H100 80GB HBM3");
  gpu.set_numa_node(0);
  return gpu;
}

TEST(GpuDetailTest, ModelAndNumaAlone) {
  EXPECT_EQ(GpuDetail(Gpu()), "0:NVIDIA H100 80GB HBM3 numa0");
}

TEST(GpuDetailTest, SwitchNvlinksAndPciePeersWithTheirRank) {
  v1::GpuInfo gpu = Gpu();
  gpu.set_pci_switch("00000000:02:00.0");
  for (int links : {0, 12, 0, 0}) gpu.add_nvlinks(links);
  for (bool access : {false, true, true, false}) gpu.add_peer_access(access);
  for (int rank : {0, 0, 1, 0}) gpu.add_peer_performance_rank(rank);
  // GPU 1 is listed once, as an NVLink peer; 3 has no access.
  EXPECT_EQ(GpuDetail(gpu),
            "0:NVIDIA H100 80GB HBM3 numa0 pcie00000000:02:00.0 nvlink[1x12] p2p[2:r1]");
}

TEST(GpuDetailTest, PeerAccessWithoutRanks) {
  v1::GpuInfo gpu = Gpu();
  gpu.add_peer_access(false);
  gpu.add_peer_access(true);
  EXPECT_EQ(GpuDetail(gpu), "0:NVIDIA H100 80GB HBM3 numa0 p2p[1]");
}

}  // namespace
}  // namespace gangway::cli
