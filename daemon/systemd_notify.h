// systemd's readiness and watchdog protocol (sd_notify(3)), for the
// coordinator's and the agent's Type=notify units: READY=1 once serving,
// STOPPING=1 on shutdown, WATCHDOG=1 while the daemon's loop answers.
//
// libsystemd's sd_notify when the build has it; otherwise (the static
// agent: Debian ships no libsystemd.a) the same datagram, sent here. The
// protocol is stable and documented for reimplementation.
//
// Threads: Notify and WatchdogInterval from any thread; a Watchdog owns its
// own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::daemon {

// Sends `state` ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET. OK and
// nothing sent without one (not started by systemd); UNAVAILABLE when the
// socket cannot be reached.
absl::Status Notify(const std::string& state);

// $WATCHDOG_USEC when it is meant for this process ($WATCHDOG_PID unset or
// ours); zero without a watchdog. INVALID_ARGUMENT when it does not parse.
absl::StatusOr<std::chrono::microseconds> WatchdogInterval();

// Sends WATCHDOG=1 every half interval for as long as `answers` says the
// daemon's event loop ran a posted task within the time it is given: a
// loop that is stuck (deadlock, a blocking call on it) stops the pings, and
// systemd restarts the service after WatchdogSec.
class Watchdog {
 public:
  using Probe = std::function<bool(std::chrono::milliseconds timeout)>;
  Watchdog(std::chrono::microseconds interval, Probe answers);
  ~Watchdog();  // stops and joins
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void Run();

  const std::chrono::milliseconds period_;
  const Probe answers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gangway::daemon
