// The coordinator's core: every job, node and session record, and every
// decision about them.
//
// Thread: one. The core is plain sequential code; the gRPC layer posts each
// event onto the loop that owns the core and calls Settle() at the end of
// the loop turn. The core never calls gRPC: messages for agents go to an
// AgentSink, answers that must wait for the store go to callbacks run from
// Settle() after the write.
//
// A loop turn ends with Settle():
//   1. write the changed jobs (one transaction); answer submissions, or
//      refuse them if the write failed (nothing half-stored);
//   2. run the scheduler if capacity or the queue changed, launch gangs;
//   3. write again, then send the agents their messages and tell watchers.
//      While a write fails, the messages wait for a later Settle(): no agent
//      acts on a decision the store does not hold.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/spec.h"
#include "coordinator/core_gauges.h"
#include "coordinator/metric_retention.h"
#include "coordinator/principal.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "coordinator/sweep_controller.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

// Where messages for agents go. Implemented over the session streams; tests
// record them.
class AgentSink {
 public:
  virtual ~AgentSink() = default;
  virtual void Send(int64_t session, const v1::CoordinatorMessage& msg) = 0;
  // Ends a session (its agent will reconnect and register again).
  virtual void Close(int64_t session, const absl::Status& why) = 0;
};

struct CoreOptions {
  int64_t heartbeat_interval_ms = 1000;
  // A node silent this long is NotReady: nothing new is placed there.
  int64_t node_timeout_ms = 5000;
  // The agents' lease (RegisterAck.lease_ms): an agent that hears no
  // HeartbeatAck for this long stops its ranks itself. A silent node's
  // ranks count as lost (and their gang relaunches elsewhere) only once
  // node_timeout_ms + stop_grace_ms + heartbeat_interval_ms have passed, by
  // when a live agent has stopped them: later recovery, never two attempts
  // at once. 0: no lease; ranks are lost at node_timeout_ms.
  int64_t lease_ms = 5000;
  // After a coordinator restart, nodes holding live ranks get this much more
  // than node_timeout_ms to register: their agents may be in a reconnect
  // backoff of up to 5 s when the coordinator comes back.
  int64_t recovery_grace_ms = 5000;
  // Between SIGTERM and SIGKILL when a gang is stopped.
  int64_t stop_grace_ms = 5000;
  // Crash-loop backoff, as Kubernetes does for pods (job_state.h
  // RestartBackoffMs): a failed gang's first restart is immediate, the
  // second waits restart_backoff_ms, doubling for each one after it, at
  // most restart_backoff_max_ms, so a gang that fails at once every time
  // cannot monopolise the coordinator or its nodes. 0: no waiting.
  int64_t restart_backoff_ms = 10'000;
  int64_t restart_backoff_max_ms = 300'000;
  // A job Pending this long holds capacity for itself when it does not fit
  // (scheduler.h: reserve), so a stream of small jobs cannot starve a large
  // gang. 0: never.
  int64_t reserve_after_ms = 60'000;
  // GANGWAY_RDZV for ranks.
  std::string rendezvous_endpoint;
  // Most metric points kept per job and metric name (metric_retention.h):
  // past it a series is downsampled evenly, keeping the latest, lowest and
  // highest values. 0: every point.
  int64_t metric_points_per_name = 10'000;
  // Seconds a finished job or sweep is kept (with its trials' jobs and
  // every metric point) when its spec sets no ttlSecondsAfterFinished.
  // -1: kept forever.
  int64_t ttl_after_finished_s = -1;
  // Called (on the loop) when a job reaches a terminal state.
  std::function<void(const std::string& job_id)> on_job_ended;
  // Called (on the loop) when a gang is launched as `attempt`.
  std::function<void(const std::string& job_id, int32_t attempt)> on_attempt_started;
  // Called (on the loop) after every job state change, `from` the state it
  // left (UNSPECIFIED for a new job): what /metrics counts (telemetry.h).
  std::function<void(const v1::Job& job, v1::JobState from)> on_job_state;
  // Mints the rank's GANGWAY_JOB_TOKEN for an attempt (coordinator/job_tokens.h);
  // unset: ranks get none.
  std::function<std::string(const std::string& job_id, int32_t attempt)> job_token;
};

class Core final : private TrialHost {
 public:
  Core(Store* store, AgentSink* sink, const common::Clock* clock, CoreOptions options);

  // Loads every stored job; placements of live jobs hold their resources on
  // nodes that must register within node_timeout_ms or count as lost.
  absl::Status Recover();

  // ---- Control -----------------------------------------------------------
  using JobCallback = std::function<void(absl::StatusOr<v1::Job>)>;
  // `done` runs from Settle() once the job is stored (or refused). The job
  // records `who` as its owner.
  void Submit(const v1::SubmitJobRequest& request, JobCallback done,
              const Principal& who = Principal());
  absl::StatusOr<v1::Job> GetJob(const std::string& id) const;
  std::vector<v1::Job> ListJobs(bool all) const;
  // One page of ListJobs, oldest first (gangway.proto): at most
  // kMaxListPage jobs, so a listing never holds the loop for long.
  // INVALID_ARGUMENT for a page token no answer gave.
  static constexpr int kMaxListPage = 1000;
  absl::StatusOr<v1::ListJobsResponse> ListJobsPage(const v1::ListJobsRequest& req) const;
  // PERMISSION_DENIED unless `who` may act on the job's owner's jobs.
  absl::StatusOr<v1::Job> Cancel(const std::string& id, const Principal& who = Principal());
  std::vector<v1::Node> ListNodes() const;

  // `fn` runs with the job now and after every change that was stored.
  using Watcher = std::function<void(const v1::Job&)>;
  absl::StatusOr<int64_t> Watch(const std::string& id, Watcher fn);
  void Unwatch(int64_t watch_id);

  // ---- Sweeps ---------------------------------------------------------------
  using SweepCallback = std::function<void(absl::StatusOr<v1::Sweep>)>;
  // `done` runs from Settle() once the sweep is stored (or refused).
  void SubmitSweep(const v1::SubmitSweepRequest& request, SweepCallback done,
                   const Principal& who = Principal());
  absl::StatusOr<v1::Sweep> GetSweep(const std::string& id) const { return sweeps_.Get(id); }
  std::vector<v1::Sweep> ListSweeps(bool all) const { return sweeps_.List(all); }
  absl::StatusOr<v1::Sweep> CancelSweep(const std::string& id, const Principal& who = Principal());
  absl::StatusOr<v1::Sweep> UpdateSweep(const v1::UpdateSweepRequest& request,
                                        const Principal& who = Principal());
  using SweepWatcher = std::function<void(const v1::Sweep&)>;
  absl::StatusOr<int64_t> WatchSweep(const std::string& id, SweepWatcher fn);
  // Stored points of a job, optionally of one metric.
  absl::StatusOr<std::vector<v1::MetricPoint>> GetMetrics(const std::string& job_id,
                                                          const std::string& name);
  // The same a page at a time (at most kMaxMetricsPage points).
  static constexpr int32_t kMaxMetricsPage = 5000;
  absl::StatusOr<v1::GetMetricsResponse> GetMetricsPage(const v1::GetMetricsRequest& request);

  // OK when `attempt` is the job's current attempt and its gang is placed or
  // running: what a job token is good for. PERMISSION_DENIED otherwise.
  absl::Status CheckLiveAttempt(const std::string& job_id, int32_t attempt) const;

  // Metrics of a rank (from its agent or pushed). True when the trial's
  // early-stopping rule says it should stop. Pushed points (`from_agent`
  // false) lose any seq (MetricPoint.seq): only an agent's count.
  bool OnMetrics(const std::string& job_id, int32_t attempt, int32_t rank,
                 const std::vector<v1::MetricPoint>& points, bool from_agent = false);

  // Reads up to max_bytes of a rank's log at `offset` through its agent.
  using LogCallback = std::function<void(absl::StatusOr<v1::LogData>)>;
  void ReadLog(const std::string& job_id, int32_t rank, int32_t attempt, int64_t offset,
               int64_t max_bytes, LogCallback done);

  // ---- Agent sessions ----------------------------------------------------
  absl::StatusOr<v1::RegisterAck> OnRegister(int64_t session, const v1::Register& reg);
  void OnAgentMessage(int64_t session, const v1::AgentMessage& msg);
  void OnSessionClosed(int64_t session);

  // ---- Loop --------------------------------------------------------------
  // Heartbeat timeouts and deadlines against the clock.
  void Tick();
  void Settle();
  // `done` runs from the next Settle(), after its write: with true when the
  // write succeeded. For answers that must not precede their commit.
  void AfterWrite(std::function<void(bool stored)> done) {
    after_write_.push_back(std::move(done));
  }

  const CoreOptions& options() const { return options_; }
  // Counts for /metrics (core_gauges.cc); O(jobs + trials + nodes).
  CoreGauges Gauges() const;

 private:
  struct NodeRec {
    v1::Node node;
    int64_t session = 0;  // 0: not connected
    // When the node was last heard from, on the monotonic clock (liveness);
    // node.last_seen_ms is the same moment in wall time, for people.
    int64_t heard_mono = 0;
    int64_t acked_mono = 0;  // the last lease renewal sent (monotonic)
    std::string instance;    // Register.instance of the connected agent
    bool lost = false;       // NodeLost ran since it last registered
    // Built once per registration; null when the node reports no GPU links.
    std::shared_ptr<const GpuTopology> gpu_topology;
    int64_t free_milli_cpus = 0;
    int64_t free_memory = 0;
    uint64_t used_gpus = 0;
    std::set<std::string> jobs;  // jobs holding resources here
  };
  // TrialHost
  std::string CreateTrialJob(v1::JobSpec spec, const std::string& sweep_id) override;
  void StopTrialJob(const std::string& job_id, const std::string& reason) override;
  int64_t NowMs() const override { return clock_->NowMs(); }
  int64_t NextSeq() override { return next_seq_++; }
  bool TrialJobLive(const std::string& job_id) const override;

  struct LogRequest {
    std::string node;
    LogCallback done;
  };

  v1::Job* FindJob(const std::string& id);
  // The stored points of the job's current run, for recovery: those of its
  // attempt (or of unknown attempt), none while it waits for a relaunch.
  absl::StatusOr<std::vector<v1::MetricPoint>> CurrentRunMetrics(const std::string& job_id);
  // A new Pending job (a submission or a sweep's trial); returns its id.
  std::string AddJob(v1::JobSpec spec, const std::string& sweep_id, const std::string& owner);
  // PERMISSION_DENIED naming `what` unless `who` may act on `owner`'s work.
  static absl::Status CheckOwner(const Principal& who, const std::string& owner,
                                 const std::string& what);
  NodeRec& NodeFor(const std::string& name);
  void MarkChanged(v1::Job& job);
  void SetState(v1::Job& job, v1::JobState to, std::string reason);
  void Send(const std::string& node, v1::CoordinatorMessage msg);

  absl::Status CheckCapacity(const common::ParsedJobSpec* parsed, const v1::JobSpec& spec) const;
  void Schedule();
  void LaunchOn(v1::Job& job, const std::string& node);
  void Allocate(v1::Job& job, bool take);
  void BeginStop(v1::Job& job, v1::JobState via, v1::JobState target, std::string reason);
  void MaybeFinishStop(v1::Job& job);
  void FinishAttempt(v1::Job& job);
  void HandleGangStarted(NodeRec& node, const v1::GangStarted& msg);
  // Scheduled -> Running once no rank is still launching.
  void MaybeRunning(v1::Job& job);
  void HandleExit(v1::Job& job, v1::RankStatus& rank, int exit_code);
  bool IsLive(const v1::Job& job, const v1::RankStatus& rank) const;
  v1::RankStatus* FindRank(v1::Job& job, int32_t rank);
  void Reconcile(NodeRec& node, const v1::Register& reg);
  // NotReady: nothing is placed there, its session is closed; its ranks
  // are still counted as running (their agent may be alive and fencing).
  void NodeSilent(NodeRec& node, const std::string& why);
  // NodeSilent, and every rank it held is lost (the policy decides).
  void NodeLost(NodeRec& node, const std::string& why);
  bool Flush();

  // ---- Retention (core_retention.cc) ---------------------------------------
  // A finished job (not a trial's: those go with their sweep) or sweep the
  // store now holds: when it is to be deleted.
  void ScheduleExpiry(const v1::Job& job);
  void ScheduleExpiry(const v1::Sweep& sweep);
  // Deletes what has expired; from Tick().
  void CollectGarbage();
  // Forgets the job everywhere and has the store delete it and its points.
  void DropJob(const std::string& id);
  // Points of `job_id` to store, downsampled; the series' state is loaded
  // from the store the first time.
  void KeepMetrics(const std::string& job_id, std::vector<v1::MetricPoint> points);

  Store* store_;
  AgentSink* sink_;
  const common::Clock* clock_;
  CoreOptions options_;

  std::unordered_map<std::string, v1::Job> jobs_;
  std::map<std::string, NodeRec> nodes_;  // ordered: stable scheduling input
  std::unordered_map<int64_t, std::string> sessions_;
  // Durations are measured on the monotonic clock (common::Clock).
  std::map<std::string, int64_t> pending_;         // job -> Pending since (monotonic ms)
  std::multimap<int64_t, std::string> deadlines_;  // deadline (monotonic ms) -> job
  // Jobs backing off after a failure -> when they may be placed (monotonic
  // ms); Job.relaunch_after_ms is the same moment in wall time.
  std::unordered_map<std::string, int64_t> relaunch_at_;
  int64_t next_seq_ = 1;

  // Work of the current loop turn.
  std::set<std::string> dirty_;
  // Answers that wait for this turn's first write: called with whether it
  // succeeded.
  std::vector<std::function<void(bool stored)>> after_write_;
  std::vector<std::pair<std::string, v1::MetricPoint>> metric_writes_;
  std::vector<std::pair<std::string, v1::CoordinatorMessage>> outbox_;
  bool schedule_needed_ = false;
  // The earliest relaunch_after_ms of a job backing off, 0 for none: Tick
  // schedules again when it has passed.
  int64_t next_relaunch_ms_ = 0;
  // The monotonic time of a wall-clock moment, as far as it is from now.
  int64_t MonoAt(int64_t wall_ms) const {
    return clock_->MonotonicMs() + (wall_ms - clock_->NowMs());
  }

  MetricRetention retention_{options_.metric_points_per_name};
  // Per job: the attempt and the highest MetricPoint.seq it holds, so a
  // point an agent resends (it was not acknowledged before a restart) is
  // stored once. Loaded from the store at a job's first points.
  struct SeenSeq {
    int32_t attempt = 0;
    int64_t seq = 0;
  };
  std::unordered_map<std::string, SeenSeq> metric_seq_;
  // Drops from `points` those the job's attempt already holds (by seq).
  void DropSeenMetrics(const std::string& job_id, int32_t attempt,
                       std::vector<v1::MetricPoint>* points);
  std::vector<MetricTrim> metric_trims_;
  // Expiry (monotonic ms) -> job or sweep id; `expiry_` holds each one's
  // current expiry, so stale entries are skipped.
  std::multimap<int64_t, std::string> expiries_;
  std::unordered_map<std::string, int64_t> expiry_;
  std::vector<std::string> deleted_jobs_;
  std::vector<std::string> deleted_sweeps_;

  SweepController sweeps_{this};
  std::map<std::string, std::map<int64_t, Watcher>> watchers_;
  std::map<std::string, std::map<int64_t, SweepWatcher>> sweep_watchers_;
  std::unordered_map<int64_t, std::string> watch_jobs_;
  int64_t next_watch_ = 1;
  std::unordered_map<int64_t, LogRequest> log_requests_;
  int64_t next_log_request_ = 1;
};

}  // namespace gangway::coordinator
