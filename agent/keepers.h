// The agent's side of rank keepers (keeper.h): starts a keeper per rank,
// watches each keeper's exit through a pidfd, asks keepers to stop their
// ranks, renews the node's lease for all of them, and re-adopts the
// keepers a previous agent process left running.
//
// Thread: the io_context's thread only, as the Supervisor.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/keeper.h"
#include "agent/supervisor.h"
#include "boost/asio/io_context.hpp"
#include "gangway/v1/keeper.pb.h"

namespace gangway::agent {

struct KeepersOptions {
  // A binary that runs KeeperMain for `keeper RECORD` (gangway-agent).
  std::string exe;
  // Records, lease and exit files (STATE/keepers); made 0700.
  std::string dir;
  EnvironmentOptions environment;
  // Forks keepers instead of exec'ing `exe` (much cheaper); null, or gone:
  // exec. Not owned; outlives the Keepers.
  KeeperLauncher* launcher = nullptr;
  // Each rank's log, its rotated segment included (rank_log.h); 0: the
  // rank writes its log file itself, never rotated.
  int64_t log_max_bytes = 0;
};

class Keepers {
 public:
  // `on_exit(id, rank_pid, info)` runs once per rank, when its keeper has
  // gone: with the exit the keeper recorded, or 255 when it left none (it
  // was killed; its rank died with it).
  using ExitCallback = std::function<void(const std::string& id, pid_t pid, const ExitInfo& info)>;

  Keepers(boost::asio::io_context& io, KeepersOptions options, ExitCallback on_exit);
  // Leaves every keeper and rank running: the next agent adopts them.
  ~Keepers();
  Keepers(const Keepers&) = delete;
  Keepers& operator=(const Keepers&) = delete;

  struct Kept {
    std::string id;
    pid_t pid = 0;  // the rank's
  };
  // Starts a keeper for `request` and waits until it has launched the rank.
  // `tag` carries the agent's key for the rank (job, attempt, rank,
  // metrics). Errors as Supervisor::Launch.
  absl::StatusOr<Kept> Launch(const LaunchRequest& request, v1::KeeperRecord tag);

  // The ranks a previous agent process left: running ones are watched
  // again (their exit comes through on_exit); `exit` is set for those that
  // ended meanwhile. Call once, before Launch.
  struct Adopted {
    std::string id;
    v1::KeeperRecord record;
    std::optional<ExitInfo> exit;
    std::string note;            // why it ended, when known
    int64_t metrics_offset = 0;  // see SaveMetricsOffset
  };
  std::vector<Adopted> Adopt();

  // SIGTERM to the rank now, SIGKILL after `grace`, by its keeper.
  void Stop(const std::string& id, std::chrono::milliseconds grace);
  // Every keeper stops its rank once `lease_ms` has passed without another
  // renewal (0: no lease).
  absl::Status RenewLease(int64_t lease_ms, int64_t grace_ms);
  // Drops the files of a rank whose exit has been reported.
  void Forget(const std::string& id);
  // Where a re-adopting agent resumes reading the rank's metrics.
  void SaveMetricsOffset(const std::string& id, int64_t offset);

  size_t running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gangway::agent
