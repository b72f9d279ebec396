// GPU scheduling on a laptop: agents that describe a shipped hwloc topology
// (`gangway-agent --topology FILE.xml`) register its GPUs, NUMA nodes,
// PCIe switches and NVLinks; the coordinator places GPU jobs on them by
// that wiring, and ranks see their GPUs in CUDA_VISIBLE_DEVICES. The ranks
// are ordinary processes here: no GPU is touched.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

std::string Topology(const std::string& name) {
  return SourcePath("tests/data/topologies/" + name);
}

// `agents` agents describing the topology `name`, each offering `cpus`.
ClusterOptions TopologyAgents(const std::string& name, int agents = 1,
                              const std::string& cpus = "2") {
  ClusterOptions options;
  options.agents = agents;
  options.agent_cpus = cpus;
  options.agent_flags = {"--topology", Topology(name)};
  return options;
}

// One replica of `procs` ranks with `gpus` GPUs each; every rank prints
// what CUDA would be told, then `then` (a shell command).
std::string GpuJob(const std::string& name, int procs, int gpus, const std::string& then) {
  return "name: " + name + "\nreplicas: 1\nprocsPerNode: " + std::to_string(procs) +
         "\nresources:\n  cpus: 1\n  memory: 64Mi\n  gpus: " + std::to_string(gpus) +
         "\ncommand: [sh, -c]\nargs:\n  - 'echo \"gpus=$CUDA_VISIBLE_DEVICES "
         "order=$CUDA_DEVICE_ORDER\"; " +
         then + "'\nrestartPolicy: Never\nactiveDeadlineSeconds: 120\n";
}

// The GPU indices of every rank of the job, rank order ("2,3" for 2 GPUs).
std::vector<std::string> RankGpus(const v1::Job& job) {
  std::vector<std::string> out;
  for (const auto& r : job.ranks()) {
    std::string joined;
    for (int g : r.gpu_indices()) joined += (joined.empty() ? "" : ",") + std::to_string(g);
    out.push_back(joined);
  }
  return out;
}

// A one-GPU job that holds GPU 0 of one node, then a job of `procs` x
// `gpus`: returns the second job once it succeeded, with its rank 0 log.
struct Placed {
  v1::Job job;
  std::string log0;
};

::testing::AssertionResult PlaceBesideABlocker(Cluster& cluster, int procs, int gpus, Placed* out) {
  const std::string blocker = cluster.Submit(GpuJob("blocker", 1, 1, "exec sleep 300"));
  v1::Job held;
  if (!cluster.WaitForState(blocker, v1::JOB_STATE_RUNNING, 10s, &held)) {
    return ::testing::AssertionFailure() << "the blocker did not start";
  }
  if (RankGpus(held) != std::vector<std::string>{"0"}) {
    return ::testing::AssertionFailure() << "the blocker got GPU " << RankGpus(held)[0];
  }
  const std::string id = cluster.Submit(GpuJob("placed", procs, gpus, "true"));
  if (!cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s, &out->job)) {
    return ::testing::AssertionFailure() << "the job did not succeed";
  }
  out->log0 = cluster.Logs(id, 0).value_or("");
  return ::testing::AssertionSuccess();
}

TEST(TopologyIntegration, NodesRegisterTheTopologysGpusAndWiring) {
  Cluster cluster(TopologyAgents("dgx_like.xml"));
  ASSERT_TRUE(cluster.Start());

  RunResult json = cluster.Cli({"nodes", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.err;
  v1::ListNodesResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &listed).ok()) << json.out;
  ASSERT_EQ(listed.nodes_size(), 1);
  const v1::NodeInventory& inv = listed.nodes(0).inventory();
  EXPECT_EQ(inv.milli_cpus(), 2000);  // --cpus 2 replaces the XML's cores...
  ASSERT_EQ(inv.gpus_size(), 8);      // ...and keeps its GPUs
  EXPECT_EQ(inv.numa_nodes(), 2);
  EXPECT_EQ(inv.source(), "topology:" + Topology("dgx_like.xml"));
  EXPECT_EQ(inv.gpus(5).numa_node(), 1);
  EXPECT_EQ(inv.gpus(5).pci_switch(), "00000000:82:00.0");
  EXPECT_EQ(inv.gpus(5).nvlinks(4), 12);

  RunResult wide = cluster.Cli({"nodes", "-o", "wide"});
  ASSERT_EQ(wide.code, 0) << wide.err;
  EXPECT_NE(wide.out.find("0/8"), std::string::npos) << wide.out;
  // The GPU table: node-0's GPU 5, its NUMA node, cores, bus id, switch and
  // NVLink peer, columns separated by runs of spaces.
  EXPECT_TRUE(std::regex_search(wide.out, std::regex("node-0 +5 +NVIDIA H100 80GB HBM3 +80Gi +1 +"
                                                     "4-7,12-15 +00000000:90:00.0 +"
                                                     "00000000:82:00.0 +4x12 +- +no")))
      << wide.out;
}

TEST(TopologyIntegration, NvlinkBoxPairSkipsTheBrokenPair) {
  Cluster cluster(TopologyAgents("dgx_like.xml"));
  ASSERT_TRUE(cluster.Start());
  Placed placed;
  ASSERT_TRUE(PlaceBesideABlocker(cluster, 1, 2, &placed));
  EXPECT_EQ(RankGpus(placed.job), std::vector<std::string>{"2,3"});  // linked, not 1-2
  EXPECT_NE(placed.log0.find("gpus=2,3 order=PCI_BUS_ID"), std::string::npos) << placed.log0;
}

TEST(TopologyIntegration, PcieSwitchServerKeepsRanksBelowOneSwitch) {
  // 4 cores: the blocker's and the two ranks'.
  Cluster cluster(TopologyAgents("pcie_switches.xml", 1, "4"));
  ASSERT_TRUE(cluster.Start());
  Placed placed;
  ASSERT_TRUE(PlaceBesideABlocker(cluster, 2, 1, &placed));
  EXPECT_EQ(RankGpus(placed.job), (std::vector<std::string>{"2", "3"}));
  EXPECT_NE(placed.log0.find("gpus=2 order=PCI_BUS_ID"), std::string::npos) << placed.log0;
}

TEST(TopologyIntegration, GangSpansTwoTopologyNodesOnlyWhenItMust) {
  Cluster cluster(TopologyAgents("dgx_like.xml", 2, "16"));
  ASSERT_TRUE(cluster.Start());
  // 8 GPUs fit one node: one node.
  const std::string one = cluster.Submit(GpuJob("one-node", 8, 1, "true"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(one, v1::JOB_STATE_SUCCEEDED, 20s, &job));
  ASSERT_EQ(job.ranks_size(), 8);
  for (const auto& r : job.ranks()) EXPECT_EQ(r.node(), job.ranks(0).node()) << r.rank();
  // Two replicas of 8 GPUs: one per node, each with all of its GPUs.
  const std::string two = cluster.Submit(
      "name: two-nodes\nreplicas: 2\nprocsPerNode: 4\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "  gpus: 2\ncommand: [sh, -c]\nargs:\n  - 'echo gpus=$CUDA_VISIBLE_DEVICES'\n"
      "restartPolicy: Never\nactiveDeadlineSeconds: 120\n");
  ASSERT_TRUE(cluster.WaitForState(two, v1::JOB_STATE_SUCCEEDED, 20s, &job));
  ASSERT_EQ(job.ranks_size(), 8);
  EXPECT_NE(job.ranks(0).node(), job.ranks(4).node());
  // Each rank's 2 GPUs are a linked pair.
  EXPECT_EQ(RankGpus(job),
            (std::vector<std::string>{"0,1", "2,3", "4,5", "6,7", "0,1", "2,3", "4,5", "6,7"}));
}

}  // namespace
}  // namespace gangway::itest
