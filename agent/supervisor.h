// Launches, signals and reaps the ranks of one node.
//
// Thread: every method runs on the io_context's thread; exit callbacks are
// delivered there too. Nothing is locked, so nothing else may call in.
//
// Each rank is spawned with posix_spawn as the leader of a new session (so
// it has its own process group) with stdout and stderr appended to its log
// file. Exits are watched through a pidfd per child (Linux >= 5.3): waiting
// on exactly that child means no SIGCHLD handler and no waitpid(-1), so two
// supervisors in one process (as in `gangway local`) never reap each other's
// children. When a leader exits, whatever is left of its process group is
// killed before the leader is reaped, so a finished rank leaves nothing
// behind and the group id cannot be reused in between. A descendant that
// left the group (setsid, setpgid) is not tracked.
//
// The process must not set SIGCHLD to SIG_IGN (the kernel would then reap
// the children itself and their exit status would be lost).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"

namespace gangway::agent {

struct LaunchRequest {
  // argv[0] is looked up in the supervisor's PATH (not one set in `env`).
  std::vector<std::string> argv;
  // Set on top of the supervisor's own environment (so PATH and HOME pass).
  std::vector<std::pair<std::string, std::string>> env;
  std::string working_dir;  // empty: inherit
  // stdout and stderr, appended; parent dirs created. Empty: inherit.
  std::string log_path;
  // Empty: inherit. Applied just after the spawn, so exec and the first
  // moments of the program run on the inherited CPUs.
  std::vector<int> cpu_affinity;
  // NUMA nodes the process may allocate memory on (MPOL_BIND). Empty:
  // inherit. Set on the spawning thread around the spawn, since a memory
  // policy passes to a child and cannot be set on another process.
  std::vector<int> memory_nodes;
};

struct ExitInfo {
  // 0-255; 128+N when killed by signal N. 255 also when the status was lost
  // because something else in the process reaped the child.
  int exit_code = 0;
  int signal = 0;  // the signal that killed it, or 0
};

class Supervisor {
 public:
  using ExitCallback = std::function<void(pid_t pid, const ExitInfo& info)>;

  // `on_exit` runs once per launched pid, after the pid's group is killed
  // and the pid reaped. It may call Launch and Stop, or destroy this.
  Supervisor(boost::asio::io_context& io, ExitCallback on_exit);
  // Kills (SIGKILL) the group of every child still running and reaps them,
  // blocking until they are gone; their callbacks are not run. Must run
  // before `io` is destroyed.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts a process, returning its pid (also its process group id).
  // Errors: INVALID_ARGUMENT (empty argv, a CPU out of range or not usable),
  // FAILED_PRECONDITION (argv[0] cannot be executed - not found, not
  // executable, bad format - or working_dir is unusable; the message, as
  // "gangway: <message>", is also appended to the log, where a user looks
  // first), INTERNAL (log cannot be opened, other spawn failures).
  // A caller reporting an exit code for FAILED_PRECONDITION should use 127,
  // as a shell would.
  absl::StatusOr<pid_t> Launch(const LaunchRequest& request);

  // SIGTERM to the child's whole process group now, SIGKILL to it after
  // `grace` if the leader has not exited by then. Unknown pids (and pids
  // whose exit was already reported) are ignored. Stopping again sends
  // SIGTERM again and keeps the earlier of the two SIGKILL deadlines.
  void Stop(pid_t pid, std::chrono::milliseconds grace);

  // Launched children whose exit has not been reported yet.
  size_t running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gangway::agent
