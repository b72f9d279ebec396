#include "agent/keepers.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/keeper.h"
#include "agent/spawn.h"
#include "boost/asio/posix/stream_descriptor.hpp"
#include "boost/asio/post.hpp"

extern char** environ;

namespace gangway::agent {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string RandomId() {
  std::random_device rd;
  return absl::StrCat(absl::Hex(rd(), absl::kZeroPad8), absl::Hex(rd(), absl::kZeroPad8));
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Whether `pid` is the keeper of `record` (and not a process that was
// given its number later): same start time; records from before start
// times were kept are checked by the exec'd keeper's command line.
bool IsKeeperOf(pid_t pid, const v1::KeeperRecord& record, const std::string& record_path) {
  if (record.keeper_start_ticks() > 0) {
    return ProcessStartTicks(pid) == record.keeper_start_ticks();
  }
  absl::StatusOr<std::string> cmdline = ReadWholeFile(absl::StrCat("/proc/", pid, "/cmdline"));
  if (!cmdline.ok()) return false;
  std::vector<std::string> args = absl::StrSplit(*cmdline, '\0');
  return args.size() >= 3 && args[1] == "keeper" && args[2] == record_path;
}

}  // namespace

struct Keepers::Impl {
  struct Watched {
    Watched(asio::io_context& io, int fd) : pidfd(io, fd) {}
    pid_t rank_pid = 0;
    pid_t keeper_pid = 0;
    asio::posix::stream_descriptor pidfd;
  };

  Impl(asio::io_context& io, KeepersOptions options, ExitCallback on_exit)
      : io(io), options(std::move(options)), on_exit(std::move(on_exit)), self(CurrentUser()) {
    std::error_code ec;
    fs::create_directories(this->options.dir, ec);
    ::chmod(this->options.dir.c_str(), 0700);
  }

  std::string PathOf(const std::string& id, const char* ext) const {
    return (fs::path(options.dir) / absl::StrCat(id, ext)).string();
  }

  // The exit its keeper recorded, or 255 (lost) when it left none.
  std::pair<ExitInfo, std::string> ReadExit(const std::string& id) const {
    ExitInfo info;
    info.exit_code = 255;
    absl::StatusOr<std::string> bytes = ReadWholeFile(PathOf(id, ".exit"));
    v1::KeeperExit exit;
    if (!bytes.ok() || !exit.ParseFromString(*bytes)) {
      return {info, "its keeper ended without recording the rank's exit"};
    }
    info.exit_code = exit.exit_code();
    info.signal = exit.signal();
    return {info, exit.note()};
  }

  void Watch(const std::string& id, pid_t rank_pid, pid_t keeper_pid, int fd) {
    auto w = std::make_unique<Watched>(io, fd);
    w->rank_pid = rank_pid;
    w->keeper_pid = keeper_pid;
    Watched& ref = *w;
    watched[id] = std::move(w);
    ref.pidfd.async_wait(
        asio::posix::stream_descriptor::wait_read,
        [weak = std::weak_ptr<Impl*>(alive), id](const boost::system::error_code& ec) {
          auto self = weak.lock();
          if (!self || ec == asio::error::operation_aborted) return;
          (*self)->OnKeeperGone(id);
        });
  }

  void OnKeeperGone(const std::string& id) {
    auto it = watched.find(id);
    if (it == watched.end()) return;
    // Reaped here only if it became this process's child (the agent as
    // PID 1 of a container is everyone's reaper); otherwise ECHILD.
    siginfo_t info{};
    ::waitid(P_PIDFD, static_cast<id_t>(it->second->pidfd.native_handle()), &info,
             WEXITED | WNOHANG);
    const pid_t rank_pid = it->second->rank_pid;
    watched.erase(it);
    ExitCallback callback = on_exit;
    if (callback) callback(id, rank_pid, ReadExit(id).first);
  }

  absl::StatusOr<Kept> Launch(const LaunchRequest& request, v1::KeeperRecord record) {
    if (request.argv.empty()) return absl::InvalidArgumentError("empty argv");
    std::vector<std::string> parent_env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      parent_env.emplace_back(*entry);
    }
    const UserIdentity* user = request.user ? &*request.user : nullptr;
    if (user == nullptr && !options.environment.inherit_all) user = &self;
    for (std::string& kv :
         BuildRankEnvironment(options.environment, parent_env, user, request.env)) {
      record.add_envp(std::move(kv));
    }
    for (const std::string& a : request.argv) record.add_argv(a);
    if (request.user) {
      record.set_switch_user(true);
      record.set_user_name(request.user->name);
      record.set_uid(request.user->uid);
      record.set_gid(request.user->gid);
      record.set_home(request.user->home);
    }
    record.set_working_dir(request.working_dir);
    record.set_log_path(request.log_path);
    record.set_log_max_bytes(options.log_max_bytes);
    for (int c : request.cpu_affinity) record.add_cpu_affinity(c);
    for (int n : request.memory_nodes) record.add_memory_nodes(n);

    const std::string id = RandomId();
    const std::string rec_path = PathOf(id, ".rec");
    if (absl::Status s = WriteFileAtomic(rec_path, record.SerializeAsString()); !s.ok()) return s;
    auto fail = [&](absl::Status status) {
      ::unlink(rec_path.c_str());
      return status;
    };

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return fail(absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno))));
    }
    pid_t first = 0;  // an exec'd keeper's first half, to reap
    bool forked = false;
    if (options.launcher != nullptr) {
      forked = options.launcher->Spawn(rec_path, pipe_fds[1]).ok();
    }
    if (!forked) {
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
      posix_spawnattr_t attr;
      posix_spawnattr_init(&attr);
      // Default dispositions and an empty mask: the agent blocks SIGTERM in
      // every thread, and a keeper must be able to receive it.
      sigset_t all, none;
      sigfillset(&all);
      sigemptyset(&none);
      posix_spawnattr_setsigdefault(&attr, &all);
      posix_spawnattr_setsigmask(&attr, &none);
      posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
      std::string arg0 = "gangway-keeper", arg1 = "keeper", arg2 = rec_path;
      char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
      const int rc = ::posix_spawn(&first, options.exe.c_str(), &actions, &attr, argv, environ);
      posix_spawn_file_actions_destroy(&actions);
      posix_spawnattr_destroy(&attr);
      if (rc != 0) {
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        return fail(absl::InternalError(
            absl::StrCat("cannot start keeper ", options.exe, ": ", std::strerror(rc))));
      }
    }
    ::close(pipe_fds[1]);
    // The keeper answers once the rank has exec'd (or failed to); EOF
    // comes when the detached keeper closes its stdout.
    std::string reply;
    char buf[512];
    while (true) {
      ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
      if (reply.find('\n') != std::string::npos) break;
    }
    ::close(pipe_fds[0]);
    while (first > 0 && ::waitpid(first, nullptr, 0) < 0 && errno == EINTR) {
    }
    reply = std::string(absl::StripTrailingAsciiWhitespace(reply));
    std::vector<std::string> words = absl::StrSplit(reply, absl::MaxSplits(' ', 2));
    int64_t rank_pid = 0, keeper_pid = 0;
    if (words.size() == 3 && words[0] == "ok" && absl::SimpleAtoi(words[1], &rank_pid) &&
        absl::SimpleAtoi(words[2], &keeper_pid)) {
      int fd = PidfdOpen(static_cast<pid_t>(keeper_pid));
      if (fd < 0) {
        // Already gone (a rank that exited at once): its exit is on disk.
        // Reported from the loop, after the caller has recorded the pid.
        int pipe_ends[2];
        if (::pipe2(pipe_ends, O_CLOEXEC) != 0) {
          return Kept{id, static_cast<pid_t>(rank_pid)};
        }
        ::close(pipe_ends[1]);  // a readable (EOF) descriptor stands in
        fd = pipe_ends[0];
      }
      Watch(id, static_cast<pid_t>(rank_pid), static_cast<pid_t>(keeper_pid), fd);
      return Kept{id, static_cast<pid_t>(rank_pid)};
    }
    int code = 0;
    if (words.size() >= 2 && words[0] == "err" && absl::SimpleAtoi(words[1], &code)) {
      return fail(
          absl::Status(static_cast<absl::StatusCode>(code), words.size() == 3 ? words[2] : ""));
    }
    return fail(absl::InternalError(
        absl::StrCat("keeper ", options.exe, " did not start the rank",
                     reply.empty() ? std::string() : absl::StrCat(": ", reply))));
  }

  std::vector<Adopted> Adopt() {
    std::vector<Adopted> out;
    const std::string boot = BootId();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(options.dir, ec)) {
      if (entry.path().extension() != ".rec") continue;
      const std::string id = entry.path().stem().string();
      const std::string rec_path = entry.path().string();
      absl::StatusOr<std::string> bytes = ReadWholeFile(rec_path);
      Adopted a;
      a.id = id;
      if (!bytes.ok() || !a.record.ParseFromString(*bytes) || a.record.rank_pid() <= 0) {
        Forget(id);  // its keeper never launched the rank
        continue;
      }
      if (absl::StatusOr<std::string> off = ReadWholeFile(PathOf(id, ".offset")); off.ok()) {
        (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(*off), &a.metrics_offset);
      }
      const pid_t keeper_pid = static_cast<pid_t>(a.record.keeper_pid());
      int fd = -1;
      if (fs::exists(PathOf(id, ".exit"))) {
        auto [info, note] = ReadExit(id);
        a.exit = info;
        a.note = note;
      } else if (a.record.boot_id() != boot) {
        a.exit = ExitInfo{255, 0};
        a.note = "the node restarted";
      } else if ((fd = PidfdOpen(keeper_pid)) >= 0 && IsKeeperOf(keeper_pid, a.record, rec_path)) {
        Watch(id, static_cast<pid_t>(a.record.rank_pid()), keeper_pid, fd);
        fd = -1;
      } else if (fs::exists(PathOf(id, ".exit"))) {  // it exited just now
        auto [info, note] = ReadExit(id);
        a.exit = info;
        a.note = note;
      } else {
        a.exit = ExitInfo{255, 0};
        a.note = "its keeper ended without recording the rank's exit";
      }
      if (fd >= 0) ::close(fd);
      out.push_back(std::move(a));
    }
    return out;
  }

  void Stop(const std::string& id, std::chrono::milliseconds grace) {
    auto it = watched.find(id);
    if (it == watched.end()) return;
    // A second stop keeps the shorter grace, as Supervisor::Stop does.
    int64_t ms = grace.count();
    if (absl::StatusOr<std::string> old = ReadWholeFile(PathOf(id, ".stop")); old.ok()) {
      int64_t before = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*old), &before)) ms = std::min(ms, before);
    }
    (void)WriteFileAtomic(PathOf(id, ".stop"), absl::StrCat(ms, "\n"));
    // Through the pidfd: never a signal to a process that reused the pid.
    ::syscall(SYS_pidfd_send_signal, it->second->pidfd.native_handle(), SIGUSR1, nullptr, 0);
  }

  void Forget(const std::string& id) {
    if (watched.count(id)) return;  // still running
    for (const char* ext : {".rec", ".exit", ".stop", ".offset"}) ::unlink(PathOf(id, ext).c_str());
  }

  asio::io_context& io;
  const KeepersOptions options;
  ExitCallback on_exit;
  const UserIdentity self;
  std::map<std::string, std::unique_ptr<Watched>> watched;
  std::shared_ptr<Impl*> alive = std::make_shared<Impl*>(this);
};

Keepers::Keepers(asio::io_context& io, KeepersOptions options, ExitCallback on_exit)
    : impl_(std::make_unique<Impl>(io, std::move(options), std::move(on_exit))) {}

Keepers::~Keepers() = default;

absl::StatusOr<Keepers::Kept> Keepers::Launch(const LaunchRequest& request, v1::KeeperRecord tag) {
  return impl_->Launch(request, std::move(tag));
}

std::vector<Keepers::Adopted> Keepers::Adopt() { return impl_->Adopt(); }

void Keepers::Stop(const std::string& id, std::chrono::milliseconds grace) {
  impl_->Stop(id, grace);
}

absl::Status Keepers::RenewLease(int64_t lease_ms, int64_t grace_ms) {
  Lease lease;
  lease.deadline_ms = lease_ms > 0 ? BootTimeMs() + lease_ms : 0;
  lease.grace_ms = grace_ms;
  return WriteLease(impl_->options.dir, lease);
}

void Keepers::Forget(const std::string& id) { impl_->Forget(id); }

void Keepers::SaveMetricsOffset(const std::string& id, int64_t offset) {
  (void)WriteFileAtomic(impl_->PathOf(id, ".offset"), absl::StrCat(offset, "\n"));
}

size_t Keepers::running() const { return impl_->watched.size(); }

}  // namespace gangway::agent
