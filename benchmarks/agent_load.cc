// Many simulated agents against one real coordinator process: N session
// streams (gRPC callback client, no thread per stream), each registering a
// node and heartbeating every second. Measures the coordinator's CPU (from
// /proc/PID/stat over a window) and its RSS.
//
//   agent_load --coordinator-bin build/coordinator/gangway-coordinator
//              [--agents 1000] [--seconds 20] [--tls | --channel-per-agent]
//
// By default the streams share one connection. --channel-per-agent gives
// each its own connection, as a real fleet has; --tls does that over TLS
// with a node certificate each (made by InitCertificates, as `gangway certs
// init` does), so the two together measure what TLS costs.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/inventory.h"
#include "common/certs.h"
#include "common/tls.h"
#include "gangway/v1/gangway.grpc.pb.h"

using namespace gangway;

extern char** environ;

namespace {

class FakeAgent : public grpc::ClientBidiReactor<v1::AgentMessage, v1::CoordinatorMessage> {
 public:
  FakeAgent(v1::AgentSession::Stub* stub, std::string name, std::atomic<int>* registered)
      : registered_(registered) {
    v1::AgentMessage reg;
    reg.mutable_register_()->set_node_name(name);
    reg.mutable_register_()->set_address("127.0.0.1");
    *reg.mutable_register_()->mutable_inventory() =
        agent::SimulatedInventory(8000, int64_t{32} << 30, 8, "sim", int64_t{80} << 30);
    out_ = reg;
    stub->async()->Session(&ctx_, this);
    writing_ = true;
    StartWrite(&out_);
    StartRead(&in_);
    StartCall();
  }

  void Heartbeat() {
    std::lock_guard lock(mu_);
    if (writing_ || done_) return;  // one write in flight; skip a beat
    out_.Clear();
    out_.mutable_heartbeat();
    writing_ = true;
    StartWrite(&out_);
  }

  void OnWriteDone(bool) override {
    std::lock_guard lock(mu_);
    writing_ = false;
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (in_.has_register_ack()) ++*registered_;
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
  grpc::ClientContext ctx_;
  std::atomic<int>* registered_;
  std::mutex mu_;
  std::condition_variable cv_;
  v1::AgentMessage out_;
  v1::CoordinatorMessage in_;
  bool writing_ = false;
  bool done_ = false;
};

// utime + stime of a process, in clock ticks.
int64_t CpuTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string all((std::istreambuf_iterator<char>(in)), {});
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  int64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

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
  CLI11_PARSE(app, argc, argv);
  channel_per_agent |= tls;

  std::string state = "/tmp/gangway-agent-load";
  std::filesystem::remove_all(state);
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
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
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, bin.c_str(), &fa, nullptr, cargs.data(), environ) != 0) {
    std::cerr << "cannot start " << bin << "\n";
    return 1;
  }
  close(pipefd[1]);
  std::string line;
  char c;
  while (read(pipefd[0], &c, 1) == 1 && c != '\n') line += c;
  const std::string address = line.substr(line.find(' ') + 1);
  std::cout << "coordinator pid " << pid << " at " << address << "\n";

  auto shared =
      v1::AgentSession::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<std::unique_ptr<v1::AgentSession::Stub>> own;
  std::atomic<int> registered{0};
  std::vector<std::unique_ptr<FakeAgent>> agents;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const std::string name = absl::StrCat("sim-", i);
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
    agents.push_back(std::make_unique<FakeAgent>(stub, name, &registered));
  }
  while (registered < n && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cout << "registered " << registered << " of " << n << " in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
            << " s\n";

  // Heartbeats spread over each second, as a real fleet's would be.
  const int64_t ticks_per_s = sysconf(_SC_CLK_TCK);
  const int64_t cpu0 = CpuTicks(pid);
  auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  int64_t beats = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < n; ++i) {
      agents[i]->Heartbeat();
      ++beats;
      std::this_thread::sleep_until(start + std::chrono::microseconds(1'000'000LL * i / n));
    }
    start += std::chrono::seconds(1);
    std::this_thread::sleep_until(start);
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                    (end - std::chrono::duration<double>(seconds)))
          .count();
  const double cpu = double(CpuTicks(pid) - cpu0) / ticks_per_s;
  std::cout << (tls ? "tls" : "plaintext")
            << (channel_per_agent ? ", a connection per agent" : ", one connection") << "\n"
            << "heartbeats " << beats << " over " << elapsed << " s\n"
            << "coordinator CPU " << 100.0 * cpu / elapsed << "% of one core\n"
            << "coordinator " << Status(pid, "VmRSS") << "\n"
            << "coordinator " << Status(pid, "Threads") << "\n";
  for (auto& a : agents) a->Cancel();
  for (auto& a : agents) a->WaitDone();
  kill(pid, SIGTERM);
  int status;
  waitpid(pid, &status, 0);
  return registered == n ? 0 : 1;
}
