#include "coordinator/core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/rank_env.h"
#include "coordinator/agent_messages.h"
#include "coordinator/gpu_topology.h"
#include "coordinator/job_state.h"
#include "coordinator/scheduler.h"

namespace gangway::coordinator {

Core::Core(Store* store, AgentSink* sink, const common::Clock* clock, CoreOptions options)
    : store_(store), sink_(sink), clock_(clock), options_(std::move(options)) {}

// ---------------------------------------------------------------------------
// Recovery

absl::Status Core::Recover() {
  absl::StatusOr<std::vector<v1::Job>> loaded = store_->LoadJobs();
  if (!loaded.ok()) return loaded.status();
  const int64_t now = clock_->NowMs();
  const int64_t mono = clock_->MonotonicMs();
  for (v1::Job& job : *loaded) {
    next_seq_ = std::max(next_seq_, job.seq() + 1);
    std::string id = job.id();
    auto [it, inserted] = jobs_.emplace(id, std::move(job));
    v1::Job& j = it->second;
    // A job never launched has waited since it was created; one waiting for
    // a relaunch, since a moment this store does not keep: count from now.
    if (j.state() == v1::JOB_STATE_PENDING) {
      pending_.emplace(id, j.attempt() == 0 ? MonoAt(j.create_time_ms()) : mono);
      if (j.relaunch_after_ms() > now) relaunch_at_[id] = MonoAt(j.relaunch_after_ms());
    }
    if (!IsTerminal(j.state()) && j.spec().active_deadline_seconds() > 0) {
      deadlines_.emplace(MonoAt(j.create_time_ms() + j.spec().active_deadline_seconds() * 1000),
                         id);
    }
    if (HoldsResources(j.state())) {
      // Nodes learn of their ranks again when they register; until then they
      // are NotReady stand-ins that time out like any silent node.
      for (const auto& rank : j.ranks()) {
        NodeRec& node = NodeFor(rank.node());
        node.node.set_last_seen_ms(now + options_.recovery_grace_ms);
        node.heard_mono = mono + options_.recovery_grace_ms;
      }
      Allocate(j, true);
    }
  }
  absl::StatusOr<std::vector<v1::Sweep>> sweeps = store_->LoadSweeps();
  if (!sweeps.ok()) return sweeps.status();
  for (const v1::Sweep& sweep : *sweeps) next_seq_ = std::max(next_seq_, sweep.seq() + 1);
  if (absl::Status s =
          sweeps_.Recover(*std::move(sweeps),
                          [this](const std::string& job_id) { return CurrentRunMetrics(job_id); });
      !s.ok()) {
    return s;
  }
  for (const auto& [id, job] : jobs_) ScheduleExpiry(job);
  for (const v1::Sweep& sweep : sweeps_.List(true)) ScheduleExpiry(sweep);
  schedule_needed_ = !pending_.empty();
  GW_LOG_INFO("recovered jobs={} pending={} nodes_expected={}", jobs_.size(), pending_.size(),
              nodes_.size());
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Small helpers

v1::Job* Core::FindJob(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

Core::NodeRec& Core::NodeFor(const std::string& name) {
  auto [it, inserted] = nodes_.try_emplace(name);
  if (inserted) {
    it->second.node.set_name(name);
    it->second.node.set_state(v1::NODE_STATE_NOT_READY);
  }
  return it->second;
}

void Core::MarkChanged(v1::Job& job) { dirty_.insert(job.id()); }

void Core::SetState(v1::Job& job, v1::JobState to, std::string reason) {
  if (absl::Status s = CheckTransition(job.state(), to); !s.ok()) {
    GW_LOG_ERROR("job={} internal: {}", job.id(), std::string(s.message()));
    return;
  }
  GW_LOG_INFO("job={} state {} -> {} {}", job.id(), StateName(job.state()), StateName(to), reason);
  if (job.state() == v1::JOB_STATE_PENDING) pending_.erase(job.id());
  const v1::JobState from = job.state();
  job.set_state(to);
  job.set_reason(std::move(reason));
  if (to == v1::JOB_STATE_PENDING) {
    pending_.emplace(job.id(), clock_->MonotonicMs());
    schedule_needed_ = true;
  }
  if (IsTerminal(to)) {
    job.set_end_time_ms(clock_->NowMs());
    retention_.Forget(job.id());  // loaded again should a late point come
  }
  MarkChanged(job);
  if (options_.on_job_state) options_.on_job_state(job, from);
  if (!job.sweep().empty()) sweeps_.OnTrialJobEnded(job);
  if (IsTerminal(to) && options_.on_job_ended) options_.on_job_ended(job.id());
}

void Core::Send(const std::string& node, v1::CoordinatorMessage msg) {
  outbox_.emplace_back(node, std::move(msg));
}

v1::RankStatus* Core::FindRank(v1::Job& job, int32_t rank) {
  if (rank < 0 || rank >= job.ranks_size()) return nullptr;
  return job.mutable_ranks(rank);  // ranks are stored in rank order
}

bool Core::IsLive(const v1::Job& job, const v1::RankStatus& rank) const {
  return HoldsResources(job.state()) &&
         (rank.state() == v1::RANK_STATE_LAUNCHING || rank.state() == v1::RANK_STATE_RUNNING);
}

// ---------------------------------------------------------------------------
// Control

absl::Status Core::CheckOwner(const Principal& who, const std::string& owner,
                              const std::string& what) {
  if (who.MayActOn(owner)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(what, " belongs to ",
                                                  owner.empty() ? "nobody" : owner,
                                                  "; only its owner or an admin may change it"));
}

std::string Core::AddJob(v1::JobSpec spec, const std::string& sweep_id, const std::string& owner) {
  const int64_t seq = next_seq_++;
  v1::Job job;
  job.set_id(absl::StrCat(spec.name(), "-", seq));
  job.set_seq(seq);
  job.set_create_time_ms(clock_->NowMs());
  job.set_sweep(sweep_id);
  job.set_owner(owner);
  *job.mutable_spec() = std::move(spec);
  std::string id = job.id();
  v1::Job& j = jobs_.emplace(id, std::move(job)).first->second;
  SetState(j, v1::JOB_STATE_PENDING, "waiting to be scheduled");
  if (j.spec().active_deadline_seconds() > 0) {
    deadlines_.emplace(clock_->MonotonicMs() + j.spec().active_deadline_seconds() * 1000, id);
  }
  return id;
}

absl::StatusOr<v1::Job> Core::GetJob(const std::string& id) const {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job named '", id, "'"));
  return it->second;
}

std::vector<v1::Job> Core::ListJobs(bool all) const {
  std::vector<v1::Job> out;
  for (const auto& [id, job] : jobs_) {
    if (all || !IsTerminal(job.state())) out.push_back(job);
  }
  std::sort(out.begin(), out.end(),
            [](const v1::Job& a, const v1::Job& b) { return a.seq() < b.seq(); });
  return out;
}

absl::StatusOr<v1::ListJobsResponse> Core::ListJobsPage(const v1::ListJobsRequest& req) const {
  int64_t after = -1;
  if (!req.page_token().empty() && (!absl::SimpleAtoi(req.page_token(), &after) || after < 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: '", req.page_token(), "' is not a token a ListJobs answer gave"));
  }
  const size_t limit = req.page_size() <= 0 || req.page_size() > kMaxListPage
                           ? kMaxListPage
                           : static_cast<size_t>(req.page_size());
  // Pointers first: only the page is copied.
  std::vector<const v1::Job*> found;
  for (const auto& [id, job] : jobs_) {
    if (job.seq() > after && (req.all() || !IsTerminal(job.state()))) found.push_back(&job);
  }
  const size_t n = std::min(found.size(), limit);
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(n), found.end(),
                    [](const v1::Job* a, const v1::Job* b) { return a->seq() < b->seq(); });
  v1::ListJobsResponse out;
  for (size_t i = 0; i < n; ++i) *out.add_jobs() = *found[i];
  if (found.size() > n) out.set_next_page_token(absl::StrCat(found[n - 1]->seq()));
  return out;
}

absl::StatusOr<v1::Job> Core::Cancel(const std::string& id, const Principal& who) {
  v1::Job* job = FindJob(id);
  if (!job) return absl::NotFoundError(absl::StrCat("no job named '", id, "'"));
  if (absl::Status s = CheckOwner(who, job->owner(), absl::StrCat("job ", id)); !s.ok()) return s;
  switch (job->state()) {
    case v1::JOB_STATE_PENDING:
      SetState(*job, v1::JOB_STATE_CANCELLED, "cancelled");
      break;
    case v1::JOB_STATE_SCHEDULED:
    case v1::JOB_STATE_RUNNING:
    case v1::JOB_STATE_RESTARTING:
      BeginStop(*job, v1::JOB_STATE_STOPPING, v1::JOB_STATE_CANCELLED, "cancelled");
      break;
    case v1::JOB_STATE_STOPPING:
      job->set_stop_target(v1::JOB_STATE_CANCELLED);
      job->set_reason("cancelled");
      MarkChanged(*job);
      break;
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
      return absl::FailedPreconditionError(
          absl::StrCat("job '", id, "' has already ended (", StateName(job->state()), ")"));
    case v1::JOB_STATE_UNSPECIFIED:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      return absl::InternalError("job in an unknown state");
  }
  return *job;
}

std::vector<v1::Node> Core::ListNodes() const {
  std::vector<v1::Node> out;
  for (const auto& [name, rec] : nodes_) {
    v1::Node n = rec.node;
    int32_t ranks = 0;
    for (const std::string& id : rec.jobs) {
      auto it = jobs_.find(id);
      if (it == jobs_.end()) continue;
      for (const auto& r : it->second.ranks()) {
        if (r.node() == name && IsLive(it->second, r)) ++ranks;
      }
    }
    n.set_running_ranks(ranks);
    // The proto has the field; leaving it empty hid which GPUs are taken.
    for (int32_t g = 0; g < 64; ++g) {
      if (rec.used_gpus & (uint64_t{1} << g)) n.add_allocated_gpus(g);
    }
    out.push_back(std::move(n));
  }
  return out;
}

absl::StatusOr<int64_t> Core::Watch(const std::string& id, Watcher fn) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("no job named '", id, "'"));
  const int64_t watch_id = next_watch_++;
  fn(it->second);
  watchers_[id].emplace(watch_id, std::move(fn));
  watch_jobs_.emplace(watch_id, id);
  return watch_id;
}

void Core::Unwatch(int64_t watch_id) {
  auto it = watch_jobs_.find(watch_id);
  if (it == watch_jobs_.end()) return;
  auto erase = [&](auto& table) {
    auto w = table.find(it->second);
    if (w == table.end()) return;
    w->second.erase(watch_id);
    if (w->second.empty()) table.erase(w);
  };
  erase(watchers_);
  erase(sweep_watchers_);
  watch_jobs_.erase(it);
}

void Core::ReadLog(const std::string& job_id, int32_t rank, int32_t attempt, int64_t offset,
                   int64_t max_bytes, LogCallback done) {
  v1::Job* job = FindJob(job_id);
  if (!job) return done(absl::NotFoundError(absl::StrCat("no job named '", job_id, "'")));
  if (job->ranks_size() == 0) {
    return done(absl::FailedPreconditionError(
        absl::StrCat("job '", job_id, "' has not started yet (", StateName(job->state()), ")")));
  }
  v1::RankStatus* r = FindRank(*job, rank);
  if (!r) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("rank: job '", job_id, "' has ranks 0-", job->ranks_size() - 1)));
  }
  auto node = nodes_.find(r->node());
  if (node == nodes_.end() || node->second.session == 0) {
    return done(absl::UnavailableError(
        absl::StrCat("node '", r->node(), "' holding the log is not connected")));
  }
  const int64_t request_id = next_log_request_++;
  v1::CoordinatorMessage msg;
  auto* read = msg.mutable_read_log();
  read->set_request_id(request_id);
  read->set_job_id(job_id);
  read->set_attempt(attempt > 0 ? attempt : job->attempt());
  read->set_rank(rank);
  read->set_offset(offset);
  read->set_max_bytes(max_bytes);
  log_requests_.emplace(request_id, LogRequest{r->node(), std::move(done)});
  // Reads change nothing stored, so they need not wait for a flush.
  sink_->Send(node->second.session, msg);
}

// ---------------------------------------------------------------------------
// Scheduling and launching

void Core::Allocate(v1::Job& job, bool take) {
  const auto& res = job.spec().resources();
  const int64_t sign = take ? 1 : -1;
  for (const auto& rank : job.ranks()) {
    NodeRec& node = NodeFor(rank.node());
    v1::Resources* a = node.node.mutable_allocated();
    a->set_milli_cpus(a->milli_cpus() + sign * res.milli_cpus());
    a->set_memory_bytes(a->memory_bytes() + sign * res.memory_bytes());
    a->set_gpus(a->gpus() + static_cast<int32_t>(sign) * res.gpus());
    for (int32_t g : rank.gpu_indices()) {
      if (take) {
        node.used_gpus |= uint64_t{1} << g;
      } else {
        node.used_gpus &= ~(uint64_t{1} << g);
      }
    }
    if (take) {
      node.jobs.insert(job.id());
    } else {
      node.jobs.erase(job.id());
    }
  }
}

void Core::Schedule() {
  if (pending_.empty()) return;
  ClusterSnapshot cluster;
  std::vector<const std::string*> names;
  cluster.nodes.reserve(nodes_.size());
  for (const auto& [name, rec] : nodes_) {
    // A stand-in from recovery has no inventory until its node registers: as
    // a 0-cpu node it made every job "never fit" right after a restart.
    if (!rec.node.has_inventory()) continue;
    const auto& inv = rec.node.inventory();
    NodeView v;
    v.name = name;
    // A node whose session closed may be back within the timeout, but a
    // launch sent now would be dropped: place nothing there until it is.
    // A draining agent (--on-stop=drain) takes nothing new either.
    v.ready = rec.node.state() == v1::NODE_STATE_READY && rec.session != 0 && !rec.node.draining();
    v.total_milli_cpus = inv.milli_cpus();
    v.total_memory_bytes = inv.memory_bytes();
    v.total_gpus = std::min(inv.gpus_size(), 64);
    v.free_milli_cpus = inv.milli_cpus() - rec.node.allocated().milli_cpus();
    v.free_memory_bytes = inv.memory_bytes() - rec.node.allocated().memory_bytes();
    const uint64_t all = v.total_gpus == 64 ? ~uint64_t{0} : (uint64_t{1} << v.total_gpus) - 1;
    v.free_gpu_mask = all & ~rec.used_gpus;
    v.gpu_topology = rec.gpu_topology;
    cluster.nodes.push_back(std::move(v));
    names.push_back(&name);
  }
  std::vector<PendingJob> pending;
  pending.reserve(pending_.size());
  const int64_t now = clock_->MonotonicMs();
  next_relaunch_ms_ = 0;
  for (const auto& [id, since] : pending_) {
    const v1::Job& job = jobs_.at(id);
    if (auto wait = relaunch_at_.find(id); wait != relaunch_at_.end()) {
      if (wait->second > now) {
        // Backing off after a failure: not placed, holds nothing, keeps its
        // reason; Tick schedules again when the wait is over.
        if (next_relaunch_ms_ == 0 || wait->second < next_relaunch_ms_) {
          next_relaunch_ms_ = wait->second;
        }
        continue;
      }
      relaunch_at_.erase(wait);
    }
    const auto& spec = job.spec();
    const bool reserve = options_.reserve_after_ms > 0 && now - since >= options_.reserve_after_ms;
    pending.push_back(PendingJob{id, spec.priority(), job.seq(), spec.replicas(),
                                 spec.procs_per_node(), spec.resources().milli_cpus(),
                                 spec.resources().memory_bytes(), spec.resources().gpus(),
                                 reserve});
  }
  PlacementResult result = Place(cluster, pending);
  for (size_t i = 0; i < pending.size(); ++i) {
    v1::Job& job = jobs_.at(pending[i].id);
    JobDecision& d = result.decisions[i];
    if (d.verdict != Verdict::kPlaced) {
      std::string reason = d.verdict == Verdict::kNeverFits
                               ? absl::StrCat("unschedulable on the current nodes: ", d.reason)
                               : d.reason;
      if (job.reason() != reason) {
        job.set_reason(std::move(reason));
        MarkChanged(job);
      }
      continue;
    }
    job.set_attempt(job.attempt() + 1);
    if (options_.on_attempt_started) options_.on_attempt_started(job.id(), job.attempt());
    job.clear_ranks();
    job.set_master_port(0);
    const int32_t procs = job.spec().procs_per_node();
    const int32_t gpus = job.spec().resources().gpus();
    for (size_t r = 0; r < d.replicas.size(); ++r) {
      const ReplicaPlacement& rp = d.replicas[r];
      for (int32_t l = 0; l < procs; ++l) {
        v1::RankStatus* rank = job.add_ranks();
        rank->set_rank(static_cast<int32_t>(r) * procs + l);
        rank->set_replica(static_cast<int32_t>(r));
        rank->set_local_rank(l);
        rank->set_node(*names[rp.node_index]);
        rank->set_state(v1::RANK_STATE_LAUNCHING);
        for (int32_t g = 0; g < gpus; ++g) rank->add_gpu_indices(rp.gpu_indices[l * gpus + g]);
      }
    }
    Allocate(job, true);
    const std::string& master = job.ranks(0).node();
    job.set_master_addr(nodes_.at(master).node.address());
    if (job.start_time_ms() == 0) job.set_start_time_ms(now);
    job.set_attempt_start_time_ms(now);
    SetState(job, v1::JOB_STATE_SCHEDULED, absl::StrCat("launching attempt ", job.attempt()));
    // Rank 0's node goes first: it reserves MASTER_PORT, and the other nodes
    // launch once it has answered with the port.
    LaunchOn(job, master);
  }
}

void Core::LaunchOn(v1::Job& job, const std::string& node) {
  v1::CoordinatorMessage msg;
  auto* launch = msg.mutable_launch();
  launch->set_job_id(job.id());
  launch->set_attempt(job.attempt());
  launch->set_master_port(job.master_port());
  launch->set_working_dir(job.spec().working_dir());
  launch->set_user(job.spec().user());
  // Only rank 0's node collects a trial's metrics (the objective is rank
  // 0's); the collector went to every node of a multi-node trial.
  if (!job.sweep().empty() && job.ranks_size() > 0 && node == job.ranks(0).node()) {
    if (auto collector = sweeps_.CollectorFor(job.sweep())) *launch->mutable_metrics() = *collector;
  }
  // What the ranks share goes once: repeated per rank, a large argument
  // times procsPerNode passed gRPC's message limit and wedged the node.
  for (std::string& a : common::RankArgv(job.spec())) launch->add_argv(std::move(a));
  auto& env = *launch->mutable_env();
  for (auto& [k, v] : common::GangEnvironment(job, options_.rendezvous_endpoint)) {
    env[k] = std::move(v);
  }
  if (options_.job_token) {
    if (std::string token = options_.job_token(job.id(), job.attempt()); !token.empty()) {
      env["GANGWAY_JOB_TOKEN"] = std::move(token);
    }
  }
  for (const auto& rank : job.ranks()) {
    if (rank.node() != node || rank.state() != v1::RANK_STATE_LAUNCHING) continue;
    v1::RankLaunch* rl = launch->add_ranks();
    rl->set_rank(rank.rank());
    for (auto& [k, v] : common::RankOnlyEnvironment(job, rank)) (*rl->mutable_env())[k] = v;
  }
  if (launch->ranks_size() > 0) Send(node, std::move(msg));
}

// ---------------------------------------------------------------------------
// Stopping and finishing

void Core::BeginStop(v1::Job& job, v1::JobState via, v1::JobState target, std::string reason) {
  SetState(job, via, std::move(reason));
  job.set_stop_target(target);
  std::set<std::string> nodes;
  const std::string master = job.ranks_size() > 0 ? job.ranks(0).node() : "";
  for (auto& rank : *job.mutable_ranks()) {
    if (!IsLive(job, rank)) continue;
    // A rank off rank 0's node is launched only once MASTER_PORT is known;
    // before that, nothing was sent and there is nothing to stop.
    if (rank.state() == v1::RANK_STATE_LAUNCHING && rank.node() != master &&
        job.master_port() == 0) {
      rank.set_state(v1::RANK_STATE_EXITED);
      rank.set_exit_code(-1);
      continue;
    }
    nodes.insert(rank.node());
  }
  for (const std::string& node : nodes)
    Send(node, StopMessage(job.id(), job.attempt(), options_.stop_grace_ms));
  MaybeFinishStop(job);
}

void Core::MaybeFinishStop(v1::Job& job) {
  for (const auto& rank : job.ranks()) {
    if (IsLive(job, rank)) return;
  }
  const v1::JobState via = job.state();
  FinishAttempt(job);
  if (via == v1::JOB_STATE_RESTARTING) {
    const int64_t delay = RestartBackoffMs(job.restarts(), options_.restart_backoff_ms,
                                           options_.restart_backoff_max_ms);
    job.set_relaunch_after_ms(delay > 0 ? clock_->NowMs() + delay : 0);
    if (delay > 0) relaunch_at_[job.id()] = clock_->MonotonicMs() + delay;
    std::string reason = job.reason();
    if (delay > 0) {
      absl::StrAppend(&reason, "; restart ", job.restarts(), " waits ", delay / 1000.0,
                      " s (crash-loop backoff)");
    }
    SetState(job, v1::JOB_STATE_PENDING, std::move(reason));
  } else {
    SetState(job, job.stop_target(), job.reason());
  }
}

void Core::FinishAttempt(v1::Job& job) {
  Allocate(job, false);
  std::set<std::string> nodes;
  for (const auto& rank : job.ranks()) nodes.insert(rank.node());
  for (const std::string& node : nodes) Send(node, ForgetMessage(job.id(), job.attempt()));
  schedule_needed_ = true;
}

void Core::HandleExit(v1::Job& job, v1::RankStatus& rank, int exit_code) {
  if (!IsLive(job, rank)) return;
  rank.set_state(exit_code < 0 ? v1::RANK_STATE_LOST : v1::RANK_STATE_EXITED);
  rank.set_exit_code(exit_code);
  rank.set_end_time_ms(clock_->NowMs());
  MarkChanged(job);
  switch (job.state()) {
    case v1::JOB_STATE_SCHEDULED:
    case v1::JOB_STATE_RUNNING: {
      if (exit_code == 0) {
        for (const auto& r : job.ranks()) {
          if (r.state() != v1::RANK_STATE_EXITED || r.exit_code() != 0) return;
        }
        FinishAttempt(job);
        // Every rank ran, even if the GangStarted that would have made the
        // job Running was lost with a session (the agent then reports the
        // exits when it registers again). Scheduled -> Succeeded is no edge
        // of the diagram: without passing through Running the transition was
        // refused and the job stayed Scheduled with its resources already
        // freed (a later cancel freed them a second time).
        if (job.state() == v1::JOB_STATE_SCHEDULED) {
          SetState(job, v1::JOB_STATE_RUNNING, "every rank started");
        }
        SetState(job, v1::JOB_STATE_SUCCEEDED, "every rank exited 0");
        return;
      }
      FailureDecision d = DecideOnFailure(job.spec(), exit_code, job.restarts());
      std::string reason =
          absl::StrCat("rank ", rank.rank(), " on node ", rank.node(), ": ", d.reason);
      if (d.action == FailureAction::kRestart) {
        job.set_restarts(job.restarts() + 1);
        BeginStop(job, v1::JOB_STATE_RESTARTING, v1::JOB_STATE_PENDING, std::move(reason));
      } else {
        BeginStop(job, v1::JOB_STATE_STOPPING, v1::JOB_STATE_FAILED, std::move(reason));
      }
      return;
    }
    case v1::JOB_STATE_RESTARTING:
    case v1::JOB_STATE_STOPPING:
      MaybeFinishStop(job);
      return;
    case v1::JOB_STATE_UNSPECIFIED:
    case v1::JOB_STATE_PENDING:
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      return;
  }
}

// ---------------------------------------------------------------------------
// Loop

void Core::Tick() {
  const int64_t now = clock_->MonotonicMs();
  if (next_relaunch_ms_ != 0 && now >= next_relaunch_ms_) schedule_needed_ = true;
  // With a lease, a silent node's ranks are given up only once a live
  // agent has stopped them itself (lease + its SIGKILL grace, and a
  // heartbeat's worth for the ack in flight).
  const int64_t fence_ms = options_.lease_ms > 0
                               ? options_.lease_ms - options_.node_timeout_ms +
                                     options_.stop_grace_ms + options_.heartbeat_interval_ms
                               : 0;
  for (auto& [name, node] : nodes_) {
    const int64_t quiet = now - node.heard_mono;
    if (quiet <= options_.node_timeout_ms) continue;
    const std::string why = absl::StrCat("no heartbeat for ", quiet / 1000.0, " s");
    if (node.node.state() == v1::NODE_STATE_READY) NodeSilent(node, why);
    // A NotReady stand-in still holding jobs (after a coordinator restart)
    // times out the same way.
    if (quiet > options_.node_timeout_ms + fence_ms && !node.jobs.empty() && !node.lost) {
      NodeLost(node, why);
    }
  }
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    std::string id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    v1::Job* job = FindJob(id);
    if (!job || IsTerminal(job->state())) continue;
    std::string reason = absl::StrCat("DeadlineExceeded: activeDeadlineSeconds ",
                                      job->spec().active_deadline_seconds(), " passed");
    if (job->state() == v1::JOB_STATE_PENDING) {
      SetState(*job, v1::JOB_STATE_FAILED, std::move(reason));
    } else if (job->state() == v1::JOB_STATE_STOPPING) {
      // Already stopping; it ends as its stop says.
    } else {
      BeginStop(*job, v1::JOB_STATE_STOPPING, v1::JOB_STATE_FAILED, std::move(reason));
    }
  }
  CollectGarbage();
}

bool Core::Flush() {
  WriteBatch batch;
  batch.jobs.reserve(dirty_.size());
  for (const std::string& id : dirty_) {
    if (const v1::Job* job = FindJob(id)) batch.jobs.push_back(job);
  }
  batch.sweeps = sweeps_.Changed();
  batch.metrics = std::move(metric_writes_);
  metric_writes_.clear();
  batch.metric_trims = std::exchange(metric_trims_, {});
  batch.deleted_jobs = std::exchange(deleted_jobs_, {});
  batch.deleted_sweeps = std::exchange(deleted_sweeps_, {});
  if (batch.empty()) return true;
  if (absl::Status s = store_->Save(batch); !s.ok()) {
    GW_LOG_ERROR("store write of {} jobs, {} sweeps, {} points failed, will retry: {}",
                 batch.jobs.size(), batch.sweeps.size(), batch.metrics.size(),
                 std::string(s.message()));
    metric_writes_ = std::move(batch.metrics);
    metric_trims_ = std::move(batch.metric_trims);
    deleted_jobs_ = std::move(batch.deleted_jobs);
    deleted_sweeps_ = std::move(batch.deleted_sweeps);
    return false;
  }
  // What the store now holds as finished is deleted after its TTL.
  for (const v1::Job* job : batch.jobs) ScheduleExpiry(*job);
  for (const v1::Sweep* sweep : batch.sweeps) ScheduleExpiry(*sweep);
  sweeps_.ClearChanged();
  for (const v1::Sweep* sweep : batch.sweeps) {
    auto w = sweep_watchers_.find(sweep->id());
    if (w == sweep_watchers_.end()) continue;
    std::vector<SweepWatcher> fns;
    for (auto& [wid, fn] : w->second) fns.push_back(fn);
    for (auto& fn : fns) fn(*sweep);
  }
  for (const v1::Job* job : batch.jobs) {
    auto w = watchers_.find(job->id());
    if (w == watchers_.end()) continue;
    // Copy: a watcher may unwatch itself.
    std::vector<Watcher> fns;
    for (auto& [wid, fn] : w->second) fns.push_back(fn);
    for (auto& fn : fns) fn(*job);
  }
  dirty_.clear();
  return true;
}

void Core::Settle() {
  const bool stored = Flush();
  if (!after_write_.empty()) {
    auto answers = std::move(after_write_);
    after_write_.clear();
    for (auto& answer : answers) answer(stored);
  }
  // New trials become pending jobs before the scheduler runs.
  sweeps_.Reconcile();
  if (schedule_needed_) {
    schedule_needed_ = false;
    Schedule();
  }
  const bool all_stored = Flush();
  // Messages carry decisions, and an agent must not act on one the store
  // does not hold yet: a ForgetGang for exits that a crash then loses makes
  // the recovered coordinator count finished ranks as lost. After a failed
  // write the messages wait, in order, for the
  // Settle() whose write succeeds.
  if (outbox_.empty() || !all_stored) return;
  auto outbox = std::move(outbox_);
  outbox_.clear();
  for (auto& [node, msg] : outbox) {
    auto it = nodes_.find(node);
    if (it != nodes_.end() && it->second.session != 0) sink_->Send(it->second.session, msg);
  }
}

}  // namespace gangway::coordinator
