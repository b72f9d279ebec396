// Launches, signals and reaps the ranks of one node.
//
// Thread: every method runs on the io_context's thread; exit callbacks are
// delivered there too. Nothing is locked, so nothing else may call in.
//
// Each rank is started with fork + exec (spawn.h: posix_spawn cannot change
// the uid) as the leader of a new session (so it has its own process group)
// with stdout and stderr appended to its log file, as the workload user the
// request names and with a clean environment (EnvironmentOptions). Exits are watched through a
// pidfd per child (Linux >= 5.3): waiting on exactly that child means no SIGCHLD handler and no
// waitpid(-1), so two supervisors in one process (as in `gangway local`) never reap each other's
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
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/workload_user.h"
#include "boost/asio/io_context.hpp"

namespace gangway::agent {

// What a rank inherits from the supervisor's environment.
//
// By default (a node agent) almost nothing: an allowlist of PATH, LANG,
// LANGUAGE, LC_*, TZ and TERM, plus the names in `pass`; HOME, USER,
// LOGNAME and SHELL come from the workload user's passwd entry. The agent's
// other variables (credentials, NOTIFY_SOCKET, proxies, its own
// GANGWAY_* settings) never reach a job. Without PATH, ranks get
// /usr/local/bin:/usr/bin:/bin.
//
// `inherit_all` is `gangway local`: one user on a laptop runs ranks as
// themselves with their whole environment (virtualenv, CUDA paths, tokens
// they chose to export), as torchrun does.
struct EnvironmentOptions {
  bool inherit_all = false;
  std::vector<std::string> pass;  // --pass-env NAME
};

struct LaunchRequest {
  // argv[0] without a slash is looked up in the rank's own PATH (its final
  // environment), as execvp would, with the rank's permissions.
  std::vector<std::string> argv;
  // Set on top of the base environment (EnvironmentOptions): the job's env
  // and the rank's variables.
  std::vector<std::pair<std::string, std::string>> env;
  // Who the rank runs as. Unset, or the supervisor's own uid and gid:
  // unchanged. Another user (needs root): the child drops every
  // supplementary group, then takes the user's gid, then its uid.
  std::optional<UserIdentity> user;
  // Empty: inherit, except that a rank switched to another user starts in
  // that user's home when it can enter it, else in "/".
  std::string working_dir;
  // stdout and stderr, appended; parent dirs created. Empty: inherit.
  std::string log_path;
  // Set: stdout and stderr go to a pipe the supervisor reads instead of
  // to log_path, and every chunk read is passed here (on the loop), all of
  // it before the exit callback runs: the caller writes it to a rotated log
  // (rank_log.h), so a rank printing gigabytes fills no disk. The pipe is
  // always read, so the rank never waits on whatever the caller does.
  std::function<void(std::string_view)> on_output;
  // Empty: inherit. Set in the child before exec.
  std::vector<int> cpu_affinity;
  // NUMA nodes the process may allocate memory on (MPOL_BIND). Empty:
  // inherit. Set in the child before exec (a memory policy survives exec
  // and cannot be set on another process).
  std::vector<int> memory_nodes;
  // Sent to the rank when the process that launched it dies (0: none). A
  // rank keeper (keeper.h) sets SIGKILL: a rank must not outlive the one
  // process that knows its exit and enforces its lease.
  int parent_death_signal = 0;
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
  Supervisor(boost::asio::io_context& io, ExitCallback on_exit,
             EnvironmentOptions environment = {});
  // Kills (SIGKILL) the group of every child still running and reaps them,
  // blocking until they are gone; their callbacks are not run. Must run
  // before `io` is destroyed.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts a process, returning its pid (also its process group id).
  // Errors: INVALID_ARGUMENT (empty argv, a CPU out of range or not usable),
  // FAILED_PRECONDITION (argv[0] cannot be executed - not found, not
  // executable, bad format, not readable by the workload user - or
  // working_dir is unusable, or the user cannot be switched to; the
  // message, as "gangway: <message>", is also appended to the log, where a
  // user looks first), INTERNAL (log cannot be opened, other spawn
  // failures).
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
