#include "daemon/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"

#ifdef GANGWAY_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace gangway::daemon {

#ifdef GANGWAY_HAVE_LIBSYSTEMD
absl::Status Notify(const std::string& state) {
  const int r = sd_notify(0, state.c_str());
  if (r < 0) return absl::UnavailableError(absl::StrCat("sd_notify: ", std::strerror(-r)));
  return absl::OkStatus();
}
#else
absl::Status Notify(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return absl::OkStatus();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("NOTIFY_SOCKET: not a socket path: ", path));
  }
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&addr), addr_len);
  const int err = errno;
  ::close(fd);
  if (sent < 0) {
    return absl::UnavailableError(absl::StrCat("NOTIFY_SOCKET ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}
#endif

absl::StatusOr<std::chrono::microseconds> WatchdogInterval() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr || *usec == '\0') return std::chrono::microseconds(0);
  // systemd sets WATCHDOG_PID to the main process; a child that inherited
  // the environment must not ping for it.
  if (const char* pid = std::getenv("WATCHDOG_PID"); pid != nullptr && *pid != '\0') {
    int64_t p = 0;
    if (!absl::SimpleAtoi(pid, &p)) {
      return absl::InvalidArgumentError(absl::StrCat("WATCHDOG_PID: not a pid: ", pid));
    }
    if (p != ::getpid()) return std::chrono::microseconds(0);
  }
  int64_t us = 0;
  if (!absl::SimpleAtoi(usec, &us) || us <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("WATCHDOG_USEC: not a positive number of microseconds: ", usec));
  }
  return std::chrono::microseconds(us);
}

Watchdog::Watchdog(std::chrono::microseconds interval, Probe answers)
    // Half the interval, as sd_watchdog_enabled(3) advises: one late ping
    // is not yet a missed deadline.
    : period_(std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::milliseconds>(interval).count() / 2)),
      answers_(std::move(answers)) {
  thread_ = std::thread([this] { Run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::Run() {
  bool was_stuck = false;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, period_, [this] { return stopping_; })) return;
    }
    if (!answers_(period_)) {
      if (!was_stuck) {
        GW_LOG_ERROR("event loop did not answer within {} ms: withholding WATCHDOG=1",
                     period_.count());
      }
      was_stuck = true;
      continue;
    }
    was_stuck = false;
    if (absl::Status s = Notify("WATCHDOG=1"); !s.ok()) {
      GW_LOG_WARN("watchdog: {}", std::string(s.message()));
    }
  }
}

}  // namespace gangway::daemon
