// A coordinator listening on every address (--listen 0.0.0.0:PORT, the
// README's and the units' own setting): ranks must be told an address that
// reaches it from their node, never 127.0.0.1 of the coordinator's.
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

// The agent reaches the coordinator at 127.0.0.2 (another address of this
// machine, as another node's view of the head would be): its ranks get
// that address in GANGWAY_RDZV, which the agent's own session proves
// reaches the coordinator.
TEST(ListenIntegration, WildcardListenGivesRanksTheAddressTheirAgentUses) {
  ClusterOptions options;
  options.agents = 1;
  options.agent_coordinator_host = "127.0.0.2";
  options.coordinator_flags.push_back("--insecure");  // plaintext on every address, on purpose
  Cluster cluster(options);
  ASSERT_TRUE(cluster.StartCoordinator("0.0.0.0:0"));
  ASSERT_TRUE(cluster.StartAgent(0));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 1; }, 10s));
  const std::string port = cluster.address().substr(cluster.address().rfind(':') + 1);

  const std::string id = cluster.Submit(
      "name: where\nreplicas: 1\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "command: [sh, -c, 'echo rdzv=$GANGWAY_RDZV']\n");
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s));
  RunResult logs = cluster.Cli({"logs", id, "--rank", "0"});
  ASSERT_EQ(logs.code, 0) << logs.err;
  EXPECT_NE(logs.out.find("rdzv=127.0.0.2:" + port + "\n"), std::string::npos) << logs.out;
  EXPECT_EQ(logs.out.find("rdzv=127.0.0.1"), std::string::npos) << logs.out;
}

}  // namespace
}  // namespace gangway::itest
