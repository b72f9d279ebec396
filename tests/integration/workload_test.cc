// Ranks as the node's workload user: never root by default, a clean
// environment, and clear reasons in the rank's log when the user cannot
// run what a job asks for. Real binaries on loopback.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAgentSecret[] = "GANGWAY_IT_AGENT_SECRET";

ClusterOptions OneAgent() {
  ClusterOptions options;
  options.agents = 1;
  return options;
}

// One coordinator and one agent whose environment holds a variable that
// must never reach a rank.
::testing::AssertionResult StartOneNode(Cluster& cluster) {
  if (auto r = cluster.StartCoordinator(); !r) return r;
  if (auto r = cluster.StartAgent(0, {{kAgentSecret, "s3cret"}}); !r) return r;
  if (!WaitFor([&] { return cluster.ReadyNodes() == 1; }, 10s)) {
    return ::testing::AssertionFailure() << "the agent did not become Ready";
  }
  return ::testing::AssertionSuccess();
}

std::string OneRankJob(const std::string& name, const std::string& command,
                       const std::string& extra = "") {
  return "name: " + name +
         "\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memory: 64Mi\n" + extra +
         "command: [" + command + "]\nrestartPolicy: Never\nactiveDeadlineSeconds: 60\n";
}

TEST(WorkloadIntegration, RanksRunUnprivilegedWithoutTheAgentsEnvironment) {
  Cluster cluster(OneAgent());
  ASSERT_TRUE(StartOneNode(cluster));
  const std::string id = cluster.Submit(
      "name: whoami\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "env:\n  FROM_THE_JOB: yes-it-is\n"
      "command: [sh, -c]\nargs:\n  - 'echo uid=$(id -u); env'\nrestartPolicy: Never\n");
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s, &job))
      << cluster.Logs(id, 0).value_or("(no log)");
  const std::string log = "\n" + cluster.Logs(id, 0).value_or("");
  EXPECT_THAT(log, HasSubstr("\nuid="));
  EXPECT_THAT(log, Not(HasSubstr("\nuid=0\n"))) << log;
  EXPECT_THAT(log, Not(HasSubstr(kAgentSecret))) << log;
  EXPECT_THAT(log, HasSubstr("\nFROM_THE_JOB=yes-it-is\n"));
  EXPECT_THAT(log, HasSubstr("\nGANGWAY_IT_TAG="));  // --pass-env
  EXPECT_THAT(log, HasSubstr("\nRANK=0\n"));
  EXPECT_THAT(log, HasSubstr("\nPATH="));
}

TEST(WorkloadIntegration, AJobAskingForRootFailsAndItsLogSaysWhy) {
  Cluster cluster(OneAgent());
  ASSERT_TRUE(StartOneNode(cluster));
  v1::Job submitted;
  grpc::Status s = cluster.SubmitYaml(OneRankJob("as-root", "id", "user: root\n"), &submitted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(submitted.id(), v1::JOB_STATE_FAILED, 20s, &job));
  EXPECT_THAT(cluster.Logs(submitted.id(), 0).value_or(""),
              HasSubstr("gangway: node node-0 does not allow jobs to run as 'root' "
                        "(gangway-agent --allow-user, --allow-root-workloads)"));
}

TEST(WorkloadIntegration, AJobRunsAsAUserTheNodeAllows) {
  if (::geteuid() != 0) GTEST_SKIP() << "an agent that is not root runs ranks as itself";
  // `daemon` (uid 1) exists on Debian and most distributions.
  if (::getpwnam("daemon") == nullptr) GTEST_SKIP() << "no 'daemon' account here";
  const std::string uid = std::to_string(::getpwnam("daemon")->pw_uid);
  ClusterOptions options = OneAgent();
  options.agent_flags = {"--allow-user", "daemon"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(OneRankJob("as-daemon", "id", "user: daemon\n"));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s, &job))
      << cluster.Logs(id, 0).value_or("(no log)");
  EXPECT_THAT(cluster.Logs(id, 0).value_or(""), HasSubstr("uid=" + uid + "(daemon)"));
}

TEST(WorkloadIntegration, UnderTlsRanksGetTheCoordinatorsCaAsPem) {
  ClusterOptions options = OneAgent();
  options.secure = true;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string id = cluster.Submit(
      "name: ca\nreplicas: 1\nprocsPerNode: 1\nresources:\n  cpus: 1\n  memory: 64Mi\n"
      "command: [sh, -c]\nargs:\n  - 'printf \"%s\" \"$GANGWAY_TLS_CA\"'\nrestartPolicy: Never\n");
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s, &job))
      << cluster.Logs(id, 0).value_or("(no log)");
  const std::string ca = ReadFile(cluster.CertPath("ca.crt"));
  ASSERT_THAT(ca, HasSubstr("-----BEGIN CERTIFICATE-----"));
  // The PEM text itself, not the agent's path to it.
  EXPECT_EQ(cluster.Logs(id, 0).value_or(""), ca);
}

TEST(WorkloadIntegration, ACommandThatTheWorkloadUserCannotReachFailsWithTheReason) {
  if (::geteuid() != 0) GTEST_SKIP() << "an agent that is not root runs ranks as itself";
  Cluster cluster(OneAgent());
  ASSERT_TRUE(StartOneNode(cluster));
  // A checkout under a private home.
  const std::string home = cluster.dir().Sub("home");
  std::filesystem::create_directories(home + "/src");
  ::chmod(home.c_str(), 0700);
  const std::string program = home + "/src/trainer";
  WriteFile(program, "#!/bin/sh\necho ran\n");
  ::chmod(program.c_str(), 0755);

  const std::string id = cluster.Submit(OneRankJob("private", program));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_FAILED, 20s, &job));
  const std::string log = cluster.Logs(id, 0).value_or("");
  EXPECT_THAT(log, HasSubstr("gangway: cannot execute '" + program + "' as user "));
  EXPECT_THAT(log, HasSubstr("): Permission denied; the file or a directory above it is not "
                             "readable by that user (a checkout under a private home?): make it "
                             "readable or choose --run-as"));
  EXPECT_THAT(log, Not(HasSubstr("ran")));
}

}  // namespace
}  // namespace gangway::itest
