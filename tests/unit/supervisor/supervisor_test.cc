#include "agent/supervisor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"

namespace gangway::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

constexpr auto kDeadline = seconds(10);

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A pid that no longer runs anything. A killed orphan is reparented to an
// init that may never reap it, so a zombie counts as gone.
bool IsGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  char state = stat[paren + 2];
  return state == 'Z' || state == 'X';
}

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "supervisor_test.XXXXXX").string();
    dir_ = fs::path(::mkdtemp(tmpl.data()));
  }
  ~SupervisorTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs the io_context until `done` holds; false if kDeadline passes first.
  bool RunUntil(const std::function<bool()>& done, steady_clock::duration timeout = kDeadline) {
    const auto deadline = steady_clock::now() + timeout;
    while (!done()) {
      if (steady_clock::now() >= deadline) return false;
      io_.run_one_for(milliseconds(10));
    }
    return true;
  }

  // Lets queued handlers run for a while, to catch late or duplicate calls.
  void Drain(milliseconds how_long = milliseconds(100)) { io_.run_for(how_long); }

  std::optional<ExitInfo> WaitExit(pid_t pid) {
    if (!RunUntil([&] { return exits_.contains(pid); })) return std::nullopt;
    return exits_[pid].front();
  }

  LaunchRequest Sh(const std::string& script, const std::string& log = "rank.log") {
    LaunchRequest request;
    request.argv = {"sh", "-c", script};
    request.log_path = (dir_ / log).string();
    return request;
  }

  pid_t LaunchOk(const LaunchRequest& request) {
    absl::StatusOr<pid_t> pid = supervisor_.Launch(request);
    EXPECT_TRUE(pid.ok()) << pid.status();
    return pid.value_or(-1);
  }

  // Waits until the log's first line is complete and returns it as a pid.
  pid_t FirstLinePid(const std::string& log = "rank.log") {
    std::string text;
    EXPECT_TRUE(RunUntil([&] {
      text = ReadFile(dir_ / log);
      return text.find('\n') != std::string::npos;
    }));
    return static_cast<pid_t>(std::atoi(text.c_str()));
  }

  bool WaitForLog(const std::string& needle, const std::string& log = "rank.log") {
    return RunUntil([&] { return ReadFile(dir_ / log).find(needle) != std::string::npos; });
  }

  fs::path dir_;
  boost::asio::io_context io_;
  // Keeps run_one_for blocking while no child is watched.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::map<pid_t, std::vector<ExitInfo>> exits_;
  Supervisor supervisor_{io_,
                         [this](pid_t pid, const ExitInfo& info) { exits_[pid].push_back(info); }};
};

TEST_F(SupervisorTest, ReportsExitCodeZero) {
  LaunchRequest request;
  request.argv = {"true"};
  request.log_path = (dir_ / "rank.log").string();
  pid_t pid = LaunchOk(request);
  EXPECT_EQ(supervisor_.running(), 1u);
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(exit->signal, 0);
  EXPECT_EQ(supervisor_.running(), 0u);
}

TEST_F(SupervisorTest, ReportsExitCodeThree) {
  std::optional<ExitInfo> exit = WaitExit(LaunchOk(Sh("exit 3")));
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(exit->signal, 0);
}

TEST_F(SupervisorTest, ReportsDeathBySignalAs128PlusSignal) {
  pid_t killed = LaunchOk(Sh("kill -KILL $$"));
  pid_t termed = LaunchOk(Sh("kill -TERM $$"));
  std::optional<ExitInfo> exit = WaitExit(killed);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 9);
  EXPECT_EQ(exit->signal, SIGKILL);
  exit = WaitExit(termed);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 15);
  EXPECT_EQ(exit->signal, SIGTERM);
}

TEST_F(SupervisorTest, AppendsStdoutAndStderrToLogCreatingParentDirs) {
  const std::string log = "a/b/c/rank0.log";
  ASSERT_TRUE(WaitExit(LaunchOk(Sh("echo out; echo err >&2", log))).has_value());
  ASSERT_TRUE(WaitExit(LaunchOk(Sh("echo again >&2", log))).has_value());
  EXPECT_EQ(ReadFile(dir_ / log), "out\nerr\nagain\n");
}

TEST_F(SupervisorTest, StdinIsDevNull) {
  // `cat` would block forever on an inherited terminal or pipe.
  ASSERT_TRUE(WaitExit(LaunchOk(Sh("cat; echo eof"))).has_value());
  EXPECT_EQ(ReadFile(dir_ / "rank.log"), "eof\n");
}

TEST_F(SupervisorTest, InheritAllPassesEnvironmentWithOverrides) {
  // `gangway local`: the invoking user's whole environment.
  std::map<pid_t, std::vector<ExitInfo>> exits;
  EnvironmentOptions inherit;
  inherit.inherit_all = true;
  Supervisor local(
      io_, [&](pid_t pid, const ExitInfo& info) { exits[pid].push_back(info); }, inherit);
  ::setenv("GANGWAY_SUP_TEST_KEPT", "kept", 1);
  ::setenv("GANGWAY_SUP_TEST_OVERRIDE", "parent", 1);
  LaunchRequest request =
      Sh("echo \"$GANGWAY_SUP_TEST_KEPT|$GANGWAY_SUP_TEST_OVERRIDE|$GANGWAY_SUP_TEST_NEW\";"
         "[ -n \"$PATH\" ] && echo path-set");
  request.env = {{"GANGWAY_SUP_TEST_OVERRIDE", "child"}, {"GANGWAY_SUP_TEST_NEW", "new"}};
  absl::StatusOr<pid_t> pid = local.Launch(request);
  ::unsetenv("GANGWAY_SUP_TEST_KEPT");
  ::unsetenv("GANGWAY_SUP_TEST_OVERRIDE");
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_TRUE(RunUntil([&] { return exits.contains(*pid); }));
  EXPECT_EQ(exits[*pid].front().exit_code, 0);
  EXPECT_EQ(ReadFile(dir_ / "rank.log"), "kept|child|new\npath-set\n");
}

// The default: an allowlist of the supervisor's variables, the user's
// identity, then the request's variables; nothing else of the agent's.
TEST_F(SupervisorTest, CleanEnvironmentByDefault) {
  std::map<pid_t, std::vector<ExitInfo>> exits;
  EnvironmentOptions pass;
  pass.pass = {"GANGWAY_SUP_TEST_PASSED"};
  Supervisor clean(
      io_, [&](pid_t pid, const ExitInfo& info) { exits[pid].push_back(info); }, pass);
  ::setenv("GANGWAY_SUP_TEST_SECRET", "agent-only", 1);
  ::setenv("GANGWAY_SUP_TEST_PASSED", "passed", 1);
  ::setenv("LC_GANGWAY_TEST", "lc", 1);
  const char* home = std::getenv("HOME");
  const std::string saved_home = home ? home : "";
  const char* tz = std::getenv("TZ");
  const std::string saved_tz = tz ? tz : "";
  ::setenv("HOME", "/agent-home", 1);
  ::setenv("TZ", "UTC", 1);
  LaunchRequest request = Sh("env");
  request.env = {{"GANGWAY_SUP_TEST_NEW", "new"}, {"TZ", "Europe/Paris"}};
  absl::StatusOr<pid_t> pid = clean.Launch(request);
  ::unsetenv("GANGWAY_SUP_TEST_SECRET");
  ::unsetenv("GANGWAY_SUP_TEST_PASSED");
  ::unsetenv("LC_GANGWAY_TEST");
  home ? ::setenv("HOME", saved_home.c_str(), 1) : ::unsetenv("HOME");
  tz ? ::setenv("TZ", saved_tz.c_str(), 1) : ::unsetenv("TZ");
  ASSERT_TRUE(pid.ok()) << pid.status();
  ASSERT_TRUE(RunUntil([&] { return exits.contains(*pid); }));
  const std::string env = "\n" + ReadFile(dir_ / "rank.log");
  const UserIdentity me = CurrentUser();
  EXPECT_THAT(env, Not(HasSubstr("GANGWAY_SUP_TEST_SECRET")));
  EXPECT_THAT(env, Not(HasSubstr("/agent-home")));
  EXPECT_THAT(env, HasSubstr("\nGANGWAY_SUP_TEST_PASSED=passed\n"));
  EXPECT_THAT(env, HasSubstr("\nGANGWAY_SUP_TEST_NEW=new\n"));
  EXPECT_THAT(env, HasSubstr("\nTZ=Europe/Paris\n"));
  EXPECT_THAT(env, HasSubstr("\nLC_GANGWAY_TEST=lc\n"));
  EXPECT_THAT(env, HasSubstr("\nHOME=" + me.home + "\n"));
  EXPECT_THAT(env, HasSubstr("\nUSER=" + me.name + "\n"));
  EXPECT_THAT(env, HasSubstr("\nLOGNAME=" + me.name + "\n"));
  EXPECT_THAT(env, HasSubstr("\nPATH="));
}

TEST_F(SupervisorTest, RunsInWorkingDir) {
  fs::create_directories(dir_ / "work");
  LaunchRequest request = Sh("pwd -P");
  request.working_dir = (dir_ / "work").string();
  ASSERT_TRUE(WaitExit(LaunchOk(request)).has_value());
  EXPECT_EQ(ReadFile(dir_ / "rank.log"), fs::canonical(dir_ / "work").string() + "\n");
}

TEST_F(SupervisorTest, MissingWorkingDirIsFailedPrecondition) {
  LaunchRequest request = Sh("true");
  request.working_dir = (dir_ / "nowhere").string();
  absl::StatusOr<pid_t> pid = supervisor_.Launch(request);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ReadFile(dir_ / "rank.log"), HasSubstr("gangway: cannot chdir to"));
  EXPECT_EQ(supervisor_.running(), 0u);
}

TEST_F(SupervisorTest, StopEscalatesToSigkillAfterGrace) {
  pid_t pid = LaunchOk(Sh("trap '' TERM; echo ready; sleep 30"));
  ASSERT_TRUE(WaitForLog("ready"));  // TERM is ignored from here on
  const auto stopped_at = steady_clock::now();
  supervisor_.Stop(pid, milliseconds(300));
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 9);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_GE(steady_clock::now() - stopped_at, milliseconds(300));
}

TEST_F(SupervisorTest, StopOfChildThatHonoursTermExitsPromptly) {
  LaunchRequest request;
  request.argv = {"sleep", "30"};
  request.log_path = (dir_ / "rank.log").string();
  pid_t pid = LaunchOk(request);
  const auto stopped_at = steady_clock::now();
  supervisor_.Stop(pid, seconds(60));
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 15);
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_LT(steady_clock::now() - stopped_at, seconds(5));
}

TEST_F(SupervisorTest, ChildGetsDefaultSignalHandling) {
  // SIG_IGN and blocked masks survive exec; the supervisor must not pass
  // its own on, or Stop could never end a rank with SIGTERM.
  struct sigaction ignore {
  }, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGTERM, &ignore, &old_action), 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);
  LaunchRequest request;
  request.argv = {"sleep", "30"};
  request.log_path = (dir_ / "rank.log").string();
  pid_t pid = LaunchOk(request);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGTERM, &old_action, nullptr);

  supervisor_.Stop(pid, seconds(60));
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 15);
}

TEST_F(SupervisorTest, LeaderIsItsOwnProcessGroupAndSession) {
  LaunchRequest request;
  request.argv = {"sleep", "30"};
  request.log_path = (dir_ / "rank.log").string();
  pid_t pid = LaunchOk(request);
  EXPECT_EQ(::getpgid(pid), pid);
  EXPECT_EQ(::getsid(pid), pid);
  supervisor_.Stop(pid, milliseconds(0));
  EXPECT_TRUE(WaitExit(pid).has_value());
}

TEST_F(SupervisorTest, StopKillsTheWholeProcessGroup) {
  pid_t pid = LaunchOk(Sh("trap '' TERM; sleep 30 & echo $!; wait"));
  pid_t grandchild = FirstLinePid();
  ASSERT_GT(grandchild, 0);
  EXPECT_EQ(::getpgid(grandchild), pid);
  supervisor_.Stop(pid, milliseconds(200));
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 9);
  EXPECT_TRUE(RunUntil([&] { return IsGone(grandchild); }));
}

TEST_F(SupervisorTest, LeaderDyingOnTermTakesTermIgnoringGroupWithIt) {
  // Only the leader honours TERM; the rest of its group must not wait for
  // the grace period, let alone outlive it.
  pid_t pid = LaunchOk(Sh("(trap '' TERM; exec sleep 30) & echo $!; wait"));
  pid_t grandchild = FirstLinePid();
  ASSERT_GT(grandchild, 0);
  const auto stopped_at = steady_clock::now();
  supervisor_.Stop(pid, seconds(60));
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 15);
  EXPECT_TRUE(RunUntil([&] { return IsGone(grandchild); }));
  EXPECT_LT(steady_clock::now() - stopped_at, seconds(5));
}

TEST_F(SupervisorTest, LeaderExitingCleanlyLeavesNoGrandchildBehind) {
  pid_t pid = LaunchOk(Sh("sleep 30 & echo $!; exit 0"));
  std::optional<ExitInfo> exit = WaitExit(pid);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);
  pid_t grandchild = FirstLinePid();
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(RunUntil([&] { return IsGone(grandchild); }));
}

TEST_F(SupervisorTest, StopTwiceKeepsEarliestDeadline) {
  pid_t late_then_early = LaunchOk(Sh("trap '' TERM; echo ready; sleep 30", "a.log"));
  pid_t early_then_late = LaunchOk(Sh("trap '' TERM; echo ready; sleep 30", "b.log"));
  ASSERT_TRUE(WaitForLog("ready", "a.log"));
  ASSERT_TRUE(WaitForLog("ready", "b.log"));
  supervisor_.Stop(late_then_early, seconds(60));
  supervisor_.Stop(late_then_early, milliseconds(100));
  supervisor_.Stop(early_then_late, milliseconds(100));
  supervisor_.Stop(early_then_late, seconds(60));
  // Both within kDeadline, far below 60 s.
  std::optional<ExitInfo> exit = WaitExit(late_then_early);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 9);
  exit = WaitExit(early_then_late);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 128 + 9);
}

TEST_F(SupervisorTest, StopOfUnknownOrFinishedPidIsIgnored) {
  pid_t pid = LaunchOk(Sh("exit 0"));
  ASSERT_TRUE(WaitExit(pid).has_value());
  supervisor_.Stop(pid, milliseconds(0));
  supervisor_.Stop(0, milliseconds(0));  // kill(-0) would hit our own group
  supervisor_.Stop(0x3fffffff, milliseconds(0));
  Drain();
  EXPECT_EQ(exits_.size(), 1u);
  EXPECT_EQ(exits_[pid].size(), 1u);
}

TEST_F(SupervisorTest, TwoSupervisorsDoNotReapEachOthersChildren) {
  std::map<pid_t, std::vector<ExitInfo>> other_exits;
  Supervisor other(io_, [&](pid_t pid, const ExitInfo& info) { other_exits[pid].push_back(info); });
  std::map<pid_t, int> mine, theirs;  // pid -> expected exit code
  for (int i = 0; i < 10; ++i) {
    mine[LaunchOk(Sh("exit " + std::to_string(i)))] = i;
    absl::StatusOr<pid_t> pid = other.Launch(Sh("exit " + std::to_string(100 + i)));
    ASSERT_TRUE(pid.ok()) << pid.status();
    theirs[*pid] = 100 + i;
  }
  ASSERT_TRUE(RunUntil([&] { return exits_.size() == 10 && other_exits.size() == 10; }));
  Drain();
  for (const auto& [pid, code] : mine) {
    ASSERT_EQ(exits_[pid].size(), 1u) << pid;
    EXPECT_EQ(exits_[pid][0].exit_code, code);
  }
  for (const auto& [pid, code] : theirs) {
    ASSERT_EQ(other_exits[pid].size(), 1u) << pid;
    EXPECT_EQ(other_exits[pid][0].exit_code, code);
  }
  EXPECT_EQ(exits_.size(), 10u);
  EXPECT_EQ(other_exits.size(), 10u);
}

TEST_F(SupervisorTest, DestructorKillsAndReapsRunningChildren) {
  int callbacks = 0;
  auto supervisor = std::make_unique<Supervisor>(io_, [&](pid_t, const ExitInfo&) { ++callbacks; });
  absl::StatusOr<pid_t> plain = supervisor->Launch(Sh("exec sleep 30", "plain.log"));
  absl::StatusOr<pid_t> group = supervisor->Launch(Sh("trap '' TERM; sleep 30 & echo $!; wait"));
  ASSERT_TRUE(plain.ok() && group.ok());
  pid_t grandchild = FirstLinePid();
  ASSERT_GT(grandchild, 0);
  supervisor.reset();
  // Reaped before the destructor returned: no process and no zombie.
  for (pid_t pid : {*plain, *group}) {
    EXPECT_EQ(::kill(pid, 0), -1);
    EXPECT_EQ(errno, ESRCH);
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
    EXPECT_EQ(errno, ECHILD);
  }
  EXPECT_TRUE(RunUntil([&] { return IsGone(grandchild); }));
  Drain();  // aborted waits still queued must not call back
  EXPECT_EQ(callbacks, 0);
}

TEST_F(SupervisorTest, CannotExecuteIsFailedPreconditionAndLogged) {
  LaunchRequest missing;
  missing.argv = {"gangway-no-such-program-xyz", "arg"};
  missing.log_path = (dir_ / "missing.log").string();
  absl::StatusOr<pid_t> pid = supervisor_.Launch(missing);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(pid.status().message(), HasSubstr("cannot execute 'gangway-no-such-program-xyz'"));
  EXPECT_EQ(ReadFile(dir_ / "missing.log"),
            "gangway: cannot execute 'gangway-no-such-program-xyz': No such file or directory\n");

  const fs::path not_executable = dir_ / "script.sh";
  std::ofstream(not_executable) << "#!/bin/sh\necho hi\n";
  ::chmod(not_executable.c_str(), 0644);
  LaunchRequest denied;
  denied.argv = {not_executable.string()};
  denied.log_path = (dir_ / "denied.log").string();
  pid = supervisor_.Launch(denied);
  EXPECT_EQ(pid.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(ReadFile(dir_ / "denied.log"), HasSubstr("Permission denied"));

  EXPECT_EQ(supervisor_.running(), 0u);
  Drain();
  EXPECT_TRUE(exits_.empty());
}

TEST_F(SupervisorTest, EmptyArgvIsInvalidArgument) {
  LaunchRequest request;
  request.log_path = (dir_ / "rank.log").string();
  EXPECT_EQ(supervisor_.Launch(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SupervisorTest, AppliesCpuAffinity) {
  cpu_set_t allowed;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &allowed)) ++cpu;

  LaunchRequest request;
  request.argv = {"sleep", "30"};
  request.log_path = (dir_ / "rank.log").string();
  request.cpu_affinity = {cpu};
  pid_t pid = LaunchOk(request);
  cpu_set_t got;
  ASSERT_EQ(::sched_getaffinity(pid, sizeof(got), &got), 0);
  EXPECT_EQ(CPU_COUNT(&got), 1);
  EXPECT_TRUE(CPU_ISSET(cpu, &got));
  supervisor_.Stop(pid, milliseconds(0));
  ASSERT_TRUE(WaitExit(pid).has_value());

  // A child that may be dead already when the mask is applied.
  request.argv = {"true"};
  std::optional<ExitInfo> exit = WaitExit(LaunchOk(request));
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0);

  request.cpu_affinity = {-1};
  EXPECT_EQ(supervisor_.Launch(request).status().code(), absl::StatusCode::kInvalidArgument);
}

// The child allocates under MPOL_BIND to the nodes given, and the
// supervisor's own thread is back to the default policy afterwards.
TEST_F(SupervisorTest, BindsMemoryToNumaNodes) {
  LaunchRequest request;
  request.argv = {"sh", "-c", "grep -m1 -o 'bind:[0-9,-]*' /proc/self/numa_maps"};
  request.log_path = (dir_ / "numa.log").string();
  request.memory_nodes = {0};
  std::optional<ExitInfo> exit = WaitExit(LaunchOk(request));
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->exit_code, 0) << ReadFile(request.log_path);
  EXPECT_NE(ReadFile(request.log_path).find("bind:0"), std::string::npos)
      << ReadFile(request.log_path);

  int mode = -1;
  unsigned long mask[16] = {};
  ASSERT_EQ(::syscall(SYS_get_mempolicy, &mode, mask, 1024, nullptr, 0), 0);
  EXPECT_EQ(mode, 0);  // MPOL_DEFAULT

  request.memory_nodes = {-1};
  EXPECT_EQ(supervisor_.Launch(request).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SupervisorTest, ManyConcurrentChildrenAreEachReportedOnce) {
  constexpr int kChildren = 200;
  LaunchRequest request;
  request.argv = {"true"};
  request.log_path = (dir_ / "many.log").string();
  std::vector<pid_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    absl::StatusOr<pid_t> pid = supervisor_.Launch(request);
    ASSERT_TRUE(pid.ok()) << pid.status();
    pids.push_back(*pid);
  }
  ASSERT_TRUE(RunUntil([&] { return exits_.size() == kChildren; }));
  Drain();
  EXPECT_EQ(exits_.size(), static_cast<size_t>(kChildren));
  for (pid_t pid : pids) {
    ASSERT_EQ(exits_[pid].size(), 1u) << pid;
    EXPECT_EQ(exits_[pid][0].exit_code, 0);
  }
  EXPECT_EQ(supervisor_.running(), 0u);
}

TEST_F(SupervisorTest, CallbackMayLaunchAgain) {
  std::vector<int> codes;
  std::unique_ptr<Supervisor> chained;
  chained = std::make_unique<Supervisor>(io_, [&](pid_t, const ExitInfo& info) {
    codes.push_back(info.exit_code);
    if (codes.size() < 3) {
      EXPECT_TRUE(chained->Launch(Sh("exit " + std::to_string(codes.size()))).ok());
    }
  });
  ASSERT_TRUE(chained->Launch(Sh("exit 0")).ok());
  ASSERT_TRUE(RunUntil([&] { return codes.size() == 3; }));
  EXPECT_THAT(codes, ElementsAre(0, 1, 2));
}

TEST_F(SupervisorTest, CallbackMayDestroyTheSupervisor) {
  std::unique_ptr<Supervisor> supervisor;
  int callbacks = 0;
  supervisor = std::make_unique<Supervisor>(io_, [&](pid_t, const ExitInfo&) {
    ++callbacks;
    supervisor.reset();
  });
  absl::StatusOr<pid_t> quick = supervisor->Launch(Sh("exit 0"));
  absl::StatusOr<pid_t> slow = supervisor->Launch(Sh("exec sleep 30", "slow.log"));
  ASSERT_TRUE(quick.ok() && slow.ok());
  ASSERT_TRUE(RunUntil([&] { return supervisor == nullptr; }));
  EXPECT_EQ(::kill(*slow, 0), -1);  // killed and reaped by the destructor
  Drain();
  EXPECT_EQ(callbacks, 1);
}

}  // namespace
}  // namespace gangway::agent
