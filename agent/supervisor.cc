#include "agent/supervisor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/steady_timer.hpp"

extern char** environ;

namespace gangway::agent {

// set_mempolicy's node mask: up to 1024 NUMA nodes, as the kernel's default.
constexpr int kBitsPerWord = 8 * sizeof(unsigned long);
constexpr int kNodeMaskWords = 1024 / kBitsPerWord;
// From <numaif.h> (libnuma's header, not needed otherwise).
constexpr int kMpolDefault = 0;
constexpr int kMpolBind = 2;
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(int err) { return std::strerror(err); }

// Closes a plain fd on every return path of Launch.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// RAII for the posix_spawn attribute objects, which own heap memory in glibc.
class SpawnFileActions {
 public:
  SpawnFileActions() { ok_ = posix_spawn_file_actions_init(&actions_) == 0; }
  ~SpawnFileActions() {
    if (ok_) posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;
  bool ok() const { return ok_; }
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
  bool ok_ = false;
};

class SpawnAttr {
 public:
  SpawnAttr() { ok_ = posix_spawnattr_init(&attr_) == 0; }
  ~SpawnAttr() {
    if (ok_) posix_spawnattr_destroy(&attr_);
  }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  bool ok() const { return ok_; }
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
  bool ok_ = false;
};

// The supervisor's environment with `overrides` replacing or adding entries.
std::vector<std::string> BuildEnv(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  std::unordered_map<std::string, size_t> index;  // name -> position in env
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    std::string name(kv.substr(0, kv.find('=')));
    if (index.contains(name)) continue;  // getenv() sees only the first one
    index.emplace(std::move(name), env.size());
    env.emplace_back(kv);
  }
  for (const auto& [name, value] : overrides) {
    std::string kv = absl::StrCat(name, "=", value);
    if (auto it = index.find(name); it != index.end()) {
      env[it->second] = std::move(kv);
    } else {
      index.emplace(name, env.size());
      env.push_back(std::move(kv));
    }
  }
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Best effort: the log is where a user looks first when a rank never ran.
void AppendToLog(int fd, const std::string& line) {
  std::string text = line + "\n";
  std::string_view rest(text);
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

bool IsExecError(int err) {
  return err == ENOENT || err == EACCES || err == ENOEXEC || err == ENOTDIR;
}

ExitInfo ToExitInfo(const siginfo_t& info) {
  ExitInfo exit;
  if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) {
    exit.signal = info.si_status;
    exit.exit_code = 128 + info.si_status;
  } else {
    exit.exit_code = info.si_status & 0xff;
  }
  return exit;
}

// Reaps exactly the child behind `pidfd`, blocking. Only for children known
// to be dead or already sent SIGKILL.
void ReapBlocking(int pidfd) {
  // Asio puts the descriptors it watches in non-blocking mode, and waitid on
  // a non-blocking pidfd fails with EAGAIN while SIGKILL is still on its way.
  int flags = ::fcntl(pidfd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) ::fcntl(pidfd, F_SETFL, flags & ~O_NONBLOCK);
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) < 0 && errno == EINTR) {
  }
}

}  // namespace

struct Supervisor::Impl {
  struct Child {
    Child(boost::asio::io_context& io, pid_t pid, int pidfd, uint64_t serial)
        : pid(pid), serial(serial), pidfd(io, pidfd), kill_timer(io) {}

    pid_t pid;
    // Handlers outlive the Child they were armed for (a timer that fired
    // before it was cancelled); the serial tells them apart from a later
    // child that was given the same pid.
    uint64_t serial;
    boost::asio::posix::stream_descriptor pidfd;
    boost::asio::steady_timer kill_timer;
    bool kill_armed = false;
  };

  Impl(boost::asio::io_context& io, ExitCallback on_exit) : io(io), on_exit(std::move(on_exit)) {}

  absl::StatusOr<pid_t> Launch(const LaunchRequest& request);
  void Stop(pid_t pid, std::chrono::milliseconds grace);
  void WatchExit(Child& child);
  void OnExitReadable(pid_t pid, uint64_t serial);
  void OnGraceExpired(pid_t pid, uint64_t serial);
  void KillAndReapAll();

  boost::asio::io_context& io;
  ExitCallback on_exit;
  std::unordered_map<pid_t, std::unique_ptr<Child>> children;
  uint64_t next_serial = 0;
  // Completion handlers still queued in the io_context when the Supervisor
  // is destroyed run afterwards (with operation_aborted or even success);
  // they hold this weakly and do nothing once it has expired.
  std::shared_ptr<Impl*> alive = std::make_shared<Impl*>(this);
};

absl::StatusOr<pid_t> Supervisor::Impl::Launch(const LaunchRequest& request) {
  if (request.argv.empty()) return absl::InvalidArgumentError("empty argv");
  for (int cpu : request.cpu_affinity) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
      return absl::InvalidArgumentError(absl::StrCat("cpu ", cpu, " out of range"));
    }
  }
  for (int node : request.memory_nodes) {
    if (node < 0 || node >= kNodeMaskWords * kBitsPerWord) {
      return absl::InvalidArgumentError(absl::StrCat("NUMA node ", node, " out of range"));
    }
  }
  const std::string& argv0 = request.argv[0];

  // The log is opened here rather than as a spawn file action so a bad log
  // path is reported as such and not as "cannot execute", and so that exec
  // failures can be written into it.
  UniqueFd log_fd;
  if (!request.log_path.empty()) {
    std::filesystem::path log_path(request.log_path);
    if (log_path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(log_path.parent_path(), ec);
      if (ec) {
        return absl::InternalError(absl::StrCat("cannot create directory for log '",
                                                request.log_path, "': ", ec.message()));
      }
    }
    int fd = ::open(request.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot open log '", request.log_path, "': ", ErrnoText(errno)));
    }
    // Kept off 1 and 2 (a supervisor started with those closed) so the
    // dup2 actions below always clear close-on-exec on the child's copies.
    if (fd <= STDERR_FILENO) {
      int high = ::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
      int err = errno;
      ::close(fd);
      if (high < 0) {
        return absl::InternalError(absl::StrCat("fcntl on log: ", ErrnoText(err)));
      }
      fd = high;
    }
    log_fd.reset(fd);
  }

  auto fail_before_exec = [&](const std::string& message) {
    if (log_fd.get() >= 0) AppendToLog(log_fd.get(), absl::StrCat("gangway: ", message));
    return absl::FailedPreconditionError(message);
  };

  // posix_spawn reports a failed chdir as ENOENT too, which would read as
  // "cannot execute"; checking first keeps the two apart.
  if (!request.working_dir.empty()) {
    struct stat st;
    if (::stat(request.working_dir.c_str(), &st) != 0) {
      return fail_before_exec(
          absl::StrCat("cannot chdir to '", request.working_dir, "': ", ErrnoText(errno)));
    }
    if (!S_ISDIR(st.st_mode)) {
      return fail_before_exec(
          absl::StrCat("cannot chdir to '", request.working_dir, "': ", ErrnoText(ENOTDIR)));
    }
    if (::access(request.working_dir.c_str(), X_OK) != 0) {
      return fail_before_exec(
          absl::StrCat("cannot chdir to '", request.working_dir, "': ", ErrnoText(errno)));
    }
  }

  SpawnFileActions actions;
  SpawnAttr attr;
  if (!actions.ok() || !attr.ok()) return absl::InternalError("posix_spawn init failed");
  int rc = posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (rc == 0 && log_fd.get() >= 0) {
    rc = posix_spawn_file_actions_adddup2(actions.get(), log_fd.get(), STDOUT_FILENO);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(actions.get(), log_fd.get(), STDERR_FILENO);
  }
  if (rc == 0 && !request.working_dir.empty()) {
    rc = posix_spawn_file_actions_addchdir_np(actions.get(), request.working_dir.c_str());
  }
  if (rc != 0) return absl::InternalError(absl::StrCat("posix_spawn setup: ", ErrnoText(rc)));

  // A rank must not inherit the supervisor's blocked signals or ignored
  // dispositions (SIG_IGN survives exec: an agent ignoring SIGPIPE or
  // SIGTERM would pass that on and break Stop).
  sigset_t empty_mask, all_signals;
  sigemptyset(&empty_mask);
  sigfillset(&all_signals);
  rc = posix_spawnattr_setflags(
      attr.get(), POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0) rc = posix_spawnattr_setsigmask(attr.get(), &empty_mask);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(attr.get(), &all_signals);
  if (rc != 0) return absl::InternalError(absl::StrCat("posix_spawn setup: ", ErrnoText(rc)));

  std::vector<std::string> argv_strings = request.argv;
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<std::string> env_strings = BuildEnv(request.env);
  std::vector<char*> envp = CStrings(env_strings);

  // The memory policy of this (the loop) thread is what the child inherits:
  // bind it for the spawn and put it back at once.
  const bool bind_memory = !request.memory_nodes.empty();
  if (bind_memory) {
    unsigned long mask[kNodeMaskWords] = {};
    for (int node : request.memory_nodes) mask[node / kBitsPerWord] |= 1UL << (node % kBitsPerWord);
    if (::syscall(SYS_set_mempolicy, kMpolBind, mask, kNodeMaskWords * kBitsPerWord + 1) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("set_mempolicy for '", argv0, "': ", ErrnoText(errno)));
    }
  }
  pid_t pid = -1;
  rc = posix_spawnp(&pid, argv0.c_str(), actions.get(), attr.get(), argv.data(), envp.data());
  if (bind_memory) ::syscall(SYS_set_mempolicy, kMpolDefault, nullptr, 0);
  if (rc != 0) {
    if (IsExecError(rc)) {
      return fail_before_exec(absl::StrCat("cannot execute '", argv0, "': ", ErrnoText(rc)));
    }
    return absl::InternalError(absl::StrCat("posix_spawn '", argv0, "': ", ErrnoText(rc)));
  }

  // Our own fd: the child is ours and unreaped, so the pid cannot have been
  // reused yet (unless SIGCHLD is SIG_IGN, which a supervisor must not set).
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int err = errno;
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return absl::InternalError(absl::StrCat("pidfd_open: ", ErrnoText(err)));
  }

  // Set after the child is already running: exec and the program's start-up
  // run on the inherited CPUs for a moment, and a thread it creates within
  // that moment keeps the old mask. Ranks pin long-lived work well after.
  if (!request.cpu_affinity.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : request.cpu_affinity) CPU_SET(cpu, &set);
    // ESRCH cannot happen for an unreaped child; EINVAL is a mask with no
    // CPU this process may use.
    if (::sched_setaffinity(pid, sizeof(set), &set) != 0) {
      int err = errno;
      ::kill(-pid, SIGKILL);
      ReapBlocking(pidfd);
      ::close(pidfd);
      return absl::InvalidArgumentError(
          absl::StrCat("sched_setaffinity for '", argv0, "': ", ErrnoText(err)));
    }
  }

  auto child = std::make_unique<Child>(io, pid, pidfd, next_serial++);
  Child& ref = *child;
  children[pid] = std::move(child);
  WatchExit(ref);
  return pid;
}

void Supervisor::Impl::WatchExit(Child& child) {
  child.pidfd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [weak = std::weak_ptr<Impl*>(alive), pid = child.pid,
                          serial = child.serial](const boost::system::error_code& ec) {
                           auto self = weak.lock();
                           if (!self || ec == boost::asio::error::operation_aborted) return;
                           (*self)->OnExitReadable(pid, serial);
                         });
}

void Supervisor::Impl::OnExitReadable(pid_t pid, uint64_t serial) {
  auto it = children.find(pid);
  if (it == children.end() || it->second->serial != serial) return;
  Child& child = *it->second;
  const int fd = child.pidfd.native_handle();

  // WNOWAIT first: the leader stays a zombie while the rest of its group is
  // killed, so the group id cannot have been handed to anyone else.
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(fd), &info, WEXITED | WNOHANG | WNOWAIT);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0 && info.si_pid == 0) {
    WatchExit(child);  // spurious wakeup: not exited yet
    return;
  }

  ExitInfo exit;
  if (rc == 0) {
    ::kill(-pid, SIGKILL);
    do {
      rc = ::waitid(P_PIDFD, static_cast<id_t>(fd), &info, WEXITED);
    } while (rc < 0 && errno == EINTR);
  }
  if (rc == 0) {
    exit = ToExitInfo(info);
  } else {
    // Reaped behind our back (a waitpid(-1) elsewhere in the process): the
    // status is lost and the group may be gone, so it is not signalled.
    exit.exit_code = 255;
  }

  children.erase(it);
  // A copy, so a callback that destroys this Supervisor does not destroy
  // the function object while it runs.
  ExitCallback callback = on_exit;
  if (callback) callback(pid, exit);
}

void Supervisor::Impl::Stop(pid_t pid, std::chrono::milliseconds grace) {
  auto it = children.find(pid);
  if (it == children.end()) return;
  Child& child = *it->second;
  ::kill(-pid, SIGTERM);

  Clock::time_point deadline = Clock::now() + grace;
  if (child.kill_armed && child.kill_timer.expiry() <= deadline) return;
  child.kill_armed = true;
  child.kill_timer.expires_at(deadline);
  child.kill_timer.async_wait([weak = std::weak_ptr<Impl*>(alive), pid,
                               serial = child.serial](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self || ec == boost::asio::error::operation_aborted) return;
    (*self)->OnGraceExpired(pid, serial);
  });
}

void Supervisor::Impl::OnGraceExpired(pid_t pid, uint64_t serial) {
  auto it = children.find(pid);
  if (it == children.end() || it->second->serial != serial) return;
  // Still in the map means the leader is not reaped, so -pid is its group.
  if (it->second->kill_timer.expiry() <= Clock::now()) ::kill(-pid, SIGKILL);
}

void Supervisor::Impl::KillAndReapAll() {
  for (auto& [pid, child] : children) ::kill(-pid, SIGKILL);
  for (auto& [pid, child] : children) ReapBlocking(child->pidfd.native_handle());
  children.clear();
}

Supervisor::Supervisor(boost::asio::io_context& io, ExitCallback on_exit)
    : impl_(std::make_unique<Impl>(io, std::move(on_exit))) {}

Supervisor::~Supervisor() { impl_->KillAndReapAll(); }

absl::StatusOr<pid_t> Supervisor::Launch(const LaunchRequest& request) {
  return impl_->Launch(request);
}

void Supervisor::Stop(pid_t pid, std::chrono::milliseconds grace) { impl_->Stop(pid, grace); }

size_t Supervisor::running() const { return impl_->children.size(); }

}  // namespace gangway::agent
