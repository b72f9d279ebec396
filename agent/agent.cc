#include "agent/agent.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "agent/agent_impl.h"
#include "agent/logs.h"
#include "boost/asio/post.hpp"
#include "common/log.h"
#include "common/tls.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::agent {
namespace asio = boost::asio;

namespace {
grpc::ChannelArguments SessionChannelArgs(const AgentOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options.min_backoff_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options.max_backoff_ms));
  return args;
}

// The CA as PEM text for the ranks; empty without TLS.
absl::StatusOr<std::string> CaPem(const common::ClientTls& tls) {
  if (!tls.ca_pem.empty()) return tls.ca_pem;
  if (tls.ca_file.empty()) return std::string();
  return common::ReadTextFile(tls.ca_file, "--tls-ca");
}
}  // namespace

absl::Status ValidateAgentOptions(const AgentOptions& options) {
  absl::StatusOr<WorkloadUserPolicy> policy =
      WorkloadUserPolicy::Create(options.workload, CurrentUser());
  if (!policy.ok()) return policy.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      common::MakeChannel(options.coordinator, options.tls, "", SessionChannelArgs(options));
  if (!channel.ok()) return channel.status();
  return CaPem(options.tls).status();
}

std::string Agent::LogPath(const std::string& state_dir, const std::string& job_id, int32_t attempt,
                           int32_t rank) {
  return (std::filesystem::path(state_dir) / "logs" / job_id / absl::StrCat("attempt-", attempt) /
          absl::StrCat("rank-", rank, ".log"))
      .string();
}

Agent::Impl::Impl(AgentOptions o)
    : options(std::move(o)), policy(WorkloadUserPolicy::Create(options.workload, CurrentUser())) {
  supervisor = std::make_unique<Supervisor>(
      io, [this](pid_t pid, const ExitInfo& info) { OnExit(pid, info); }, options.environment);
  if (!options.keeper_exe.empty()) {
    keepers = std::make_unique<Keepers>(
        io,
        KeepersOptions{options.keeper_exe,
                       (std::filesystem::path(options.state_dir) / "keepers").string(),
                       options.environment, options.keeper_launcher, options.log_max_bytes},
        [this](const std::string&, pid_t pid, const ExitInfo& info) { OnExit(pid, info); });
    AdoptRanks();
  }
  if (!policy.ok()) {
    GW_LOG_ERROR("node={}: no rank can run: {}", options.name,
                 std::string(policy.status().message()));
  } else {
    GW_LOG_INFO("node={} runs ranks as {} (uid {})", options.name, policy->default_user().name,
                policy->default_user().uid);
  }
  if (absl::StatusOr<std::string> pem = CaPem(options.tls); pem.ok()) {
    ca_pem = *std::move(pem);
  } else {
    GW_LOG_ERROR("node={}: {}", options.name, std::string(pem.status().message()));
  }
}

void Agent::Impl::Write(const v1::AgentMessage& msg) {
  if (!stream) return;
  std::lock_guard lock(write_mu);
  if (!stream->Write(msg)) {
    // The session thread sees the broken stream in Read and reconnects.
    stream = nullptr;
    heartbeat_stream = nullptr;
  }
}

v1::Register Agent::Impl::BuildRegister() {
  v1::Register reg;
  reg.set_node_name(options.name);
  reg.set_instance(instance);
  reg.set_address(options.address);
  reg.set_agent_version(options.version);
  reg.set_draining(draining);
  *reg.mutable_inventory() = options.inventory;
  withheld.clear();
  for (const auto& [key, rec] : records) {
    v1::RankRecord* r = reg.add_ranks();
    r->set_job_id(std::get<0>(key));
    r->set_attempt(std::get<1>(key));
    r->set_rank(std::get<2>(key));
    r->set_pid(rec.pid);
    // An exit whose metrics are still unsent is reported after them
    // (SendWithheldExits), so the trial ends with its objective.
    const bool wait = rec.exited && (tails.count(key) > 0 || outbox.Has(key));
    if (wait) withheld.insert(key);
    r->set_exited(rec.exited && !wait);
    r->set_exit_code(wait ? 0 : rec.exit_code);
  }
  return reg;
}

// Ranks a previous agent process left under their keepers: known again
// before the first registration, which reports them to the coordinator
// as running (or with the exit they had meanwhile).
void Agent::Impl::AdoptRanks() {
  int running = 0, ended = 0;
  for (Keepers::Adopted& a : keepers->Adopt()) {
    const v1::KeeperRecord& r = a.record;
    RankKey key{r.job_id(), r.attempt(), r.rank()};
    Record& rec = records[key];
    rec.pid = r.rank_pid();
    rec.keeper_id = a.id;
    if (a.exit) {
      rec.exited = true;
      rec.exit_code = a.exit->exit_code;
      ++ended;
      GW_LOG_INFO("node={} job={} attempt={} rank={} ended while no agent ran: code={} {}",
                  options.name, r.job_id(), r.attempt(), r.rank(), rec.exit_code, a.note);
    } else {
      by_pid[static_cast<pid_t>(rec.pid)] = key;
      ++running;
    }
    if (options.rank_events) {
      options.rank_events->RankAdopted(r.job_id(), r.attempt(), r.rank(), !a.exit);
    }
    if (!r.metrics().kind().empty() && r.metrics().kind() != "push") {
      absl::StatusOr<MetricsTail> tail =
          MetricsTail::Create(r.metrics_path(), r.metrics(), r.metrics_json());
      if (tail.ok()) {
        tail->Seek(a.metrics_offset);
        saved_metrics_offset[key] = a.metrics_offset;
        tails.emplace(key, *std::move(tail));
      }
    }
  }
  if (running + ended > 0) {
    GW_LOG_INFO("node={} re-adopted {} running ranks ({} more ended meanwhile)", options.name,
                running, ended);
  }
  if (!tails.empty()) ScheduleMetricsPoll();
}

void Agent::Impl::StopRank(const Record& rec, std::chrono::milliseconds grace) {
  if (keepers) {
    keepers->Stop(rec.keeper_id, grace);
  } else {
    supervisor->Stop(static_cast<pid_t>(rec.pid), grace);
  }
}

void Agent::Impl::OnExit(pid_t pid, const ExitInfo& info) {
  auto it = by_pid.find(pid);
  if (it == by_pid.end()) return;
  RankKey key = it->second;
  by_pid.erase(it);
  Record& rec = records[key];
  rec.exited = true;
  rec.exit_code = info.exit_code;
  if (options.rank_events) {
    options.rank_events->RankExited(std::get<0>(key), std::get<1>(key), std::get<2>(key),
                                    info.exit_code);
  }
  GW_LOG_INFO("node={} job={} attempt={} rank={} exited code={}", options.name, std::get<0>(key),
              std::get<1>(key), std::get<2>(key), info.exit_code);
  // Its last lines count: they reach the coordinator before the exit,
  // which ends the trial with whatever value it has by then.
  if (auto tail = tails.find(key); tail != tails.end()) {
    if (!stream) {
      // No session (the coordinator is restarting): sent now, the lines
      // were read and dropped, and the exit, reported at registration,
      // ended the trial without its objective. The file keeps the lines;
      // the exit waits for them (BuildRegister, SendWithheldExits).
      return;
    }
    SendMetrics(key, tail->second, /*drain=*/true);
    tails.erase(tail);
    saved_metrics_offset.erase(key);
  }
  Write(ExitedMessage(key, rec));
}

void Agent::Impl::StopGang(const v1::StopGang& stop) {
  for (auto it = records.lower_bound({stop.job_id(), stop.attempt(), INT32_MIN});
       it != records.end() && std::get<0>(it->first) == stop.job_id() &&
       std::get<1>(it->first) == stop.attempt();
       ++it) {
    if (!it->second.exited) StopRank(it->second, std::chrono::milliseconds(stop.grace_ms()));
  }
}

void Agent::Impl::Forget(const v1::ForgetGang& forget) {
  for (auto it = records.lower_bound({forget.job_id(), forget.attempt(), INT32_MIN});
       it != records.end() && std::get<0>(it->first) == forget.job_id() &&
       std::get<1>(it->first) == forget.attempt();) {
    if (!it->second.exited) {
      ++it;
      continue;
    }
    if (keepers && !it->second.keeper_id.empty()) keepers->Forget(it->second.keeper_id);
    outbox.Forget(it->first);
    if (options.rank_events) {
      options.rank_events->RankForgotten(forget.job_id(), forget.attempt(), std::get<2>(it->first));
    }
    it = records.erase(it);
  }
}

void Agent::Impl::Handle(const v1::CoordinatorMessage& msg) {
  switch (msg.msg_case()) {
    case v1::CoordinatorMessage::kRegisterAck:
      lease_ms = std::max<int64_t>(0, msg.register_ack().lease_ms());
      lease_grace_ms = std::max<int64_t>(0, msg.register_ack().lease_grace_ms());
      // A coordinator that never acknowledges would be sent everything
      // again on each reconnect, and store it twice.
      coordinator_acks_metrics = msg.register_ack().acks_metrics();
      if (!coordinator_acks_metrics) outbox.Clear();
      RenewLease();
      return;
    case v1::CoordinatorMessage::kHeartbeatAck:
      RenewLease();
      return;
    case v1::CoordinatorMessage::kLaunch:
      Launch(msg.launch());
      return;
    case v1::CoordinatorMessage::kStop:
      StopGang(msg.stop());
      return;
    case v1::CoordinatorMessage::kForget:
      Forget(msg.forget());
      return;
    case v1::CoordinatorMessage::kReadLog:
      Write(ReadLogPage(options.state_dir, options.name, msg.read_log()));
      return;
    case v1::CoordinatorMessage::kMetricsAck:
      outbox.Ack(msg.metrics_ack());
      return;
    case v1::CoordinatorMessage::MSG_NOT_SET:
      return;
  }
}

// Steady clock: a wall-clock step must not expire (or extend) a lease.
void Agent::Impl::RenewLease(int64_t remaining_ms) {
  if (lease_ms <= 0) {
    lease_timer.cancel();
    return;
  }
  lease_timer.expires_after(std::chrono::milliseconds(remaining_ms < 0 ? lease_ms : remaining_ms));
  lease_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // renewed (or stopping)
    // An ack read but not yet handled still counts.
    if (const int64_t left = lease_ms - (SteadyMs() - last_ack_ms.load()); left > 0) {
      RenewLease(left);
      return;
    }
    int stopped = 0;
    for (const auto& [key, rec] : records) {
      if (rec.exited) continue;
      StopRank(rec, std::chrono::milliseconds(lease_grace_ms));
      ++stopped;
    }
    if (stopped > 0) {
      GW_LOG_WARN(
          "node={} lease expired: no word from the coordinator for {} s; stopping {} "
          "ranks",
          options.name, lease_ms / 1000.0, stopped);
    }
  });
}

// ---- Heartbeat thread ----------------------------------------------------
void Agent::Impl::RunHeartbeats() {
  while (true) {
    {
      // Not held while writing: a Write blocked on flow control must not
      // keep Stop() from cancelling the call.
      std::unique_lock lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(heartbeat_ms.load()),
                  [this] { return stopping || registered_now; });
      if (stopping) return;
      registered_now = false;
    }
    std::lock_guard write_lock(write_mu);
    if (heartbeat_stream == nullptr) continue;
    v1::AgentMessage msg;
    msg.mutable_heartbeat();
    if (!heartbeat_stream->Write(msg)) heartbeat_stream = nullptr;
  }
}

// ---- Session thread ------------------------------------------------------

// A new channel for every attempt, with its own subchannel. A channel that
// failed to connect stays in TRANSIENT_FAILURE for its own reconnect
// backoff and fails every call at once with the cached error; on a shared
// channel that backoff stacks on the one below, so an agent could find a
// restarted coordinator seconds late (past --node-timeout, which fails its
// jobs). Here each attempt is one real connection attempt, paced by the
// jittered backoff below alone.
// Null when the TLS files cannot be used (ValidateAgentOptions reports
// that at startup; here the session retries with backoff).
std::unique_ptr<v1::AgentSession::Stub> Agent::Impl::NewStub() const {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      common::MakeChannel(options.coordinator, options.tls, "", SessionChannelArgs(options));
  if (!channel.ok()) {
    GW_LOG_ERROR("node={}: {}", options.name, std::string(channel.status().message()));
    return nullptr;
  }
  return v1::AgentSession::NewStub(*channel);
}

// Backpressure: before each Read, waits while the loop holds
// options.inbound_max_* of what was read (inbound_gate.h); false when the
// agent is stopping. Unread messages stay in gRPC's flow-control window
// and, past it, in the coordinator's queue for this session.
//
// Why this cannot deadlock or starve the lease: the wait takes no lock
// that the loop, the heartbeat thread or Stop() need (only the gate's
// own), and the loop never waits for this thread, so it keeps draining
// and heartbeats keep being written (the coordinator reads them apart
// from its writes, so it still hears from this node). What a stopped
// reader does delay is the acks queued behind the launches: they renew
// the keepers' lease only once read, here. So the wait ends, full or
// not, half a lease after the last ack read; the reader then reads past
// the bound until the next ack (and the wait starts afresh from it). A
// loop too slow to catch up thus costs memory as it did without a bound,
// but never the lease; a loop that does not move at all is the systemd
// watchdog's (LoopAnswers). Without a lease the wait has no end but the
// loop's progress or Stop.
bool Agent::Impl::AdmitRead() {
  while (true) {
    const int64_t lease = granted_lease_ms.load();
    const auto deadline = lease > 0 ? std::chrono::steady_clock::time_point(
                                          std::chrono::milliseconds(last_ack_ms.load() + lease / 2))
                                    : std::chrono::steady_clock::now() + std::chrono::hours(1);
    switch (inbound.Admit(deadline)) {
      case InboundGate::Admission::kRoom:
        return true;
      case InboundGate::Admission::kStopped:
        return false;
      case InboundGate::Admission::kDeadline:
        if (lease > 0) return true;
        break;
    }
  }
}

void Agent::Impl::RunSession() {
  std::mt19937_64 rng(std::random_device{}());
  int64_t backoff = options.min_backoff_ms;
  // Waits out the jittered backoff; false when the agent is stopping.
  auto backoff_wait = [&](const std::string& why) {
    std::unique_lock lock(mu);
    ctx = nullptr;
    if (stopping) return false;
    GW_LOG_INFO("node={} session ended ({}); reconnecting in ~{} ms", options.name, why, backoff);
    // Jitter spreads a fleet's reconnects after a coordinator restart.
    std::uniform_int_distribution<int64_t> jitter(backoff / 2, backoff);
    cv.wait_for(lock, std::chrono::milliseconds(jitter(rng)), [this] { return stopping; });
    return !stopping;
  };
  while (true) {
    auto stub = NewStub();
    if (!stub) {
      if (!backoff_wait("no channel")) return;
      backoff = std::min(options.max_backoff_ms, backoff * 2);
      continue;
    }
    grpc::ClientContext context;
    {
      std::lock_guard lock(mu);
      if (stopping) return;
      ctx = &context;
    }
    std::unique_ptr<Stream> s = stub->Session(&context);
    const bool sent = OnLoop([&] {
      v1::AgentMessage msg;
      *msg.mutable_register_() = BuildRegister();
      if (!s->Write(msg)) return false;
      stream = s.get();
      {
        std::lock_guard lock(write_mu);
        heartbeat_stream = nullptr;  // from the RegisterAck on
      }
      SendWithheldExits();
      return true;
    });
    v1::CoordinatorMessage in;
    bool registered = false;
    if (sent) {
      while (AdmitRead() && s->Read(&in)) {
        if (!registered) {
          registered = in.has_register_ack();
          if (registered) {
            GW_LOG_INFO("node={} connected to {}", options.name, options.coordinator);
            backoff = options.min_backoff_ms;
          }
        }
        if (in.has_register_ack()) {
          heartbeat_ms = std::max<int64_t>(50, in.register_ack().heartbeat_interval_ms());
          {
            std::lock_guard lock(write_mu);
            heartbeat_stream = s.get();
          }
          {
            std::lock_guard lock(mu);
            registered_now = true;  // the heartbeat thread takes the new interval now
          }
          cv.notify_all();
          granted_lease_ms = std::max<int64_t>(0, in.register_ack().lease_ms());
          granted_grace_ms = std::max<int64_t>(0, in.register_ack().lease_grace_ms());
        }
        if (in.has_heartbeat_ack() || in.has_register_ack()) {
          last_ack_ms = SteadyMs();
          // Here, not on the loop: a loop busy with a burst of launches
          // must not let the keepers' lease run out.
          if (keepers) {
            absl::Status renewed = keepers->RenewLease(granted_lease_ms, granted_grace_ms);
            if (!renewed.ok()) {
              GW_LOG_WARN("node={} lease file: {}", options.name, std::string(renewed.message()));
            }
          }
        }
        const auto bytes = static_cast<int64_t>(in.ByteSizeLong());
        inbound.Added(bytes);
        asio::post(io, [this, bytes, msg = std::move(in)] {
          Handle(msg);
          inbound.Handled(bytes);
        });
        in = v1::CoordinatorMessage();
      }
    }
    {
      std::lock_guard lock(write_mu);
      heartbeat_stream = nullptr;
    }
    OnLoop([&] {
      stream = nullptr;
      return 0;
    });
    grpc::Status status = s->Finish();
    if (!backoff_wait(status.error_message())) return;
    backoff = std::min(options.max_backoff_ms, backoff * 2);
  }
}

Agent::Agent(AgentOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Agent::~Agent() { Stop(); }

void Agent::Start() {
  Impl* impl = impl_.get();
  impl->loop = std::thread([impl] { impl->io.run(); });
  impl->session = std::thread([impl] { impl->RunSession(); });
  impl->heartbeater = std::thread([impl] { impl->RunHeartbeats(); });
}

void Agent::Drain() {
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    if (impl->draining) return;
    impl->draining = true;
    GW_LOG_INFO("node={} draining: waiting for its ranks to end", impl->options.name);
    // Without a session now, the next Register carries it.
    v1::AgentMessage msg;
    msg.mutable_draining();
    impl->Write(msg);
  });
}

bool Agent::Drained() {
  Impl* impl = impl_.get();
  return impl->OnLoop([impl] {
    if (!impl->draining || impl->stream == nullptr || !impl->tails.empty()) return false;
    for (const auto& [key, rec] : impl->records) {
      if (!rec.exited) return false;
    }
    return true;
  });
}

bool Agent::LoopAnswers(std::chrono::milliseconds timeout) {
  // Shared: a loop that answers late (or never) still holds the promise.
  auto answered = std::make_shared<std::promise<void>>();
  std::future<void> done = answered->get_future();
  asio::post(impl_->io, [answered] { answered->set_value(); });
  return done.wait_for(timeout) == std::future_status::ready;
}

InboundGate::Counts Agent::Inbound() const { return impl_->inbound.counts(); }

void Agent::Stop() {
  Impl* impl = impl_.get();
  {
    std::lock_guard lock(impl->mu);
    if (impl->stopping) return;
    impl->stopping = true;
    if (impl->ctx) impl->ctx->TryCancel();
  }
  impl->inbound.Stop();
  impl->cv.notify_all();
  if (impl->session.joinable()) impl->session.join();
  if (impl->heartbeater.joinable()) impl->heartbeater.join();
  if (impl->loop.joinable()) {
    // Kill every rank on the loop thread that owns the supervisor.
    asio::post(impl->io, [impl] {
      impl->metrics_timer.cancel();
      impl->lease_timer.cancel();
      // With keepers, ranks run on (the next agent adopts them, and the
      // lease still stops them if none comes back in time).
      impl->keepers.reset();
      impl->supervisor.reset();
      impl->work.reset();
    });
    impl->loop.join();
  } else {
    impl->supervisor.reset();
  }
}

}  // namespace gangway::agent
