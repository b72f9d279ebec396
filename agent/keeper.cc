#include "agent/keeper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/rank_log.h"
#include "agent/supervisor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/signal_set.hpp"
#include "boost/asio/steady_timer.hpp"
#include "gangway/v1/keeper.pb.h"

namespace gangway::agent {
namespace asio = boost::asio;

int64_t BootTimeMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string BootId() {
  absl::StatusOr<std::string> id = ReadWholeFile("/proc/sys/kernel/random/boot_id");
  return id.ok() ? std::string(absl::StripAsciiWhitespace(*id)) : std::string();
}

absl::Status WriteFileAtomic(const std::string& path, const std::string& data) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", tmp, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("write ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("rename ", tmp, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::Status WriteLease(const std::string& dir, const Lease& lease) {
  return WriteFileAtomic((std::filesystem::path(dir) / "lease").string(),
                         absl::StrCat(lease.deadline_ms, " ", lease.grace_ms, "\n"));
}

std::optional<Lease> ReadLease(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadWholeFile((std::filesystem::path(dir) / "lease").string());
  if (!text.ok()) return std::nullopt;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(*text), ' ', absl::SkipEmpty());
  Lease lease;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &lease.deadline_ms) ||
      !absl::SimpleAtoi(parts[1], &lease.grace_ms)) {
    return std::nullopt;
  }
  return lease;
}

namespace {

// Best effort: the rank's log is where its user looks.
void Note(const std::string& log_path, const std::string& line) {
  if (log_path.empty()) return;
  std::ofstream(log_path, std::ios::app) << "gangway: " << line << "\n";
}

void Reply(const std::string& line) {
  std::string text = line + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// The keeper's own stdio: nothing after the handshake (the agent's journal
// is not the keeper's, and a closed pipe must not kill it with SIGPIPE).
void DetachStdio() {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return;
  ::dup2(null_fd, STDIN_FILENO);
  ::dup2(null_fd, STDOUT_FILENO);
  ::dup2(null_fd, STDERR_FILENO);
  if (null_fd > STDERR_FILENO) ::close(null_fd);
}

// The rank runs with exactly the environment the agent resolved for it.
void ReplaceEnvironment(const v1::KeeperRecord& record) {
  ::clearenv();
  for (const std::string& kv : record.envp()) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    ::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 0);
  }
}

EnvironmentOptions InheritAll() {
  EnvironmentOptions env;
  env.inherit_all = true;
  return env;
}

class Keeper {
 public:
  Keeper(std::string record_path, v1::KeeperRecord record)
      : record_path_(std::move(record_path)),
        dir_(std::filesystem::path(record_path_).parent_path().string()),
        stem_(std::filesystem::path(record_path_).stem().string()),
        record_(std::move(record)),
        supervisor_(
            io_, [this](pid_t, const ExitInfo& info) { OnExit(info); }, InheritAll()) {}

  // Launches the rank and tells the agent; false when it could not run.
  bool Launch() {
    // Handlers first: the agent may ask for a stop (SIGUSR1) as soon as it
    // has the answer, and the default action would kill the keeper.
    signals_.add(SIGUSR1);
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    LaunchRequest req;
    req.argv.assign(record_.argv().begin(), record_.argv().end());
    if (record_.switch_user()) {
      req.user =
          UserIdentity{record_.user_name(), record_.uid(), record_.gid(), record_.home(), ""};
    }
    req.working_dir = record_.working_dir();
    req.log_path = record_.log_path();
    // The rank's output comes through a pipe the supervisor reads; the
    // keeper writes it to the log, rotated at the cap: a rank printing
    // gigabytes fills neither the disk nor anyone's memory, and a full disk
    // never holds the rank up.
    if (record_.log_max_bytes() > 0 && !record_.log_path().empty()) {
      absl::StatusOr<RankLogWriter> log =
          RankLogWriter::Open(record_.log_path(), record_.log_max_bytes());
      if (!log.ok()) {
        Reply(absl::StrCat("err ", static_cast<int>(log.status().code()), " ",
                           log.status().message()));
        return false;
      }
      log_.emplace(*std::move(log));
      req.on_output = [this](std::string_view data) { log_->Write(data); };
    }
    req.cpu_affinity.assign(record_.cpu_affinity().begin(), record_.cpu_affinity().end());
    req.memory_nodes.assign(record_.memory_nodes().begin(), record_.memory_nodes().end());
    req.parent_death_signal = SIGKILL;
    if (record_.switch_user()) {
      // SHELL from the record's environment, which the agent resolved.
      for (const std::string& kv : record_.envp()) {
        if (kv.rfind("SHELL=", 0) == 0) req.user->shell = kv.substr(6);
      }
    }
    absl::StatusOr<pid_t> pid = supervisor_.Launch(req);
    if (!pid.ok()) {
      Reply(
          absl::StrCat("err ", static_cast<int>(pid.status().code()), " ", pid.status().message()));
      return false;
    }
    rank_pid_ = *pid;
    record_.set_keeper_pid(::getpid());
    record_.set_rank_pid(*pid);
    record_.set_boot_id(BootId());
    // Recorded before the agent hears of the rank, so an agent killed right
    // after still finds it.
    if (absl::Status s = WriteFileAtomic(record_path_, record_.SerializeAsString()); !s.ok()) {
      supervisor_.Stop(*pid, std::chrono::milliseconds(0));
      Reply(absl::StrCat("err ", static_cast<int>(absl::StatusCode::kInternal), " ", s.message()));
      return false;
    }
    Reply(absl::StrCat("ok ", *pid, " ", ::getpid()));
    return true;
  }

  void Run() {
    WaitSignal();
    Check();
    io_.run();
  }

  const std::optional<v1::KeeperExit>& exit() const { return exit_; }

 private:
  void WaitSignal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGTERM || sig == SIGINT) {
        // The whole service is being stopped (systemd's control-group
        // kill): pass it on, with a grace.
        Stop(kDefaultGraceMs, absl::StrCat("keeper received signal ", sig));
      }
      // SIGHUP (a closed terminal) is ignored: a keeper outlives sessions.
      Check();
      WaitSignal();
    });
  }

  void Stop(int64_t grace_ms, const std::string& why) {
    if (exit_) return;
    if (note_.empty()) {
      note_ = why;
      const std::string line = absl::StrCat("stopping rank ", record_.rank(), ": ", why);
      if (log_) {
        log_->Write(absl::StrCat("gangway: ", line, "\n"));
      } else {
        Note(record_.log_path(), line);
      }
    }
    supervisor_.Stop(rank_pid_, std::chrono::milliseconds(grace_ms));
  }

  // The stop file and the lease; again at the lease's deadline and at
  // least once a second.
  void Check() {
    if (exit_) return;
    const std::string stop_path = (std::filesystem::path(dir_) / (stem_ + ".stop")).string();
    if (absl::StatusOr<std::string> stop = ReadWholeFile(stop_path); stop.ok()) {
      int64_t grace = kDefaultGraceMs;
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*stop), &grace);
      if (!stopped_by_agent_ || grace < agent_grace_ms_) {
        stopped_by_agent_ = true;
        agent_grace_ms_ = grace;
        Stop(grace, "stopped by the agent");
      }
    }
    int64_t next_ms = 1000;
    if (std::optional<Lease> lease = ReadLease(dir_); lease && lease->deadline_ms > 0) {
      const int64_t left = lease->deadline_ms - BootTimeMs();
      if (left <= 0) {
        if (!lease_expired_) {
          lease_expired_ = true;
          Stop(lease->grace_ms,
               "the node's lease expired (no word from the coordinator through the agent)");
        }
      } else {
        lease_expired_ = false;
        next_ms = std::min(next_ms, left + 1);
      }
    }
    timer_.expires_after(std::chrono::milliseconds(next_ms));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Check();
    });
  }

  void OnExit(const ExitInfo& info) {
    // The supervisor has passed on all the rank wrote by now.
    if (log_ && log_->dropped_bytes() > 0) {
      log_->Write(absl::StrCat("gangway: ", log_->dropped_bytes(),
                               " bytes of the rank's output could not be written to its log\n"));
    }
    v1::KeeperExit exit;
    exit.set_exit_code(info.exit_code);
    exit.set_signal(info.signal);
    exit.set_note(note_);
    exit_ = exit;
    timer_.cancel();
    signals_.cancel();
    io_.stop();
  }

  static constexpr int64_t kDefaultGraceMs = 10000;

  const std::string record_path_;
  const std::string dir_;
  const std::string stem_;
  v1::KeeperRecord record_;
  asio::io_context io_;
  asio::steady_timer timer_{io_};
  asio::signal_set signals_{io_};
  std::optional<RankLogWriter> log_;  // with a cap: the rank's output
  Supervisor supervisor_;
  pid_t rank_pid_ = 0;
  bool lease_expired_ = false;
  bool stopped_by_agent_ = false;
  int64_t agent_grace_ms_ = 0;
  std::string note_;
  std::optional<v1::KeeperExit> exit_;
};

}  // namespace

int64_t ProcessStartTicks(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadWholeFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return -1;
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return -1;
  // After the command name: state is field 3, start time field 22.
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(paren + 2), ' ', absl::SkipEmpty());
  int64_t ticks = -1;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &ticks)) return -1;
  return ticks;
}

int KeeperMain(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s keeper RECORD (started by gangway-agent)\n", argv[0]);
    return 2;
  }
  return RunKeeper(argv[2]);
}

int RunKeeper(const std::string& record_path) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(record_path);
  v1::KeeperRecord record;
  if (!bytes.ok() || !record.ParseFromString(*bytes)) {
    Reply(absl::StrCat("err ", static_cast<int>(absl::StatusCode::kInternal),
                       " cannot read keeper record ", record_path));
    return 1;
  }
  // Detach: the first process exits at once, and the keeper lives on in
  // its own session, nobody's child but init's (or the nearest
  // subreaper's).
  const pid_t child = ::fork();
  if (child < 0) {
    Reply(absl::StrCat("err ", static_cast<int>(absl::StatusCode::kInternal),
                       " fork: ", std::strerror(errno)));
    return 1;
  }
  if (child > 0) return 0;
  ::setsid();
  ::umask(022);
  ::prctl(PR_SET_NAME, "gangway-keeper", 0, 0, 0);
  // Whatever its parent ignored (the launcher ignores SIGCHLD to reap
  // without waiting), the keeper waits for its rank.
  ::signal(SIGCHLD, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  ReplaceEnvironment(record);
  record.set_keeper_start_ticks(ProcessStartTicks(::getpid()));
  Keeper keeper(record_path, std::move(record));
  if (!keeper.Launch()) ::_exit(1);
  DetachStdio();
  keeper.Run();
  if (!keeper.exit()) ::_exit(1);
  const std::string exit_path = (std::filesystem::path(record_path).parent_path() /
                                 (std::filesystem::path(record_path).stem().string() + ".exit"))
                                    .string();
  // _exit: a forked keeper must not run the agent's atexit handlers or
  // static destructors.
  ::_exit(WriteFileAtomic(exit_path, keeper.exit()->SerializeAsString()).ok() ? 0 : 1);
}

// ---- KeeperLauncher ----------------------------------------------------------

namespace {

// The launcher's loop: one request per datagram, "PATH" with the reply fd
// attached; EOF (the agent is gone) ends it.
[[noreturn]] void LauncherLoop(int sock) {
  ::signal(SIGCHLD, SIG_IGN);  // its children (keepers' first halves) reap themselves
  ::prctl(PR_SET_NAME, "gangway-keepers", 0, 0, 0);
  // The agent dying ends the launcher too, even if the socket stays open
  // in some forked copy.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
  while (true) {
    char path[4096];
    char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{path, sizeof(path) - 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(0);
    path[n] = '\0';
    int reply_fd = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&reply_fd, CMSG_DATA(c), sizeof(int));
      }
    }
    if (reply_fd < 0) continue;
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(sock);
      ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
      ::dup2(reply_fd, STDOUT_FILENO);
      ::close(reply_fd);
      ::_exit(RunKeeper(path));
    }
    ::close(reply_fd);  // on fork failure the agent reads EOF: no keeper
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeeperLauncher>> KeeperLauncher::Start() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", std::strerror(errno)));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    LauncherLoop(fds[1]);
  }
  ::close(fds[1]);
  return std::unique_ptr<KeeperLauncher>(new KeeperLauncher(fds[0], pid));
}

KeeperLauncher::~KeeperLauncher() {
  ::close(socket_);  // the launcher reads EOF and exits
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

absl::Status KeeperLauncher::Spawn(const std::string& record_path, int reply_fd) {
  char control[CMSG_SPACE(sizeof(int))] = {};
  iovec iov{const_cast<char*>(record_path.data()), record_path.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &reply_fd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(socket_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return absl::UnavailableError(absl::StrCat("keeper launcher: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace gangway::agent
