// The core's agent sessions: registration and reconciliation, what agents
// report (gang starts, exits, metrics, logs), and nodes lost. Part of Core
// (core.h); split from core.cc to keep each file to one concern.
#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/agent_messages.h"
#include "coordinator/core.h"
#include "coordinator/gpu_topology.h"
#include "coordinator/job_state.h"

namespace gangway::coordinator {

// ---------------------------------------------------------------------------
// Agent sessions

absl::StatusOr<v1::RegisterAck> Core::OnRegister(int64_t session, const v1::Register& reg) {
  const std::string& name = reg.node_name();
  if (name.empty() || name.size() > kMaxNodeNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("register.node_name: must be 1-", kMaxNodeNameBytes, " bytes"));
  }
  const auto& inv = reg.inventory();
  if (inv.milli_cpus() < 0 || inv.memory_bytes() < 0 || inv.gpus_size() > 64) {
    return absl::InvalidArgumentError(
        "register.inventory: cpus and memory must be >= 0 and a node has at most 64 GPUs");
  }
  NodeRec& node = NodeFor(name);
  const int64_t now = clock_->MonotonicMs();
  // Two agents under one name (a cloned machine) would take turns stealing
  // the node and fail each other's jobs as lost: while the first is live
  // (connected, heard from within the node timeout), another instance is
  // refused. Its agent retries, so it takes over once the first is gone.
  if (node.session != 0 && node.session != session && !node.instance.empty() &&
      reg.instance() != node.instance && now - node.heard_mono <= options_.node_timeout_ms) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", name, " is already connected from another agent (heard from ",
                     (now - node.heard_mono) / 1000.0,
                     " s ago); a second agent with the same --name (a cloned machine?) is refused "
                     "while the first is live"));
  }
  if (node.session != 0 && node.session != session) {
    // The agent reconnected before its old stream was noticed as gone.
    sessions_.erase(node.session);
    sink_->Close(node.session, absl::AbortedError("replaced by a newer session of this node"));
  }
  node.session = session;
  node.instance = reg.instance();
  node.lost = false;
  sessions_[session] = name;
  node.node.set_address(reg.address().empty() ? name : reg.address());
  node.node.set_agent_version(reg.agent_version());
  node.node.set_draining(reg.draining());
  *node.node.mutable_inventory() = inv;
  node.gpu_topology = GpuTopologyFromInventory(inv);
  node.node.set_state(v1::NODE_STATE_READY);
  node.node.set_last_seen_ms(clock_->NowMs());
  node.heard_mono = now;
  node.acked_mono = now;  // the RegisterAck grants the first lease
  GW_LOG_INFO("node={} registered session={} cpus={} gpus={} ranks_reported={}", name, session,
              inv.milli_cpus() / 1000.0, inv.gpus_size(), reg.ranks_size());
  Reconcile(node, reg);
  schedule_needed_ = true;
  v1::RegisterAck ack;
  ack.set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
  ack.set_lease_ms(options_.lease_ms);
  ack.set_lease_grace_ms(options_.stop_grace_ms);
  ack.set_acks_metrics(true);
  return ack;
}

void Core::Reconcile(NodeRec& node, const v1::Register& reg) {
  const std::string& name = node.node.name();
  std::set<std::pair<std::string, int32_t>> stop, forget;
  std::set<std::pair<std::string, int32_t>> known;  // (job, rank) the agent reported
  std::set<std::string> started;                    // jobs with ranks reported started
  // Gangs already being stopped whose ranks still run here: the StopGang may
  // have been lost with the old session (or sent before a coordinator
  // restart), and without it they would never stop. Noted before any exit
  // below starts a new stop, which sends its own StopGang.
  std::set<std::pair<std::string, int32_t>> restop;
  for (const v1::RankRecord& rec : reg.ranks()) {
    v1::Job* job = FindJob(rec.job_id());
    if (rec.exited() || !job || job->attempt() != rec.attempt()) continue;
    if (job->state() != v1::JOB_STATE_RESTARTING && job->state() != v1::JOB_STATE_STOPPING) {
      continue;
    }
    v1::RankStatus* rank = FindRank(*job, rec.rank());
    if (rank && rank->node() == name && IsLive(*job, *rank)) {
      restop.emplace(job->id(), job->attempt());
    }
  }
  for (const v1::RankRecord& rec : reg.ranks()) {
    v1::Job* job = FindJob(rec.job_id());
    v1::RankStatus* rank =
        job && job->attempt() == rec.attempt() ? FindRank(*job, rec.rank()) : nullptr;
    if (rank && rank->node() == name && IsLive(*job, *rank)) {
      known.emplace(rec.job_id(), rec.rank());
      if (rec.exited()) {
        HandleExit(*job, *rank, AgentExitCode(rec.exit_code()));
      } else if (rank->state() == v1::RANK_STATE_LAUNCHING) {
        rank->set_state(v1::RANK_STATE_RUNNING);
        rank->set_pid(rec.pid());
        rank->set_start_time_ms(clock_->NowMs());
        MarkChanged(*job);
        started.insert(job->id());
      }
      continue;
    }
    // Not a rank this coordinator expects there: stop it if it runs, and let
    // the agent drop its record once it has exited.
    (rec.exited() ? forget : stop).emplace(rec.job_id(), rec.attempt());
  }
  for (const auto& [job_id, attempt] : restop) {
    const v1::Job* job = FindJob(job_id);
    if (job && job->attempt() == attempt &&
        (job->state() == v1::JOB_STATE_RESTARTING || job->state() == v1::JOB_STATE_STOPPING)) {
      stop.emplace(job_id, attempt);
    }
  }
  // Ranks that started while their GangStarted was lost with the session.
  for (const std::string& id : started) {
    v1::Job* job = FindJob(id);
    if (!job || job->state() != v1::JOB_STATE_SCHEDULED) continue;
    if (job->master_port() == 0 && job->ranks(0).node() == name) {
      // Rank 0's node runs its ranks, but MASTER_PORT, which only its
      // GangStarted carries, is gone: the other nodes can never be launched
      // and the gang would wait forever. Replace the attempt; it is no
      // failure of the job, so it does not count against backoffLimit.
      bool here_launching = false, elsewhere_launching = false;
      for (const auto& rank : job->ranks()) {
        if (rank.state() != v1::RANK_STATE_LAUNCHING) continue;
        (rank.node() == name ? here_launching : elsewhere_launching) = true;
      }
      if (!here_launching && elsewhere_launching) {
        BeginStop(*job, v1::JOB_STATE_RESTARTING, v1::JOB_STATE_PENDING,
                  absl::StrCat("restarting: MASTER_PORT of attempt ", job->attempt(),
                               " was lost with node ", name, "'s session"));
        continue;
      }
    }
    MaybeRunning(*job);
  }
  for (const auto& [job_id, attempt] : stop) {
    GW_LOG_WARN("node={} job={} attempt={} runs but is not expected there: stopping it", name,
                job_id, attempt);
    Send(name, StopMessage(job_id, attempt, options_.stop_grace_ms));
  }
  for (const auto& [job_id, attempt] : forget) Send(name, ForgetMessage(job_id, attempt));

  // Ranks expected here that the agent does not know.
  const std::set<std::string> jobs = node.jobs;
  for (const std::string& id : jobs) {
    v1::Job* job = FindJob(id);
    if (!job) continue;
    bool relaunch = false;
    const bool launch_sent = job->master_port() != 0;
    for (auto& rank : *job->mutable_ranks()) {
      if (rank.node() != name || !IsLive(*job, rank) || known.count({id, rank.rank()})) continue;
      const bool is_master_node = job->ranks(0).node() == name;
      if (rank.state() == v1::RANK_STATE_LAUNCHING &&
          (job->state() == v1::JOB_STATE_SCHEDULED || job->state() == v1::JOB_STATE_RUNNING)) {
        // Never launched there (the message was lost with the old session):
        // launching now cannot make a second copy.
        if (is_master_node || launch_sent) relaunch = true;
        continue;
      }
      // It ran there and the agent no longer knows it: its exit is unknown.
      HandleExit(*job, rank, -1);
    }
    if (relaunch && (job->state() == v1::JOB_STATE_SCHEDULED)) LaunchOn(*job, name);
  }
}

void Core::HandleGangStarted(NodeRec& node, const v1::GangStarted& msg) {
  const std::string& name = node.node.name();
  v1::Job* job = FindJob(msg.job_id());
  if (!job || job->attempt() != msg.attempt() || !HoldsResources(job->state())) {
    Send(name, StopMessage(msg.job_id(), msg.attempt(), options_.stop_grace_ms));
    return;
  }
  const int64_t now = clock_->NowMs();
  for (const v1::RankRecord& rec : msg.ranks()) {
    v1::RankStatus* rank = FindRank(*job, rec.rank());
    if (!rank || rank->node() != name || rank->state() != v1::RANK_STATE_LAUNCHING) continue;
    rank->set_state(v1::RANK_STATE_RUNNING);
    rank->set_pid(rec.pid());
    rank->set_start_time_ms(now);
  }
  MarkChanged(*job);
  if (job->state() != v1::JOB_STATE_SCHEDULED) return;
  if (job->master_port() == 0 && job->ranks(0).node() == name && msg.master_port() <= 0) {
    // Rank 0's node could not reserve a port: the other nodes cannot be
    // launched, so the attempt fails like a lost rank and the policy decides.
    GW_LOG_WARN("job={} node={} reported no MASTER_PORT", job->id(), name);
    HandleExit(*job, *job->mutable_ranks(0), -1);
    return;
  }
  if (job->master_port() == 0 && job->ranks(0).node() == name) {
    job->set_master_port(msg.master_port());
    std::set<std::string> others;
    for (const auto& rank : job->ranks()) {
      if (rank.node() != name) others.insert(rank.node());
    }
    for (const std::string& other : others) LaunchOn(*job, other);
  }
  MaybeRunning(*job);
}

void Core::MaybeRunning(v1::Job& job) {
  if (job.state() != v1::JOB_STATE_SCHEDULED) return;
  for (const auto& rank : job.ranks()) {
    if (rank.state() == v1::RANK_STATE_LAUNCHING) return;
  }
  SetState(job, v1::JOB_STATE_RUNNING, "every rank started");
}

void Core::OnAgentMessage(int64_t session, const v1::AgentMessage& msg) {
  auto s = sessions_.find(session);
  if (s == sessions_.end()) return;  // a replaced or timed-out session
  NodeRec& node = nodes_.at(s->second);
  node.node.set_last_seen_ms(clock_->NowMs());
  node.heard_mono = clock_->MonotonicMs();
  switch (msg.msg_case()) {
    case v1::AgentMessage::kHeartbeat:
      // A third of a lease apart at most: two acks may go missing before
      // a lease runs out, at a fraction of one ack per heartbeat's cost.
      if (options_.lease_ms > 0 && node.heard_mono - node.acked_mono >= options_.lease_ms / 3) {
        // Straight to the session, not through the outbox that waits for
        // the store: a storage outage must not expire every lease.
        v1::CoordinatorMessage ack;
        ack.mutable_heartbeat_ack();
        sink_->Send(session, ack);
        node.acked_mono = node.heard_mono;
      }
      [[fallthrough]];
    case v1::AgentMessage::kRegister:  // only valid first; ignored later
    case v1::AgentMessage::MSG_NOT_SET:
      return;
    case v1::AgentMessage::kDraining:
      if (!node.node.draining()) {
        GW_LOG_INFO("node={} draining: nothing more is placed on it", node.node.name());
      }
      node.node.set_draining(true);
      return;
    case v1::AgentMessage::kMetrics: {
      const v1::RankMetrics& m = msg.metrics();
      // Acknowledged once this turn is stored (the outbox waits for it),
      // kept or not: the agent then stops resending them.
      int64_t top = 0;
      for (const v1::MetricPoint& p : m.points()) top = std::max(top, p.seq());
      if (top > 0) {
        v1::CoordinatorMessage ack;
        v1::MetricsAck* a = ack.mutable_metrics_ack();
        a->set_job_id(m.job_id());
        a->set_attempt(m.attempt());
        a->set_rank(m.rank());
        a->set_seq(top);
        Send(node.node.name(), std::move(ack));
      }
      // A node reports only its own ranks' metrics: one node cannot make
      // another node's trial the sweep's best.
      v1::Job* job = FindJob(m.job_id());
      const v1::RankStatus* rank =
          job && job->attempt() == m.attempt() ? FindRank(*job, m.rank()) : nullptr;
      if (rank == nullptr || rank->node() != node.node.name()) {
        GW_LOG_WARN("node={} reported metrics of job={} rank={} it does not run; ignored",
                    node.node.name(), m.job_id(), m.rank());
        return;
      }
      // The agent has no answer channel for a stop: the rule's verdict acts
      // through StopTrialJob.
      (void)OnMetrics(m.job_id(), m.attempt(), m.rank(), {m.points().begin(), m.points().end()},
                      /*from_agent=*/true);
      return;
    }
    case v1::AgentMessage::kGangStarted:
      HandleGangStarted(node, msg.gang_started());
      return;
    case v1::AgentMessage::kRankExited: {
      const v1::RankRecord& rec = msg.rank_exited().rank();
      v1::Job* job = FindJob(rec.job_id());
      v1::RankStatus* rank =
          job && job->attempt() == rec.attempt() ? FindRank(*job, rec.rank()) : nullptr;
      if (rank && rank->node() == node.node.name() && IsLive(*job, *rank)) {
        GW_LOG_INFO("job={} rank={} node={} exited code={}", rec.job_id(), rec.rank(),
                    node.node.name(), rec.exit_code());
        HandleExit(*job, *rank, AgentExitCode(rec.exit_code()));
      } else {
        // Already accounted for (a stale attempt, or a rank counted as lost).
        Send(node.node.name(), ForgetMessage(rec.job_id(), rec.attempt()));
      }
      return;
    }
    case v1::AgentMessage::kLogData: {
      auto it = log_requests_.find(msg.log_data().request_id());
      if (it == log_requests_.end()) return;
      LogCallback done = std::move(it->second.done);
      log_requests_.erase(it);
      done(msg.log_data());
      return;
    }
  }
}

void Core::OnSessionClosed(int64_t session) {
  auto s = sessions_.find(session);
  if (s == sessions_.end()) return;
  NodeRec& node = nodes_.at(s->second);
  // The node stays Ready until its heartbeat times out: a reconnect within
  // the timeout loses nothing.
  node.session = 0;
  GW_LOG_INFO("node={} session={} closed", s->second, session);
  for (auto it = log_requests_.begin(); it != log_requests_.end();) {
    if (it->second.node == s->second) {
      LogCallback done = std::move(it->second.done);
      it = log_requests_.erase(it);
      done(absl::UnavailableError("the node holding the log disconnected"));
    } else {
      ++it;
    }
  }
  sessions_.erase(s);
}

void Core::NodeSilent(NodeRec& node, const std::string& why) {
  GW_LOG_WARN("node={} NotReady: {}", node.node.name(), why);
  node.node.set_state(v1::NODE_STATE_NOT_READY);
  if (node.session != 0) {
    sink_->Close(node.session, absl::UnavailableError(why));
    sessions_.erase(node.session);
    node.session = 0;
  }
}

void Core::NodeLost(NodeRec& node, const std::string& why) {
  NodeSilent(node, why);
  GW_LOG_WARN("node={} ranks lost: {}", node.node.name(), why);
  node.lost = true;
  const std::set<std::string> jobs = node.jobs;
  for (const std::string& id : jobs) {
    v1::Job* job = FindJob(id);
    if (!job) continue;
    for (auto& rank : *job->mutable_ranks()) {
      if (rank.node() == node.node.name()) HandleExit(*job, rank, -1);
    }
  }
}

}  // namespace gangway::coordinator
