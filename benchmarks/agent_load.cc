// Many simulated agents against one real coordinator process: N session
// streams (gRPC callback client, no thread per stream), each registering a
// node and heartbeating every second. Measures the coordinator's CPU (from
// /proc/PID/stat over a window) and its RSS.
//
//   agent_load --coordinator-bin build/coordinator/gangway-coordinator
//              [--agents 1000] [--seconds 20] [--tls | --channel-per-agent]
//              [--jobs 2000 --churn-percent 10 --churn-every 3]
//
// --jobs places one-rank jobs on the simulated nodes first (a simulated
// node keeps its ranks and reports them when it registers again, as an
// agent does). --churn-percent drops that share of the streams every
// --churn-every seconds and reconnects them at once; at the end every job
// must still be Running at its first attempt (exit 1 otherwise).
//
// By default the streams share one connection. --channel-per-agent gives
// each its own connection, as a real fleet has; --tls does that over TLS
// with a node certificate each (made by InitCertificates, as `gangway certs
// init` does), so the two together measure what TLS costs.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/inventory.h"
#include "benchmarks/coordinator_process.h"
#include "common/certs.h"
#include "common/list_jobs.h"
#include "common/tls.h"
#include "gangway/v1/gangway.grpc.pb.h"

using namespace gangway;
using bench::CpuTicks;

namespace {

// What one simulated node holds across its sessions: its instance id and
// the ranks the coordinator launched on it (never really run: they "run"
// until stopped). A reconnecting session registers with all of them, as a
// real agent does.
struct Node {
  std::string name;
  std::string instance;
  std::mutex mu;
  std::vector<v1::RankRecord> ranks;
};

class FakeAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  FakeAgent(v1::AgentSession::Stub* stub, Node* node, std::atomic<int>* registered)
      : node_(node), registered_(registered) {
    v1::AgentMessage reg;
    reg.mutable_register_()->set_node_name(node->name);
    reg.mutable_register_()->set_address("127.0.0.1");
    reg.mutable_register_()->set_instance(node->instance);
    *reg.mutable_register_()->mutable_inventory() =
        agent::SimulatedInventory(8000, int64_t{32} << 30, 8, "sim", int64_t{80} << 30);
    {
      std::lock_guard lock(node->mu);
      for (const auto& r : node->ranks) *reg.mutable_register_()->add_ranks() = r;
    }
    stub->async()->Session(&ctx_, this);
    Send(std::move(reg));
    StartRead(&in_);
    StartCall();
  }

  void Heartbeat() {
    std::lock_guard lock(mu_);
    if (writing_ || done_) return;  // a write in flight; skip a beat
    v1::AgentMessage beat;
    beat.mutable_heartbeat();
    queue_.push_back(std::move(beat));
    WriteNextLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (ok) WriteNextLocked();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (in_.has_register_ack()) ++*registered_;
    if (in_.has_launch()) Launched(in_.launch());
    if (in_.has_stop()) Stopped(in_.stop().job_id(), in_.stop().attempt());
    if (in_.has_forget()) Forget(in_.forget().job_id(), in_.forget().attempt());
    StartRead(&in_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void Cancel() { ctx_.TryCancel(); }
  void WaitDone() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  void Send(v1::AgentMessage msg) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(msg));
    WriteNextLocked();
  }
  void WriteNextLocked() {
    if (writing_ || done_ || queue_.empty()) return;
    out_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&out_);
  }
  void Launched(const v1::LaunchGang& launch) {
    static std::atomic<int64_t> next_pid{1 << 22};
    v1::AgentMessage started;
    auto* g = started.mutable_gang_started();
    g->set_job_id(launch.job_id());
    g->set_attempt(launch.attempt());
    if (launch.master_port() == 0) g->set_master_port(29500);
    {
      std::lock_guard lock(node_->mu);
      for (const auto& r : launch.ranks()) {
        v1::RankRecord rec;
        rec.set_job_id(launch.job_id());
        rec.set_attempt(launch.attempt());
        rec.set_rank(r.rank());
        rec.set_pid(next_pid++);
        node_->ranks.push_back(rec);
        *g->add_ranks() = rec;
      }
    }
    Send(std::move(started));
  }
  void Stopped(const std::string& job, int attempt) {
    std::vector<v1::AgentMessage> exits;
    {
      std::lock_guard lock(node_->mu);
      for (auto& r : node_->ranks) {
        if (r.job_id() != job || r.attempt() != attempt || r.exited()) continue;
        r.set_exited(true);
        r.set_exit_code(143);
        exits.emplace_back();
        *exits.back().mutable_rank_exited()->mutable_rank() = r;
      }
    }
    for (auto& e : exits) Send(std::move(e));
  }
  void Forget(const std::string& job, int attempt) {
    std::lock_guard lock(node_->mu);
    std::erase_if(node_->ranks, [&](const v1::RankRecord& r) {
      return r.job_id() == job && r.attempt() == attempt;
    });
  }

  grpc::ClientContext ctx_;
  Node* node_;
  std::atomic<int>* registered_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::AgentMessage> queue_;
  v1::AgentMessage out_;
  v1::CoordinatorMessage in_;
  bool writing_ = false;
  bool done_ = false;
};

std::string Status(pid_t pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return line;
  }
  return key + " ?";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordinator CPU and RSS under many heartbeating agents"};
  std::string bin;
  int n = 1000;
  double seconds = 20;
  app.add_option("--coordinator-bin", bin)->required();
  app.add_option("--agents", n);
  app.add_option("--seconds", seconds);
  bool tls = false, channel_per_agent = false;
  app.add_flag("--tls", tls, "TLS with a node certificate per agent (implies a channel each)");
  app.add_flag("--channel-per-agent", channel_per_agent, "a connection per agent, plaintext");
  int jobs_n = 0;
  double churn_percent = 0, churn_every = 3;
  app.add_option("--jobs", jobs_n, "one-rank jobs placed on the simulated nodes first");
  app.add_option("--churn-percent", churn_percent,
                 "this share of the agents drops its stream and reconnects ...");
  app.add_option("--churn-every", churn_every, "... every this many seconds");
  CLI11_PARSE(app, argc, argv);
  channel_per_agent |= tls;

  std::string state = "/tmp/gangway-agent-load";
  std::filesystem::remove_all(state);
  std::vector<std::string> args{bin,   "--listen",    "127.0.0.1:0", "--state",
                                state, "--log-level", "warn"};
  const std::string certs = state + "-certs";
  if (tls) {
    std::filesystem::remove_all(certs);
    common::CertsInitOptions co;
    co.dir = certs;
    for (int i = 0; i < n; ++i) co.nodes.push_back(absl::StrCat("sim-", i));
    if (auto made = common::InitCertificates(co); !made.ok()) {
      std::cerr << made.status() << "\n";
      return 1;
    }
    args.insert(args.end(), {"--tls-cert", certs + "/coordinator.crt", "--tls-key",
                             certs + "/coordinator.key", "--tls-ca", certs + "/ca.crt"});
  }
  const std::optional<bench::CoordinatorProcess> coordinator = bench::StartCoordinator(args);
  if (!coordinator) return 1;
  const pid_t pid = coordinator->pid;
  const std::string& address = coordinator->address;

  auto shared =
      v1::AgentSession::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<std::unique_ptr<v1::AgentSession::Stub>> own;
  std::atomic<int> registered{0};
  std::vector<std::unique_ptr<FakeAgent>> agents;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<v1::AgentSession::Stub*> stubs;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const std::string name = absl::StrCat("sim-", i);
    nodes.push_back(std::make_unique<Node>());
    nodes.back()->name = name;
    nodes.back()->instance = absl::StrCat("load-", i);
    v1::AgentSession::Stub* stub = shared.get();
    if (channel_per_agent) {
      common::ClientTls client;
      if (tls) {
        client.ca_file = certs + "/ca.crt";
        client.cert_file = absl::StrCat(certs, "/", name, ".crt");
        client.key_file = absl::StrCat(certs, "/", name, ".key");
      }
      grpc::ChannelArguments channel_args;
      channel_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection each
      own.push_back(v1::AgentSession::NewStub(
          common::MakeChannel(address, client, "", channel_args).value()));
      stub = own.back().get();
    }
    stubs.push_back(stub);
    agents.push_back(std::make_unique<FakeAgent>(stub, nodes.back().get(), &registered));
  }
  while (registered < n && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cout << "registered " << registered << " of " << n << " in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";

  // Heartbeats spread over each second, as a real fleet's would be, from
  // registration to the end: while 2,000 jobs are submitted (minutes on a
  // small machine, each commit synced) the nodes must stay Ready, or they
  // time out and their jobs are lost before the measurement starts.
  std::mutex fleet_mu;  // agents[i] is replaced when it churns
  std::atomic<bool> beating{true};
  std::atomic<int64_t> beats{0};
  std::thread heartbeats([&] {
    auto second = std::chrono::steady_clock::now();
    while (beating) {
      for (int i = 0; i < n && beating; ++i) {
        {
          std::lock_guard lock(fleet_mu);
          agents[i]->Heartbeat();
        }
        ++beats;
        std::this_thread::sleep_until(second + std::chrono::microseconds(1'000'000LL * i / n));
      }
      second += std::chrono::seconds(1);
      std::this_thread::sleep_until(second);
    }
  });
  struct Joined {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~Joined() {
      flag = false;
      thread.join();
    }
  } stop_beating{beating, heartbeats};

  // Jobs placed on the simulated nodes (they "run" until the end).
  auto control =
      v1::Control::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<std::string> job_ids;
  for (int j = 0; j < jobs_n; ++j) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::SubmitJobRequest req;
    req.set_yaml(absl::StrCat("name: load-", j, "\nresources: {cpus: 1}\ncommand: [sleep, inf]\n"));
    v1::Job job;
    if (grpc::Status s = control->SubmitJob(&ctx, req, &job); !s.ok()) {
      std::cerr << "submit " << j << ": " << s.error_message() << "\n";
      return 1;
    }
    job_ids.push_back(job.id());
  }
  // Counts jobs by how they stand: Running at attempt 1 (nothing lost) or
  // anything else.
  auto tally = [&](int* running, int* other) {
    *running = *other = 0;
    v1::ListJobsResponse resp;
    if (grpc::Status s = common::ListAllJobs(*control, true, std::chrono::seconds(30), &resp);
        !s.ok()) {
      std::cerr << "ListJobs: " << s.error_message() << "\n";
      return false;
    }
    for (const auto& j : resp.jobs()) {
      if (j.state() == v1::JOB_STATE_RUNNING && j.attempt() == 1 && j.restarts() == 0) {
        ++*running;
      } else {
        ++*other;
      }
    }
    return true;
  };
  int running = 0, other = 0;
  if (jobs_n > 0) {
    const auto placed0 = std::chrono::steady_clock::now();
    while (tally(&running, &other) && running < jobs_n &&
           std::chrono::steady_clock::now() - placed0 < std::chrono::seconds(120)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::cout << "jobs running " << running << " of " << jobs_n << "\n";
  }

  const int64_t ticks_per_s = sysconf(_SC_CLK_TCK);
  const int64_t cpu0 = CpuTicks(pid);
  const int64_t beats0 = beats;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  int64_t reconnects = 0;
  std::mt19937 rng(20261201);
  auto next_churn = start + std::chrono::duration<double>(churn_every);
  while (std::chrono::steady_clock::now() < end) {
    if (churn_percent > 0 && std::chrono::steady_clock::now() >= next_churn) {
      // A share of the fleet drops its stream and registers again at once.
      next_churn += std::chrono::duration<double>(churn_every);
      const int k = static_cast<int>(n * churn_percent / 100);
      std::lock_guard lock(fleet_mu);
      for (int c = 0; c < k; ++c) {
        const int i = static_cast<int>(rng() % n);
        agents[i]->Cancel();
        agents[i]->WaitDone();
        agents[i] = std::make_unique<FakeAgent>(stubs[i], nodes[i].get(), &registered);
        ++reconnects;
      }
    }
    std::this_thread::sleep_until(churn_percent > 0 ? std::min(next_churn, end) : end);
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                    (end - std::chrono::duration<double>(seconds)))
          .count();
  const double cpu = double(CpuTicks(pid) - cpu0) / ticks_per_s;
  std::cout << (tls ? "tls" : "plaintext")
            << (channel_per_agent ? ", a connection per agent" : ", one connection") << "\n"
            << "heartbeats " << beats - beats0 << " over " << elapsed << " s\n"
            << "coordinator CPU " << 100.0 * cpu / elapsed << "% of one core\n"
            << "coordinator " << Status(pid, "VmRSS") << "\n"
            << "coordinator " << Status(pid, "Threads") << "\n";
  bool lost = false;
  if (churn_percent > 0) std::cout << "reconnects " << reconnects << "\n";
  if (jobs_n > 0) {
    const bool listed = tally(&running, &other);
    lost = !listed || running != jobs_n;
    std::cout << "jobs still running at attempt 1: " << running << " of " << jobs_n
              << (listed ? "" : " (ListJobs failed)") << "; other: " << other << "\n";
  }
  std::lock_guard lock(fleet_mu);
  for (auto& a : agents) a->Cancel();
  for (auto& a : agents) a->WaitDone();
  bench::StopCoordinator(pid);
  return registered >= n && !lost ? 0 : 1;
}
