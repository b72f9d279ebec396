// The node agent: keeps one session with the coordinator (reconnecting with
// backoff), launches and stops ranks through the Supervisor, reports their
// starts and exits, and serves their logs.
//
// Threads: the loop thread owns the supervisor, the rank records and every
// write to the session; a session thread connects and blocks in Read, and
// posts what it reads onto the loop. The Register message is built and
// written on the loop, so no exit can slip between the records it carries
// and the first report that follows.
//
// Ranks run as the node's workload user, never root by default, with a
// clean environment (workload_user.h, supervisor.h, docs/workloads.md).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/inbound_gate.h"
#include "agent/keeper.h"
#include "agent/rank_events.h"
#include "agent/rank_log.h"
#include "agent/supervisor.h"
#include "agent/workload_user.h"
#include "common/tls.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

struct AgentOptions {
  std::string coordinator = "127.0.0.1:7070";
  std::string name;                       // node name, unique in the cluster
  std::string address;                    // what ranks use as MASTER_ADDR
  std::string state_dir = "agent-state";  // rank logs under state_dir/logs
  v1::NodeInventory inventory;
  // How often a trial's rank 0 output is read for metric lines.
  int64_t metrics_poll_ms = 250;
  int64_t min_backoff_ms = 50;
  int64_t max_backoff_ms = 5000;
  // Who ranks run as and which users jobs may ask for.
  WorkloadUserOptions workload;
  // What ranks inherit from the agent's environment; `gangway local` sets
  // inherit_all (and workload.run_as_agent_user), as torchrun behaves.
  EnvironmentOptions environment;
  // The channel to the coordinator; with a CA, ranks also get it as PEM text
  // in GANGWAY_TLS_CA to verify the coordinator's rendezvous and metrics.
  common::ClientTls tls;
  // A binary running the rank keeper (`EXE keeper RECORD`, keeper.h):
  // gangway-agent itself. Set, every rank runs under a keeper and survives
  // this agent: a restarted agent re-adopts it from state_dir/keepers, and
  // the lease stops it even when this process is frozen or dead. Empty
  // (`gangway local`, tests): ranks are the agent's children and die with it.
  std::string keeper_exe;
  // Forks keepers (keeper.h); null: each keeper execs keeper_exe. Not
  // owned; outlives the Agent.
  KeeperLauncher* keeper_launcher = nullptr;
  // Reported at registration (common::VersionText), shown by
  // `gangway nodes -o wide`.
  std::string version;
  // --log-max-bytes: each rank's log, its rotated segment included
  // (rank_log.h); 0: not capped.
  int64_t log_max_bytes = kDefaultLogMaxBytes;
  // Told of every rank's launch, exit and removal (telemetry.h); null:
  // nobody. Not owned; outlives the Agent.
  RankEvents* rank_events = nullptr;
  // Backpressure (inbound_gate.h): while the loop holds this many messages
  // read from the coordinator, or this many bytes of them, the agent stops
  // reading its session until the loop is down to half, and HTTP/2 flow
  // control holds the rest on the coordinator's side (docs/limits.md), up
  // to its --session-queue-max-bytes. --inbound-max-messages and
  // --inbound-max-bytes.
  int64_t inbound_max_messages = 1024;
  int64_t inbound_max_bytes = int64_t{64} << 20;
};

// What a bad option would otherwise make every launch or connection fail
// with: the workload-user policy, the TLS files. INVALID_ARGUMENT with a
// message for the person starting the agent.
absl::Status ValidateAgentOptions(const AgentOptions& options);

class Agent {
 public:
  explicit Agent(AgentOptions options);
  // Stops: closes the session, and kills every rank it runs unless they
  // run under keepers (AgentOptions::keeper_exe).
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  void Start();
  void Stop();
  // Stopping with --on-stop=drain: asks the coordinator to place nothing
  // more here. Ranks keep running; a gang already on its way is launched.
  void Drain();
  // Whether, since Drain, every rank has ended and its exit (with its last
  // metrics) has reached the coordinator. Any thread.
  bool Drained();
  // Whether the loop ran a task posted now within `timeout` (the systemd
  // watchdog's probe). Any thread.
  bool LoopAnswers(std::chrono::milliseconds timeout);
  // Messages read from the coordinator that the loop has not handled yet,
  // and the most held at once. Any thread.
  InboundGate::Counts Inbound() const;

  // Path of a rank's log (stdout and stderr).
  static std::string LogPath(const std::string& state_dir, const std::string& job_id,
                             int32_t attempt, int32_t rank);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Binds an ephemeral TCP port and releases it, for MASTER_PORT. The port is
// free when returned, and the kernel searches the ephemeral range from a
// random offset, so another socket is unlikely to get it before rank 0
// binds it (torchrun picks its ports the same way); if one does, the
// rendezvous fails and the job's restart policy decides.
absl::StatusOr<int> ReservePort();

}  // namespace gangway::agent
