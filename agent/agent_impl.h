// Agent's private side (agent.h): the state the loop, session and
// heartbeat threads share, and the loop's handlers. Spread over file pairs
// by concern: agent.cc (session, registration, exits, lease), agent_launch.cc
// (starting a gang's ranks), agent_metrics.cc (following ranks' metrics and
// sending them until acknowledged).
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/keepers.h"
#include "agent/metrics_batches.h"
#include "agent/metrics_tail.h"
#include "agent/supervisor.h"
#include "agent/workload_user.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway::agent {

struct Agent::Impl {
  using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::CoordinatorMessage>;
  using RankKey = std::tuple<std::string, int32_t, int32_t>;  // job, attempt, rank

  struct Record {
    int64_t pid = 0;
    bool exited = false;
    int32_t exit_code = 0;
    std::string keeper_id;  // with rank keepers
  };

  AgentOptions options;
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
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
  // The last RegisterAck said so (RegisterAck.acks_metrics); until the
  // first, assumed, so nothing sent before it is lost (loop thread).
  bool coordinator_acks_metrics = true;
  std::set<RankKey> withheld;
  boost::asio::steady_timer metrics_timer{io};
  // Fencing (loop thread): the lease the coordinator grants with each
  // RegisterAck and HeartbeatAck. When it runs out the agent stops every
  // rank itself: the coordinator may already be relaunching their gang
  // elsewhere, and two attempts of one gang must never run at once.
  boost::asio::steady_timer lease_timer{io};
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

  explicit Impl(AgentOptions o);

  // ---- Loop thread (agent.cc unless said) --------------------------------
  void Write(const v1::AgentMessage& msg);
  v1::Register BuildRegister();
  void AdoptRanks();
  void StopRank(const Record& rec, std::chrono::milliseconds grace);
  void OnExit(pid_t pid, const ExitInfo& info);
  void StopGang(const v1::StopGang& stop);
  void Forget(const v1::ForgetGang& forget);
  void Handle(const v1::CoordinatorMessage& msg);
  void RenewLease(int64_t remaining_ms = -1);

  // agent_launch.cc
  void Launch(const v1::LaunchGang& launch);

  // agent_metrics.cc
  void SaveMetricsOffset(const RankKey& key, const MetricsTail& tail);
  static v1::AgentMessage ExitedMessage(const RankKey& key, const Record& rec);
  void SendWithheldExits();
  void SendMetrics(const RankKey& key, MetricsTail& tail, bool drain = false);
  void ScheduleMetricsPoll(bool soon = false);
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // ---- Heartbeat thread ----------------------------------------------------
  void RunHeartbeats();

  // Runs fn on the loop and waits for it.
  template <typename Fn>
  auto OnLoop(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    boost::asio::post(io, [&task] { task(); });
    return result.get();
  }

  // ---- Session thread ------------------------------------------------------
  std::unique_ptr<v1::AgentSession::Stub> NewStub() const;
  bool AdmitRead();
  void RunSession();
};

}  // namespace gangway::agent
