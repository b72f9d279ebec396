// Rank keepers: one small process per rank, between the agent and the rank,
// so that ranks outlive their agent (a restart, an upgrade, a crash) the way
// Slurm's ranks outlive slurmd, and so that the lease is enforced even when
// the agent cannot act (frozen by SIGSTOP, hung in the kernel, killed).
//
// The agent starts `<agent binary> keeper DIR/ID.rec`. The keeper detaches
// (its own session, not the agent's child), launches the rank with the
// Supervisor (the rank gets SIGKILL if its keeper dies), reports "ok PID"
// on its stdout, and then:
//   - stops the rank (SIGTERM, SIGKILL after the grace) when the node's
//     lease runs out: DIR/lease holds a deadline on CLOCK_BOOTTIME, renewed
//     by the agent each time it hears from the coordinator. A frozen or dead
//     agent renews nothing, so its ranks stop on time anyway;
//   - stops the rank when the agent writes DIR/ID.stop (the grace in ms)
//     and sends SIGUSR1 (the file is also checked at least once a second);
//   - when the rank exits, writes DIR/ID.exit (KeeperExit) and exits.
// A restarted agent reads every DIR/*.rec: a keeper still running is
// watched again (its pid checked against the record, its boot id against
// this boot's); one that has exited left its rank's exit code.
//
// Files are written to a temporary name and renamed, so a reader sees a
// whole record or none.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::agent {

// Milliseconds on CLOCK_BOOTTIME: one clock for every process on the node,
// never stepped by NTP, and counting a suspend (a laptop that slept through
// its lease has lost it).
int64_t BootTimeMs();

// This boot's /proc/sys/kernel/random/boot_id; empty if unreadable.
std::string BootId();

struct Lease {
  int64_t deadline_ms = 0;  // BootTimeMs; 0: no lease, ranks are never stopped for it
  int64_t grace_ms = 0;     // SIGTERM to SIGKILL when it runs out
};

absl::Status WriteLease(const std::string& dir, const Lease& lease);
// nullopt when the file is missing or unreadable: no lease.
std::optional<Lease> ReadLease(const std::string& dir);

// Writes `data` to `path` through a temporary file and a rename.
absl::Status WriteFileAtomic(const std::string& path, const std::string& data);
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// The keeper process's main: argv = {program, "keeper", RECORD}. Returns
// the exit status (0 once the rank's exit is recorded).
int KeeperMain(int argc, char** argv);

// Runs a keeper for the record in this process (single-threaded): detaches
// (fork, the caller's copy returns 0 at once), launches the rank, answers
// on stdout. Returns what the process should exit with.
int RunKeeper(const std::string& record_path);

// Field 22 of /proc/PID/stat (start time in clock ticks); -1 if unreadable.
int64_t ProcessStartTicks(pid_t pid);

// A fork server for keepers. Exec'ing the agent's binary for every rank
// costs ~20 ms (dynamic linking of gRPC and its friends); forking a small
// single-threaded copy of the agent made before it started any thread
// costs well under one. Start() must run while the process has one thread.
// The launcher exits when this object is destroyed or the agent dies.
class KeeperLauncher {
 public:
  static absl::StatusOr<std::unique_ptr<KeeperLauncher>> Start();
  ~KeeperLauncher();
  KeeperLauncher(const KeeperLauncher&) = delete;
  KeeperLauncher& operator=(const KeeperLauncher&) = delete;

  // Asks for a keeper of `record_path` whose stdout is `reply_fd` (the
  // caller keeps its own copy). Errors: the launcher is gone.
  absl::Status Spawn(const std::string& record_path, int reply_fd);

 private:
  explicit KeeperLauncher(int socket, pid_t pid) : socket_(socket), pid_(pid) {}
  int socket_;
  pid_t pid_;
};

}  // namespace gangway::agent
