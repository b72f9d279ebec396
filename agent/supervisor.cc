#include "agent/supervisor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
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
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/spawn.h"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/steady_timer.hpp"

extern char** environ;

namespace gangway::agent {

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
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

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
        : pid(pid), serial(serial), pidfd(io, pidfd), kill_timer(io), output(io) {}

    pid_t pid;
    // Handlers outlive the Child they were armed for (a timer that fired
    // before it was cancelled); the serial tells them apart from a later
    // child that was given the same pid.
    uint64_t serial;
    boost::asio::posix::stream_descriptor pidfd;
    boost::asio::steady_timer kill_timer;
    bool kill_armed = false;
    // LaunchRequest::on_output: the rank's stdout and stderr.
    boost::asio::posix::stream_descriptor output;
    std::function<void(std::string_view)> on_output;
  };

  Impl(boost::asio::io_context& io, ExitCallback on_exit, EnvironmentOptions environment)
      : io(io),
        on_exit(std::move(on_exit)),
        environment(std::move(environment)),
        self(CurrentUser()) {}

  absl::StatusOr<pid_t> Launch(const LaunchRequest& request);
  void Stop(pid_t pid, std::chrono::milliseconds grace);
  void WatchExit(Child& child);
  void ReadOutput(Child& child);
  bool DrainOutput(Child& child);
  void OnExitReadable(pid_t pid, uint64_t serial);
  void OnGraceExpired(pid_t pid, uint64_t serial);
  void KillAndReapAll();

  boost::asio::io_context& io;
  ExitCallback on_exit;
  const EnvironmentOptions environment;
  // Whose HOME, USER, LOGNAME and SHELL a rank without a user gets.
  const UserIdentity self;
  std::unordered_map<pid_t, std::unique_ptr<Child>> children;
  uint64_t next_serial = 0;
  std::string output_buf;  // one read of a rank's output
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
    if (node < 0 || node >= 1024) {  // the kernel's default MAX_NUMNODES
      return absl::InvalidArgumentError(absl::StrCat("NUMA node ", node, " out of range"));
    }
  }
  // The log is opened here, by the supervisor (the rank's user may not be
  // able to write the state directory), so a bad log path is reported as
  // such and not as "cannot execute", and so that exec failures can be
  // written into it.
  UniqueFd log_fd;
  UniqueFd output;  // the pipe's read end, with on_output
  if (request.on_output) {
    int fds[2];
    // Off 0-2 for the same reason as below: pipe2 returns the lowest free.
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe: ", ErrnoText(errno)));
    }
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    const int r = ::fcntl(fds[0], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    const int w = ::fcntl(fds[1], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    output.reset(r);
    log_fd.reset(w);
    if (r < 0 || w < 0) return absl::InternalError(absl::StrCat("fcntl: ", ErrnoText(errno)));
    // Fewer wakeups for a chatty rank; the default (64 KiB) when refused.
    ::fcntl(r, F_SETPIPE_SZ, 1 << 20);
    ::fcntl(r, F_SETFL, O_NONBLOCK);
  } else if (!request.log_path.empty()) {
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
    // child's dup2 always clears close-on-exec on its copies.
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

  // The base environment is read at each launch: the agent's environment
  // is fixed, but tests change theirs between launches.
  std::vector<std::string> parent_env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    parent_env.emplace_back(*entry);
  }
  const UserIdentity* user = request.user ? &*request.user : nullptr;
  if (user == nullptr && !environment.inherit_all) user = &self;
  absl::StatusOr<pid_t> spawned = SpawnRank(
      request, BuildRankEnvironment(environment, parent_env, user, request.env), log_fd.get());
  if (!spawned.ok()) {
    if (absl::IsFailedPrecondition(spawned.status()) && log_fd.get() >= 0) {
      const std::string line = absl::StrCat("gangway: ", spawned.status().message());
      if (request.on_output) {
        request.on_output(line + "\n");
      } else {
        AppendToLog(log_fd.get(), line);
      }
    }
    return spawned.status();
  }
  const pid_t pid = *spawned;
  log_fd.reset(-1);  // the rank holds the only writer: EOF when it is gone

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

  auto child = std::make_unique<Child>(io, pid, pidfd, next_serial++);
  Child& ref = *child;
  children[pid] = std::move(child);
  if (request.on_output) {
    ref.on_output = request.on_output;
    ref.output.assign(output.release());
    ReadOutput(ref);
  }
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

void Supervisor::Impl::ReadOutput(Child& child) {
  child.output.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                          [weak = std::weak_ptr<Impl*>(alive), pid = child.pid,
                           serial = child.serial](const boost::system::error_code& ec) {
                            auto self = weak.lock();
                            if (!self || ec) return;
                            auto it = (*self)->children.find(pid);
                            if (it == (*self)->children.end() || it->second->serial != serial) {
                              return;
                            }
                            if ((*self)->DrainOutput(*it->second)) (*self)->ReadOutput(*it->second);
                          });
}

// Passes on what the pipe holds now; false at its end (every writer gone)
// or on an error.
bool Supervisor::Impl::DrainOutput(Child& child) {
  if (!child.output.is_open()) return false;
  if (output_buf.empty()) output_buf.resize(256 << 10);
  while (true) {
    const ssize_t n = ::read(child.output.native_handle(), output_buf.data(), output_buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) {
      boost::system::error_code ignored;
      child.output.close(ignored);
      return false;
    }
    child.on_output(std::string_view(output_buf.data(), static_cast<size_t>(n)));
  }
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

  // Everything the rank's group wrote is in the pipe now (the group is
  // gone): its last lines, a trial's objective often among them, are
  // passed on before its exit. What an escaped descendant writes later is
  // not waited for.
  DrainOutput(child);
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

Supervisor::Supervisor(boost::asio::io_context& io, ExitCallback on_exit,
                       EnvironmentOptions environment)
    : impl_(std::make_unique<Impl>(io, std::move(on_exit), std::move(environment))) {}

Supervisor::~Supervisor() { impl_->KillAndReapAll(); }

absl::StatusOr<pid_t> Supervisor::Launch(const LaunchRequest& request) {
  return impl_->Launch(request);
}

void Supervisor::Stop(pid_t pid, std::chrono::milliseconds grace) { impl_->Stop(pid, grace); }

size_t Supervisor::running() const { return impl_->children.size(); }

}  // namespace gangway::agent
