#include "agent/agent.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/keepers.h"
#include "agent/logs.h"
#include "agent/metrics_batches.h"
#include "agent/metrics_tail.h"
#include "agent/placement.h"
#include "agent/supervisor.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/log.h"
#include "common/rank_env.h"
#include "common/tls.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::agent {
namespace asio = boost::asio;

namespace {
using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;
using RankKey = std::tuple<std::string, int32_t, int32_t>;  // job, attempt, rank

// Best effort, as the supervisor does: the log is where a user looks first
// when a rank never ran.
void AppendToLog(const std::string& path, const std::string& line) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream(path, std::ios::app) << "gangway: " << line << "\n";
}

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

absl::StatusOr<int> ReservePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("reserve port: ", strerror(err)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string Agent::LogPath(const std::string& state_dir, const std::string& job_id, int32_t attempt,
                           int32_t rank) {
  return (std::filesystem::path(state_dir) / "logs" / job_id / absl::StrCat("attempt-", attempt) /
          absl::StrCat("rank-", rank, ".log"))
      .string();
}

struct Agent::Impl {
  struct Record {
    int64_t pid = 0;
    bool exited = false;
    int32_t exit_code = 0;
    std::string keeper_id;  // with rank keepers
  };

  AgentOptions options;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<Supervisor> supervisor;  // loop thread
  // Set with options.keeper_exe: ranks run under keepers (keeper.h) and
  // outlive this process; the supervisor then launches nothing.
  std::unique_ptr<Keepers> keepers;                 // loop thread
  std::map<RankKey, int64_t> saved_metrics_offset;  // loop thread
  std::map<RankKey, Record> records;                // loop thread
  std::unordered_map<pid_t, RankKey> by_pid;
  std::map<RankKey, MetricsTail> tails;  // loop thread: trials' rank 0
  // Metrics sent but not acknowledged yet, sent again on the next session;
  // the exits of their ranks wait for them (loop thread).
  MetricsOutbox outbox;
  std::set<RankKey> withheld;
  asio::steady_timer metrics_timer{io};
  // Fencing (loop thread): the lease the coordinator grants with each
  // RegisterAck and HeartbeatAck. When it runs out the agent stops every
  // rank itself: the coordinator may already be relaunching their gang
  // elsewhere, and two attempts of one gang must never run at once.
  asio::steady_timer lease_timer{io};
  int64_t lease_ms = 0;  // 0: no lease granted
  int64_t lease_grace_ms = 0;
  // Steady-clock ms when the session thread last read an ack: a busy loop
  // (hundreds of launches queued) handles an ack late, and must not take
  // that for silence.
  std::atomic<int64_t> last_ack_ms{0};
  // The lease as granted by the last RegisterAck, for the session thread,
  // which renews the keepers' lease file the moment it reads an ack.
  std::atomic<int64_t> granted_lease_ms{0};
  std::atomic<int64_t> granted_grace_ms{0};
  static int64_t SteadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  bool metrics_polling = false;
  bool draining = false;     // loop thread: Drain() was called
  Stream* stream = nullptr;  // loop thread; the session thread owns it
  // Heartbeats come from their own thread, so a loop busy with a burst of
  // launches still sends them (and so still gets the acks that renew the
  // lease). Every write to the stream holds write_mu: gRPC allows one
  // Write at a time.
  std::mutex write_mu;
  Stream* heartbeat_stream = nullptr;  // guarded by write_mu
  std::atomic<int64_t> heartbeat_ms{1000};
  std::thread heartbeater;
  InboundGate inbound{options.inbound_max_messages, options.inbound_max_bytes};

  std::thread loop;
  std::thread session;
  std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  bool stopping = false;
  bool registered_now = false;  // a RegisterAck set heartbeat_ms
  grpc::ClientContext* ctx = nullptr;

  // Decided once; an error (options not validated first) fails every
  // launch with its message.
  absl::StatusOr<WorkloadUserPolicy> policy;
  std::string ca_pem;  // GANGWAY_TLS_CA for ranks; empty without TLS
  // Random per agent process: the coordinator tells this agent reconnecting
  // from a second agent using the same --name (a cloned machine).
  const std::string instance = absl::StrCat(absl::Hex(std::random_device{}(), absl::kZeroPad8),
                                            absl::Hex(std::random_device{}(), absl::kZeroPad8));

  explicit Impl(AgentOptions o)
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

  // ---- Loop thread ---------------------------------------------------------
  void Write(const v1::AgentMessage& msg) {
    if (!stream) return;
    std::lock_guard lock(write_mu);
    if (!stream->Write(msg)) {
      // The session thread sees the broken stream in Read and reconnects.
      stream = nullptr;
      heartbeat_stream = nullptr;
    }
  }

  v1::Register BuildRegister() {
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
  void AdoptRanks() {
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

  // Where a restarted agent resumes the rank's metrics: past what was sent.
  void SaveMetricsOffset(const RankKey& key, const MetricsTail& tail) {
    if (!keepers) return;
    auto rec = records.find(key);
    if (rec == records.end() || rec->second.keeper_id.empty()) return;
    int64_t& saved = saved_metrics_offset[key];
    // Not past what the coordinator has not acknowledged.
    const int64_t resume =
        std::min(tail.resume_offset(), outbox.OldestOffset(key).value_or(tail.resume_offset()));
    if (saved == resume) return;
    saved = resume;
    keepers->SaveMetricsOffset(rec->second.keeper_id, saved);
  }

  void StopRank(const Record& rec, std::chrono::milliseconds grace) {
    if (keepers) {
      keepers->Stop(rec.keeper_id, grace);
    } else {
      supervisor->Stop(static_cast<pid_t>(rec.pid), grace);
    }
  }

  void OnExit(pid_t pid, const ExitInfo& info) {
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

  static v1::AgentMessage ExitedMessage(const RankKey& key, const Record& rec) {
    v1::AgentMessage msg;
    v1::RankRecord* r = msg.mutable_rank_exited()->mutable_rank();
    r->set_job_id(std::get<0>(key));
    r->set_attempt(std::get<1>(key));
    r->set_rank(std::get<2>(key));
    r->set_pid(rec.pid);
    r->set_exited(true);
    r->set_exit_code(rec.exit_code);
    return msg;
  }

  // Right after a registration that reported them as running: the metrics
  // of ranks that exited while there was no session, then their exits.
  void SendWithheldExits() {
    // First what the last coordinator never acknowledged (it may have died
    // before storing it), in order; it drops what it already has.
    for (const v1::AgentMessage& msg : outbox.Unacked()) Write(msg);
    for (auto it = tails.begin(); it != tails.end();) {
      auto rec = records.find(it->first);
      if (rec == records.end()) {  // forgotten meanwhile
        it = tails.erase(it);
        continue;
      }
      if (!rec->second.exited) {
        ++it;
        continue;
      }
      SendMetrics(it->first, it->second, /*drain=*/true);
      withheld.insert(it->first);
      saved_metrics_offset.erase(it->first);
      it = tails.erase(it);
    }
    for (const RankKey& key : withheld) {
      auto rec = records.find(key);
      if (rec != records.end() && rec->second.exited) Write(ExitedMessage(key, rec->second));
    }
    withheld.clear();
  }

  void Launch(const v1::LaunchGang& launch) {
    int port = launch.master_port();
    if (port == 0) {
      absl::StatusOr<int> reserved = ReservePort();
      if (!reserved.ok()) {
        GW_LOG_ERROR("node={} job={}: {}", options.name, launch.job_id(),
                     std::string(reserved.status().message()));
      }
      port = reserved.ok() ? *reserved : 0;
    }
    v1::AgentMessage started;
    auto* gs = started.mutable_gang_started();
    gs->set_job_id(launch.job_id());
    gs->set_attempt(launch.attempt());
    gs->set_master_port(port);
    std::vector<v1::AgentMessage> failures;
    // The node's policy decides, with its own passwd database.
    const absl::StatusOr<UserIdentity> user =
        policy.ok() ? policy->ForJob(launch.user(), options.name) : policy.status();
    if (!user.ok()) {
      GW_LOG_WARN("node={} job={}: {}", options.name, launch.job_id(),
                  std::string(user.status().message()));
    }
    for (const v1::RankLaunch& rl : launch.ranks()) {
      RankKey key{launch.job_id(), launch.attempt(), rl.rank()};
      if (records.count(key)) continue;  // a repeated launch never makes a second copy
      LaunchRequest req;
      if (user.ok()) req.user = *user;
      if (!ca_pem.empty()) req.env.emplace_back("GANGWAY_TLS_CA", ca_pem);
      req.argv = common::LaunchArgv(launch, rl);
      // The gang's environment, the rank's own on top.
      for (auto& [k, v] : common::LaunchEnvironment(launch, rl)) {
        const bool port_var = k == "MASTER_PORT" || k == "PET_MASTER_PORT";
        if (k == "GANGWAY_RDZV" && v.empty()) {
          // A coordinator listening on every address cannot tell which of
          // them reaches this node; the one this agent reaches it at does.
          req.env.emplace_back(k, options.coordinator);
          continue;
        }
        req.env.emplace_back(k, port_var && launch.master_port() == 0 ? std::to_string(port) : v);
      }
      req.working_dir = launch.working_dir();
      req.log_path =
          Agent::LogPath(options.state_dir, launch.job_id(), launch.attempt(), rl.rank());
      const std::string metrics_file =
          (std::filesystem::path(options.state_dir) / "metrics" / launch.job_id() /
           absl::StrCat("attempt-", launch.attempt()) / absl::StrCat("rank-", rl.rank(), ".jsonl"))
              .string();
      const bool collect = rl.rank() == 0 && !launch.metrics().kind().empty();
      if (collect && launch.metrics().kind() == "file" && user.ok()) {
        const std::filesystem::path dir = std::filesystem::path(metrics_file).parent_path();
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        // The rank creates the file as the workload user; the directories
        // above must let it through (a state dir of 0755 or 0711).
        if (::geteuid() == 0 && user->uid != 0 && ::chown(dir.c_str(), user->uid, user->gid) != 0) {
          GW_LOG_WARN("node={} job={}: chown {}: {}", options.name, launch.job_id(), dir.string(),
                      strerror(errno));
        }
        req.env.emplace_back("GANGWAY_METRICS_FILE", metrics_file);
      }
      // Only a detected inventory describes this machine's cores and NUMA
      // nodes; a simulated or --topology one describes another.
      if (options.inventory.source() == "hwloc") {
        req.cpu_affinity = AffinityFor(options.inventory, rl);
        req.memory_nodes = MemoryNodesFor(options.inventory, rl);
      }
      if (!user.ok()) AppendToLog(req.log_path, std::string(user.status().message()));
      std::string keeper_id;
      absl::StatusOr<pid_t> pid = absl::InternalError("not launched");
      if (!user.ok()) {
        pid = user.status();
      } else if (keepers) {
        v1::KeeperRecord tag;
        tag.set_job_id(launch.job_id());
        tag.set_attempt(launch.attempt());
        tag.set_rank(rl.rank());
        if (collect) {
          *tag.mutable_metrics() = launch.metrics();
          tag.set_metrics_json(launch.metrics().kind() == "file");
          tag.set_metrics_path(tag.metrics_json() ? metrics_file : req.log_path);
        }
        absl::StatusOr<Keepers::Kept> kept = keepers->Launch(req, std::move(tag));
        if (kept.ok()) keeper_id = kept->id;
        pid = kept.ok() ? absl::StatusOr<pid_t>(kept->pid) : kept.status();
      } else {
        // Capped as under a keeper: the supervisor reads the rank's output
        // on this loop and the writer rotates it.
        if (options.log_max_bytes > 0) {
          absl::StatusOr<RankLogWriter> log =
              RankLogWriter::Open(req.log_path, options.log_max_bytes);
          if (log.ok()) {
            auto writer = std::make_shared<RankLogWriter>(*std::move(log));
            req.on_output = [writer](std::string_view data) { writer->Write(data); };
          }
        }
        pid = supervisor->Launch(req);
      }
      Record& rec = records[key];
      rec.keeper_id = keeper_id;
      v1::RankRecord* r = gs->add_ranks();
      r->set_job_id(launch.job_id());
      r->set_attempt(launch.attempt());
      r->set_rank(rl.rank());
      if (options.rank_events) options.rank_events->RankLaunched(launch, rl, pid.ok());
      if (pid.ok()) {
        rec.pid = *pid;
        by_pid[*pid] = key;
        r->set_pid(*pid);
        if (collect && launch.metrics().kind() != "push") {
          const bool json = launch.metrics().kind() == "file";
          absl::StatusOr<MetricsTail> tail =
              MetricsTail::Create(json ? metrics_file : req.log_path, launch.metrics(), json);
          if (tail.ok()) {
            tails.emplace(key, *std::move(tail));
            ScheduleMetricsPoll();
          } else {
            GW_LOG_WARN("node={} job={}: metrics: {}", options.name, launch.job_id(),
                        std::string(tail.status().message()));
          }
        }
        continue;
      }
      GW_LOG_WARN("node={} job={} rank={} launch failed: {}", options.name, launch.job_id(),
                  rl.rank(), std::string(pid.status().message()));
      rec.exited = true;
      rec.exit_code = 127;  // as a shell reports a command it cannot run
      v1::AgentMessage exit;
      *exit.mutable_rank_exited()->mutable_rank() = *r;
      exit.mutable_rank_exited()->mutable_rank()->set_exited(true);
      exit.mutable_rank_exited()->mutable_rank()->set_exit_code(127);
      failures.push_back(std::move(exit));
    }
    Write(started);
    for (const auto& f : failures) Write(f);
  }

  void SendMetrics(const RankKey& key, MetricsTail& tail, bool drain = false) {
    // Without a session the lines stay in the file for later: read now,
    // they would be dropped.
    if (!stream) return;
    const int64_t from = tail.resume_offset();
    std::vector<v1::MetricPoint> points = drain ? tail.Drain(NowMs()) : tail.Poll(NowMs());
    // In messages well under gRPC's limit, in order: one refused message
    // lost a burst's last points, the trial's objective among them.
    for (const v1::AgentMessage& msg :
         MetricsMessages(std::get<0>(key), std::get<1>(key), std::get<2>(key), std::move(points))) {
      Write(msg);
      outbox.Sent(msg, from);
    }
  }

  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // One timer for every followed rank; it stops when none is left. A
  // tail behind its log is read again at once: its log is rotated at a cap,
  // and lines left unread too long are rotated away.
  void ScheduleMetricsPoll(bool soon = false) {
    if (metrics_polling) return;
    metrics_polling = true;
    metrics_timer.expires_after(std::chrono::milliseconds(soon ? 1 : options.metrics_poll_ms));
    metrics_timer.async_wait([this](const boost::system::error_code& ec) {
      metrics_polling = false;
      if (ec) return;
      bool behind = false;
      for (auto& [key, tail] : tails) {
        SendMetrics(key, tail);
        SaveMetricsOffset(key, tail);
        behind = behind || (stream && tail.behind() > 0);
      }
      if (!tails.empty()) ScheduleMetricsPoll(behind);
    });
  }

  void StopGang(const v1::StopGang& stop) {
    for (auto it = records.lower_bound({stop.job_id(), stop.attempt(), INT32_MIN});
         it != records.end() && std::get<0>(it->first) == stop.job_id() &&
         std::get<1>(it->first) == stop.attempt();
         ++it) {
      if (!it->second.exited) StopRank(it->second, std::chrono::milliseconds(stop.grace_ms()));
    }
  }

  void Forget(const v1::ForgetGang& forget) {
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
        options.rank_events->RankForgotten(forget.job_id(), forget.attempt(),
                                           std::get<2>(it->first));
      }
      it = records.erase(it);
    }
  }

  void Handle(const v1::CoordinatorMessage& msg) {
    switch (msg.msg_case()) {
      case v1::CoordinatorMessage::kRegisterAck:
        lease_ms = std::max<int64_t>(0, msg.register_ack().lease_ms());
        lease_grace_ms = std::max<int64_t>(0, msg.register_ack().lease_grace_ms());
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
  void RenewLease(int64_t remaining_ms = -1) {
    if (lease_ms <= 0) {
      lease_timer.cancel();
      return;
    }
    lease_timer.expires_after(
        std::chrono::milliseconds(remaining_ms < 0 ? lease_ms : remaining_ms));
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
  void RunHeartbeats() {
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

  // Runs fn on the loop and waits for it.
  template <typename Fn>
  auto OnLoop(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    asio::post(io, [&task] { task(); });
    return result.get();
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
  std::unique_ptr<v1::AgentSession::Stub> NewStub() const {
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
  bool AdmitRead() {
    while (true) {
      const int64_t lease = granted_lease_ms.load();
      const auto deadline = lease > 0
                                ? std::chrono::steady_clock::time_point(
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

  void RunSession() {
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
};

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
