// The daemons as systemd runs them (Type=notify): a NOTIFY_SOCKET this
// test listens on gets READY=1 once each serves, WATCHDOG=1 about every
// half WATCHDOG_USEC, and STOPPING=1 on SIGTERM. And what SIGTERM does:
// the coordinator closes its sessions with every acknowledged job kept;
// the agent leaves its ranks to their keepers (--on-stop=leave) or waits
// for them, taking no new work (--on-stop=drain).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

// A unix datagram socket, as systemd's notify socket is.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "cannot bind " << path << ": " << std::strerror(errno);
    }
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& path() const { return path_; }

  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> Next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

  // Waits for a datagram equal to `want`; every one seen on the way goes to
  // `seen`.
  bool WaitFor(const std::string& want, std::chrono::milliseconds timeout,
               std::vector<std::string>* seen = nullptr) {
    const auto end = SteadyClock::now() + timeout;
    while (SteadyClock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now());
      std::optional<std::string> msg = Next(std::max(left, std::chrono::milliseconds(1)));
      if (!msg) continue;
      if (seen) seen->push_back(*msg);
      if (*msg == want) return true;
    }
    return false;
  }

  // The WATCHDOG=1 datagrams in the next `window`.
  int CountWatchdogs(std::chrono::milliseconds window) {
    int n = 0;
    const auto end = SteadyClock::now() + window;
    while (SteadyClock::now() < end) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - SteadyClock::now());
      std::optional<std::string> msg = Next(std::max(left, std::chrono::milliseconds(1)));
      if (msg && *msg == "WATCHDOG=1") ++n;
    }
    return n;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// 400 ms: a ping every 200 ms, ten in a 2 s window. The bounds are loose
// (a loaded machine delays pings; none at all, or a flood, is the bug).
constexpr char kWatchdogUsec[] = "400000";

void ExpectNotifyProtocol(NotifySocket& sock, Process& daemon) {
  std::vector<std::string> seen;
  ASSERT_TRUE(sock.WaitFor("READY=1", 20s, &seen)) << "stderr:\n" << daemon.Stderr();
  const int pings = sock.CountWatchdogs(2s);
  EXPECT_GE(pings, 3) << "WATCHDOG=1 every ~200 ms expected";
  EXPECT_LE(pings, 30) << "WATCHDOG=1 every ~200 ms expected";
  daemon.Signal(SIGTERM);
  EXPECT_TRUE(sock.WaitFor("STOPPING=1", 10s));
  EXPECT_EQ(daemon.Wait(10s), std::optional<int>(0)) << daemon.Stderr();
}

TEST(SystemdNotify, CoordinatorSendsReadyWatchdogAndStopping) {
  TempDir dir;
  NotifySocket sock(dir.Sub("notify.sock"));
  std::unique_ptr<Process> coordinator =
      Process::Spawn({CoordinatorBinary(), "--listen", "127.0.0.1:0", "--state", dir.Sub("state")},
                     dir.Sub("coordinator.out"), dir.Sub("coordinator.log"),
                     {{"NOTIFY_SOCKET", sock.path()}, {"WATCHDOG_USEC", kWatchdogUsec}});
  ASSERT_TRUE(coordinator);
  ExpectNotifyProtocol(sock, *coordinator);
}

TEST(SystemdNotify, AgentSendsReadyWatchdogAndStopping) {
  ClusterOptions options;
  options.agents = 0;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.StartCoordinator());
  NotifySocket sock(cluster.dir().Sub("notify.sock"));
  ASSERT_TRUE(
      cluster.StartAgent(0, {{"NOTIFY_SOCKET", sock.path()}, {"WATCHDOG_USEC", kWatchdogUsec}}));
  ExpectNotifyProtocol(sock, cluster.agent(0));
}

TEST(SystemdNotify, AWatchdogMeantForAnotherProcessIsNotFed) {
  TempDir dir;
  NotifySocket sock(dir.Sub("notify.sock"));
  std::unique_ptr<Process> coordinator = Process::Spawn(
      {CoordinatorBinary(), "--listen", "127.0.0.1:0", "--state", dir.Sub("state")},
      dir.Sub("coordinator.out"), dir.Sub("coordinator.log"),
      {{"NOTIFY_SOCKET", sock.path()}, {"WATCHDOG_USEC", kWatchdogUsec}, {"WATCHDOG_PID", "1"}});
  ASSERT_TRUE(coordinator);
  ASSERT_TRUE(sock.WaitFor("READY=1", 20s));
  EXPECT_EQ(sock.CountWatchdogs(1s), 0);
}

TEST(SystemdNotify, ABadWatchdogUsecIsRefusedNamingIt) {
  TempDir dir;
  RunResult r = RunCommand(dir, {CoordinatorBinary(), "--state", dir.Sub("state")}, 20s,
                           {{"WATCHDOG_USEC", "soon"}});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("WATCHDOG_USEC"), std::string::npos) << r.err;
}

// A rank that runs until the test creates its go-file.
std::string WaitingJob(const std::string& name, const std::string& go) {
  return "name: " + name +
         "\nresources:\n  cpus: 1\n  memory: 64Mi\ncommand: [sh, -c]\nargs:\n  - 'while [ ! -e " +
         go + " ]; do sleep 0.05; done'\n";
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST(GracefulStop, CoordinatorSigtermClosesSessionsAndKeepsAcknowledgedJobs) {
  ClusterOptions options;
  options.agents = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string go = cluster.dir().Sub("go");
  const std::string id = cluster.Submit(WaitingJob("held", go));
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 20s));
  const std::string address = cluster.address();

  cluster.coordinator().Signal(SIGTERM);
  // Exits promptly, not at its callers' deadlines: the agent's session is
  // closed by the coordinator rather than left to time out.
  EXPECT_EQ(cluster.coordinator().Wait(10s), std::optional<int>(0));
  EXPECT_FALSE(cluster.agent(0).exited()) << "the agent must outlive the coordinator";

  ASSERT_TRUE(cluster.StartCoordinator(address));
  ASSERT_TRUE(WaitFor([&] { return cluster.ReadyNodes() == 1; }, 20s));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  EXPECT_EQ(job.attempt(), 1) << "the rank ran on across the coordinator's restart";
  WriteFile(go, "");
  EXPECT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s));
}

TEST(GracefulStop, AgentOnStopLeaveLeavesRanksToTheirKeepers) {
  ClusterOptions options;
  options.agents = 1;
  options.agent_flags = {"--on-stop", "leave"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string go = cluster.dir().Sub("go");
  const std::string id = cluster.Submit(WaitingJob("left", go));
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 20s));
  std::vector<pid_t> ranks;
  ASSERT_TRUE(WaitFor([&] { return !(ranks = cluster.JobRanks(id)).empty(); }, 10s));

  cluster.agent(0).Signal(SIGTERM);
  EXPECT_EQ(cluster.agent(0).Wait(10s), std::optional<int>(0));
  EXPECT_TRUE(Alive(ranks[0])) << "the rank died with its agent";

  ASSERT_TRUE(cluster.StartAgent(0));
  v1::Job job;
  ASSERT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_RUNNING, 10s, &job));
  EXPECT_EQ(job.attempt(), 1);
  EXPECT_EQ(job.ranks(0).pid(), ranks[0]) << "the new agent adopted the same rank";
  WriteFile(go, "");
  EXPECT_TRUE(cluster.WaitForState(id, v1::JOB_STATE_SUCCEEDED, 20s));
}

TEST(GracefulStop, AgentOnStopDrainTakesNoNewWorkAndExitsOnceItsRanksEnded) {
  ClusterOptions options;
  options.agents = 1;
  options.agent_flags = {"--on-stop", "drain"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const std::string go = cluster.dir().Sub("go");
  const std::string running = cluster.Submit(WaitingJob("running", go));
  ASSERT_TRUE(cluster.WaitForState(running, v1::JOB_STATE_RUNNING, 20s));

  cluster.agent(0).Signal(SIGTERM);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::optional<v1::Node> n = cluster.GetNode(Cluster::NodeName(0));
        return n && n->draining();
      },
      10s));
  const std::string later = cluster.Submit(WaitingJob("later", go + "-never"));
  EXPECT_TRUE(HoldsFor(
      [&] {
        std::optional<v1::Job> j = cluster.GetJob(later);
        return !cluster.agent(0).exited() && j && j->state() == v1::JOB_STATE_PENDING;
      },
      1500ms))
      << "the draining agent exited with a rank running, or took new work";

  WriteFile(go, "");
  EXPECT_EQ(cluster.agent(0).Wait(20s), std::optional<int>(0)) << cluster.agent(0).Stderr();
  std::optional<v1::Job> done = cluster.GetJob(running);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED)
      << "its exit was reported before the agent left";
}

TEST(GracefulStop, AnUnknownOnStopIsRefused) {
  TempDir dir;
  RunResult r = RunCommand(dir, {AgentBinary(), "--on-stop", "wait"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--on-stop"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace gangway::itest
