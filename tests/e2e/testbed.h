// The multi-host fault test bed: a "switch" namespace with a bridge, the
// coordinator in its own namespace (10.77.0.1), and agents each in theirs
// (10.77.0.11, .12, ...), all real processes started through `nsenter
// --net`. The test's own RPCs and CLI runs reach the coordinator through a
// Proxy listening on this namespace's loopback.
//
//   e2e::Testbed bed(3);            // GTEST_SKIP()s first when it cannot run
//   ASSERT_TRUE(bed.Start());
//   bed.firewall(0).Cut(); ... bed.firewall(0).Heal();
//
// Faults: Kill/Signal on the processes, Firewall per agent host, a delaying
// Proxy in front of an agent (StartAgent with a delay), Tmpfs for a state
// directory. Everything is torn down in the destructor: processes, then the
// namespaces (with whatever still runs in them), then mounts.
//
// Threads: the test's thread only (a Proxy runs threads of its own).
#pragma once

#include <map>
#include <set>

#include "tests/e2e/netns.h"

namespace gangway::e2e {

using itest::Env;
using itest::HoldsFor;
using itest::Process;
using itest::RunResult;
using itest::WaitFor;

inline constexpr int kCoordinatorPort = 7070;
using itest::kRpcTimeout;

// Skips the current test (from a TEST body or SetUp) when the bed cannot
// run here; cleans what a crashed earlier run left otherwise.
#define GANGWAY_E2E_REQUIRE_TESTBED()                                      \
  do {                                                                     \
    const std::string why = ::gangway::e2e::Unavailable();                 \
    if (!why.empty()) GTEST_SKIP() << "e2e test bed unavailable: " << why; \
    ::gangway::e2e::CleanLeftovers();                                      \
  } while (false)

struct TestbedOptions {
  int agents = 3;
  std::string agent_cpus = "2";
  std::string agent_memory = "4Gi";
  std::vector<std::string> agent_flags;
  // Every agent reaches the coordinator through a Proxy in its namespace
  // that holds each chunk for agent_delay +- agent_jitter, each way.
  std::chrono::milliseconds agent_delay{0}, agent_jitter{0};
  // The fault tests' timings: heartbeats every 0.2 s, a node silent for 2 s
  // is NotReady, its lease (default: the node timeout) then expires.
  std::vector<std::string> coordinator_flags = {
      "--node-timeout", "2", "--heartbeat-interval", "0.2",
      "--stop-grace",   "1", "--restart-backoff",    "0.2"};
  // The coordinator's state directory; "" = DIR/coordinator.
  std::string coordinator_state;
};

class Testbed : public itest::ControlClient {
 public:
  explicit Testbed(TestbedOptions options = {}) : options_(std::move(options)) {
    static int counter = 0;
    prefix_ = std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    tag_ = "GANGWAY_IT_TAG=" + dir_.Name();
    ::chmod(markers().c_str(), 0777);
  }

  ~Testbed() {
    for (auto& a : agents_) a.reset();
    stub_.reset();
    coordinator_.reset();
    agent_proxies_.clear();
    client_proxy_.reset();
    for (pid_t pid : itest::FindProcesses({tag_})) ::kill(pid, SIGKILL);
    firewalls_.clear();
    hosts_.clear();  // kills what runs in them, deletes them
    switch_.reset();
  }
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // Builds the network, starts the coordinator and every agent, and waits
  // until all are Ready.
  ::testing::AssertionResult Start() {
    if (auto r = BuildNetwork(); !r) return r;
    if (auto r = StartCoordinator(); !r) return r;
    for (int i = 0; i < options_.agents; ++i) {
      if (auto r = StartAgent(i, options_.agent_delay, options_.agent_jitter); !r) return r;
    }
    if (!WaitFor([&] { return ReadyNodes() == options_.agents; }, itest::kStartTimeout)) {
      return ::testing::AssertionFailure()
             << "only " << ReadyNodes() << " of " << options_.agents << " nodes became Ready";
    }
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult BuildNetwork() {
    switch_ = std::make_unique<Netns>(prefix_ + "-sw");
    if (!switch_->ok() || !Must("ip -n " + switch_->name() + " link add br0 type bridge") ||
        !Must("ip -n " + switch_->name() + " link set br0 up")) {
      return ::testing::AssertionFailure() << "cannot make the switch namespace";
    }
    for (int i = 0; i <= options_.agents; ++i) {
      const std::string host = prefix_ + (i == 0 ? "-c" : "-a" + std::to_string(i - 1));
      hosts_.push_back(std::make_unique<Netns>(host));
      const std::string sw = "ip -n " + switch_->name() + " ";
      const std::string port = "p" + std::to_string(i);
      if (!hosts_.back()->ok() ||
          !Must(sw + "link add " + port + " type veth peer name eth0 netns " + host) ||
          !Must(sw + "link set " + port + " master br0 up") ||
          !Must("ip -n " + host + " addr add " + (i == 0 ? "10.77.0.1" : AgentAddress(i - 1)) +
                "/24 dev eth0") ||
          !Must("ip -n " + host + " link set eth0 up")) {
        return ::testing::AssertionFailure() << "cannot make host " << host;
      }
      firewalls_.push_back(
          std::make_unique<Firewall>(*hosts_.back(), dir_.Sub("nft-" + std::to_string(i))));
    }
    // The test reaches the coordinator through a proxy on its loopback.
    client_proxy_ =
        std::make_unique<Proxy>("", "127.0.0.1", hosts_[0]->name(), "10.77.0.1", kCoordinatorPort);
    address_ = "127.0.0.1:" + std::to_string(client_proxy_->port());
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult StartCoordinator() {
    const int n = coordinator_starts_++;
    const std::string state =
        options_.coordinator_state.empty() ? dir_.Sub("coordinator") : options_.coordinator_state;
    std::vector<std::string> argv = {
        "nsenter", "--net=" + hosts_[0]->path(), "--", itest::CoordinatorBinary(), "--listen",
        "10.77.0.1:" + std::to_string(kCoordinatorPort), "--state", state,
        // Plaintext off loopback: the bed is a closed network.
        "--insecure"};
    argv.insert(argv.end(), options_.coordinator_flags.begin(), options_.coordinator_flags.end());
    argv[0] = NsenterPath();
    const std::string base = dir_.Sub("coordinator-" + std::to_string(n));
    coordinator_ =
        Process::Spawn(argv, base + ".out", base + ".log", {{"GANGWAY_IT_TAG", dir_.Name()}});
    if (!coordinator_) return ::testing::AssertionFailure() << "cannot spawn the coordinator";
    const bool up = WaitFor(
        [&] {
          return coordinator_->Stdout().find("listening ") != std::string::npos ||
                 coordinator_->exited();
        },
        itest::kStartTimeout);
    if (!up || coordinator_->exited()) {
      return ::testing::AssertionFailure() << "coordinator did not start; stderr:\n"
                                           << coordinator_->Stderr();
    }
    // A new channel each start: the old one would wait out gRPC's
    // reconnect backoff after the coordinator it knew went away.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Control::NewStub(channel_);
    return ::testing::AssertionSuccess();
  }

  // Agent `i` in its own namespace; with `delay` > 0 it reaches the
  // coordinator through a Proxy in its namespace that holds every chunk
  // for delay +- jitter each way.
  ::testing::AssertionResult StartAgent(int i, std::chrono::milliseconds delay = 0ms,
                                        std::chrono::milliseconds jitter = 0ms) {
    if (static_cast<int>(agents_.size()) <= i) agents_.resize(i + 1);
    const Netns& host = *hosts_.at(i + 1);
    std::string coordinator = "10.77.0.1:" + std::to_string(kCoordinatorPort);
    if (delay.count() > 0) {
      auto proxy = std::make_unique<Proxy>(host.path(), "127.0.0.1", host.name(), "10.77.0.1",
                                           kCoordinatorPort);
      proxy->SetDelay(delay, jitter);
      coordinator = "127.0.0.1:" + std::to_string(proxy->port());
      agent_proxies_[i] = std::move(proxy);
    }
    const std::string name = NodeName(i);
    std::vector<std::string> argv = {NsenterPath(),
                                     "--net=" + host.path(),
                                     "--",
                                     itest::AgentBinary(),
                                     "--coordinator",
                                     coordinator,
                                     "--name",
                                     name,
                                     "--address",
                                     AgentAddress(i),
                                     "--state",
                                     dir_.Sub(name),
                                     "--cpus",
                                     options_.agent_cpus,
                                     "--memory",
                                     options_.agent_memory,
                                     "--pass-env",
                                     "GANGWAY_IT_TAG"};
    argv.insert(argv.end(), options_.agent_flags.begin(), options_.agent_flags.end());
    const int n = agent_starts_[i]++;
    const std::string base = dir_.Sub(name + "-" + std::to_string(n));
    agents_[i] =
        Process::Spawn(argv, base + ".out", base + ".log", {{"GANGWAY_IT_TAG", dir_.Name()}});
    if (!agents_[i]) return ::testing::AssertionFailure() << "cannot spawn agent " << name;
    return ::testing::AssertionSuccess();
  }

  static std::string NodeName(int i) { return "node-" + std::to_string(i); }
  static std::string AgentAddress(int i) { return "10.77.0." + std::to_string(11 + i); }
  static int NodeIndex(const std::string& node) {
    return std::stoi(node.substr(node.rfind('-') + 1));
  }

  Process& agent(int i) { return *agents_.at(i); }
  std::unique_ptr<Process>& agent_slot(int i) { return agents_.at(i); }
  Process& coordinator() { return *coordinator_; }
  void ForgetCoordinator() { coordinator_.reset(); }
  Firewall& firewall(int agent) { return *firewalls_.at(agent + 1); }
  const Netns& agent_host(int i) const { return *hosts_.at(i + 1); }
  const std::string& address() const { return address_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  const itest::TempDir& dir() const { return dir_; }
  const std::string& tag() const { return tag_; }
  // A world-writable folder where ranks (running as the workload user)
  // leave marker files.
  std::string markers() const {
    std::filesystem::create_directories(dir_.Sub("markers"));
    return dir_.Sub("markers");
  }

  // Live processes of job `id` (attempt 0 = any) on every host.
  std::vector<pid_t> JobProcesses(const std::string& id, int attempt = 0) {
    std::vector<std::string> want = {tag_, "GANGWAY_JOB=" + id};
    if (attempt > 0) want.push_back("GANGWAY_ATTEMPT=" + std::to_string(attempt));
    return itest::FindProcesses(want);
  }

  // `gangway --coordinator ADDR ARGS...` from this namespace.
  RunResult Cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 20s) {
    std::vector<std::string> argv = {itest::CliBinary(), "--coordinator", address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return itest::RunCommand(dir_, argv, timeout);
  }

  std::string WriteSpec(const std::string& name, const std::string& text) {
    const std::string path = dir_.Sub(name);
    itest::WriteFile(path, text);
    return path;
  }

 private:
  static std::string NsenterPath() {
    for (const char* p : {"/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter"}) {
      if (::access(p, X_OK) == 0) return p;
    }
    return "nsenter";
  }

  TestbedOptions options_;
  itest::TempDir dir_;
  std::string prefix_, tag_, address_;
  std::unique_ptr<Netns> switch_;
  std::vector<std::unique_ptr<Netns>> hosts_;  // [0] the coordinator's, [i+1] agent i's
  std::vector<std::unique_ptr<Firewall>> firewalls_;
  std::unique_ptr<Proxy> client_proxy_;
  std::map<int, std::unique_ptr<Proxy>> agent_proxies_;
  std::unique_ptr<Process> coordinator_;
  std::vector<std::unique_ptr<Process>> agents_;
  std::map<int, int> agent_starts_;
  int coordinator_starts_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace gangway::e2e
