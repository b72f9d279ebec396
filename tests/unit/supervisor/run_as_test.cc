// Ranks run as another user: identity, groups, environment and the clear
// errors when that user cannot reach the program or the working directory.
// These need root (to switch users); CI runs them as root.
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "agent/supervisor.h"
#include "agent/workload_user.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"

namespace gangway::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class RunAsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "switching a rank's user needs root (CI runs as root)";
    absl::StatusOr<UserIdentity> nobody = LookupUser("nobody");
    if (!nobody.ok()) GTEST_SKIP() << "no 'nobody' account here: " << nobody.status();
    nobody_ = *nobody;
    // A private directory (mkdtemp makes it 0700), as a checkout under
    // /root would be: nobody cannot enter it.
    std::string tmpl = (fs::path(::testing::TempDir()) / "run_as_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (steady_clock::now() >= deadline) return false;
      io_.run_one_for(milliseconds(10));
    }
    return true;
  }

  LaunchRequest AsNobody(std::vector<std::string> argv, const std::string& log = "rank.log") {
    LaunchRequest request;
    request.argv = std::move(argv);
    request.log_path = (dir_ / log).string();
    request.user = nobody_;
    return request;
  }

  // Launches and waits for the exit; the log's contents.
  std::string RunToExit(Supervisor& supervisor, const LaunchRequest& request) {
    absl::StatusOr<pid_t> pid = supervisor.Launch(request);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return "";
    EXPECT_TRUE(RunUntil([&] { return exits_.contains(*pid); }));
    if (exits_.contains(*pid)) {
      EXPECT_EQ(exits_[*pid].front().exit_code, 0);
    }
    return ReadFile(request.log_path);
  }

  UserIdentity nobody_;
  fs::path dir_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::map<pid_t, std::vector<ExitInfo>> exits_;
  Supervisor supervisor_{io_,
                         [this](pid_t pid, const ExitInfo& info) { exits_[pid].push_back(info); }};
};

TEST_F(RunAsTest, RankHasTheUsersIdsAndNoSupplementaryGroups) {
  // The test process holds extra groups, as an agent in `disk` or `docker`
  // would: the rank must not keep them.
  std::vector<gid_t> saved(static_cast<size_t>(std::max(0, ::getgroups(0, nullptr))));
  ASSERT_GE(::getgroups(static_cast<int>(saved.size()), saved.data()), 0);
  const gid_t extra[] = {0, 6, 27};
  ASSERT_EQ(::setgroups(3, extra), 0);
  LaunchRequest request = AsNobody({"grep", "-E", "^(Uid|Gid|Groups):", "/proc/self/status"});
  const std::string status = RunToExit(supervisor_, request);
  ASSERT_EQ(::setgroups(saved.size(), saved.data()), 0);

  const std::string uid = std::to_string(nobody_.uid);
  const std::string gid = std::to_string(nobody_.gid);
  EXPECT_THAT(status, HasSubstr("Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\n"));
  EXPECT_THAT(status, HasSubstr("Gid:\t" + gid + "\t" + gid + "\t" + gid + "\t" + gid + "\n"));
  // No group after the tab (the kernel may leave a trailing space).
  const size_t groups = status.find("Groups:");
  ASSERT_NE(groups, std::string::npos) << status;
  const std::string rest = status.substr(groups + 7, status.find('\n', groups) - groups - 7);
  EXPECT_EQ(rest.find_first_not_of(" \t"), std::string::npos) << "groups left: " << rest;
}

TEST_F(RunAsTest, EnvironmentIsTheAllowlistAndTheUsersIdentity) {
  ::setenv("GANGWAY_RUN_AS_TEST_SECRET", "agent-only", 1);
  ::setenv("LANG", "C.UTF-8", 1);
  const std::string env = "\n" + RunToExit(supervisor_, AsNobody({"env"}));
  ::unsetenv("GANGWAY_RUN_AS_TEST_SECRET");
  EXPECT_THAT(env, Not(HasSubstr("GANGWAY_RUN_AS_TEST_SECRET")));
  EXPECT_THAT(env, HasSubstr("\nLANG=C.UTF-8\n"));
  EXPECT_THAT(env, HasSubstr("\nPATH="));
  EXPECT_THAT(env, HasSubstr("\nHOME=" + nobody_.home + "\n"));
  EXPECT_THAT(env, HasSubstr("\nUSER=nobody\n"));
  EXPECT_THAT(env, HasSubstr("\nLOGNAME=nobody\n"));
  EXPECT_THAT(env, HasSubstr("\nSHELL=" + nobody_.shell + "\n"));
}

TEST_F(RunAsTest, WithoutAWorkingDirItStartsInTheUsersHomeOrRoot) {
  const std::string cwd = RunToExit(supervisor_, AsNobody({"pwd", "-P"}));
  const std::string expected =
      ::access(nobody_.home.c_str(), X_OK) == 0 ? fs::canonical(nobody_.home).string() : "/";
  EXPECT_EQ(cwd, expected + "\n");
}

TEST_F(RunAsTest, ProgramUnderAPrivateDirectoryFailsWithTheReason) {
  fs::create_directories(dir_ / "build");
  const fs::path program = dir_ / "build" / "trainer";
  std::ofstream(program) << "#!/bin/sh\necho ran\n";
  ::chmod(program.c_str(), 0755);

  absl::StatusOr<pid_t> pid = supervisor_.Launch(AsNobody({program.string()}));
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string expected =
      "cannot execute '" + program.string() + "' as user nobody (uid " +
      std::to_string(nobody_.uid) +
      "): Permission denied; the file or a directory above it is not readable by that user (a "
      "checkout under a private home?): make it readable or choose --run-as";
  EXPECT_EQ(pid.status().message(), expected);
  EXPECT_EQ(ReadFile(dir_ / "rank.log"), "gangway: " + expected + "\n");

  // Found through PATH: the message names the path that was denied.
  LaunchRequest by_name = AsNobody({"trainer"}, "path.log");
  by_name.env = {{"PATH", (dir_ / "build").string() + ":/usr/bin:/bin"}};
  pid = supervisor_.Launch(by_name);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ReadFile(dir_ / "path.log"),
              HasSubstr("gangway: cannot execute '" + program.string() + "' as user nobody"));
  EXPECT_EQ(supervisor_.running(), 0u);
}

TEST_F(RunAsTest, PrivateWorkingDirFailsWithTheReason) {
  fs::create_directories(dir_ / "work");
  LaunchRequest request = AsNobody({"true"});
  request.working_dir = (dir_ / "work").string();
  absl::StatusOr<pid_t> pid = supervisor_.Launch(request);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string expected =
      "cannot chdir to '" + request.working_dir + "' as user nobody (uid " +
      std::to_string(nobody_.uid) +
      "): Permission denied; the directory or one above it is not accessible to that user (a "
      "checkout under a private home?): make it accessible or choose --run-as";
  EXPECT_EQ(pid.status().message(), expected);
  EXPECT_EQ(ReadFile(dir_ / "rank.log"), "gangway: " + expected + "\n");

  // Reachable once the directories above it are.
  ::chmod(dir_.c_str(), 0755);
  ::chmod((dir_ / "work").c_str(), 0755);
  request.argv = {"pwd", "-P"};
  EXPECT_EQ(RunToExit(supervisor_, request),
            ReadFile(dir_ / "rank.log").substr(0, ReadFile(dir_ / "rank.log").find('\n') + 1) +
                fs::canonical(dir_ / "work").string() + "\n");
}

TEST_F(RunAsTest, SameUserAsTheSupervisorIsNotSwitched) {
  // Root asking for root (gangway local as root, --allow-root-workloads):
  // nothing changes, the groups included.
  absl::StatusOr<UserIdentity> root = LookupUid(0);
  ASSERT_TRUE(root.ok()) << root.status();
  LaunchRequest request = AsNobody({"grep", "-E", "^Uid:", "/proc/self/status"});
  request.user = *root;
  EXPECT_THAT(RunToExit(supervisor_, request), HasSubstr("Uid:\t0\t0\t0\t0\n"));
}

}  // namespace
}  // namespace gangway::agent
