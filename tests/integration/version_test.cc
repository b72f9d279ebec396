// `--version` on every binary and `gangway version`; the agent's version
// reaches the coordinator at registration and `gangway nodes -o wide`
// shows it, so mixed versions are visible during an upgrade.
#include <regex>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

// "PROGRAM 0.1.0 (commit 87bffc2a1b2c[-dirty], RelWithDebInfo)".
std::regex VersionLine(const std::string& program) {
  return std::regex("^" + program + R"( \d+\.\d+\.\d+ \(commit [0-9a-z.-]+, [A-Za-z+]*\)\n$)");
}

TEST(Version, EveryBinaryPrintsItsVersionCommitAndBuildType) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> binaries = {
      {CoordinatorBinary(), "gangway-coordinator"},
      {AgentBinary(), "gangway-agent"},
      {CliBinary(), "gangway"}};
  for (const auto& [path, program] : binaries) {
    RunResult r = RunCommand(dir, {path, "--version"});
    EXPECT_EQ(r.code, 0) << program << ": " << r.err;
    EXPECT_TRUE(std::regex_match(r.out, VersionLine(program))) << r.out;
  }
  RunResult r = RunCommand(dir, {CliBinary(), "version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_match(r.out, VersionLine("gangway"))) << r.out;
}

TEST(Version, NodesWideShowsTheVersionEachAgentRegisteredWith) {
  ClusterOptions options;
  options.agents = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  RunResult agent = RunCommand(cluster.dir(), {AgentBinary(), "--version"});
  ASSERT_EQ(agent.code, 0);
  const std::string version = agent.out.substr(0, agent.out.size() - 1);  // the newline

  std::optional<v1::Node> node = cluster.GetNode(Cluster::NodeName(0));
  ASSERT_TRUE(node);
  EXPECT_EQ(node->agent_version(), version);
  RunResult wide = cluster.Cli({"nodes", "-o", "wide"});
  ASSERT_EQ(wide.code, 0) << wide.err;
  EXPECT_NE(wide.out.find("VERSION"), std::string::npos) << wide.out;
  EXPECT_NE(wide.out.find(version), std::string::npos) << wide.out;
  RunResult narrow = cluster.Cli({"nodes"});
  EXPECT_EQ(narrow.out.find("VERSION"), std::string::npos) << narrow.out;
}

}  // namespace
}  // namespace gangway::itest
