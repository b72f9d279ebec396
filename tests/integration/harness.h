// A small harness for integration tests that start the real binaries
// (gangway-coordinator, gangway-agent, gangway) on loopback.
//
// - Every daemon is spawned into its own process group with stdout and
//   stderr going to a file under the test's temporary directory; destructors
//   stop it (SIGTERM, then SIGKILL after a bound) and reap it.
// - Ports are always 0 (or, to restart a coordinator on the same address, a
//   port found by binding 0 and releasing it); the coordinator's port is read
//   from its "listening HOST:PORT" line.
// - Waits poll a condition, usually an RPC, every 10 ms until a deadline; no
//   test synchronises with a fixed sleep.
// - Every agent gets GANGWAY_IT_TAG=<unique> and passes it to its ranks
//   (--pass-env: ranks get a clean environment), and their children inherit
//   it, so a test finds its own rank processes in /proc even when several
//   tests run at once, and kills whatever is left at the end.
// - Ranks run as the agents' workload user (nobody when the tests run as
//   root): a test directory is world-readable, and a program a rank runs
//   from the build or source tree goes through WorkloadPath.
//
// Threads: everything here is used from the test's thread only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "common/list_jobs.h"
#include "common/tls.h"
#include "gangway/v1/gangway.grpc.pb.h"

extern char** environ;

namespace gangway::itest {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using Env = std::vector<std::pair<std::string, std::string>>;

inline constexpr auto kPollInterval = 10ms;
inline constexpr auto kRpcTimeout = 5s;
// How long a coordinator may take to print its address, and its agents to
// be Ready. It takes ~0.1 s, but it fsyncs its first files (job token key,
// SQLite schema): on a shared 2-core box under `ctest -j2` one start sat 7 s
// between creating its state dir and its key file, then ~1 s per fsync, and
// missed a 10 s bound. A wait on a condition, so the bound costs nothing.
inline constexpr auto kStartTimeout = 30s;

inline std::string BinaryPath(const std::string& relative) {
  return std::string(GANGWAY_BINARY_DIR) + "/" + relative;
}
inline std::string SourcePath(const std::string& relative) {
  return std::string(GANGWAY_SOURCE_DIR) + "/" + relative;
}
inline std::string CoordinatorBinary() { return BinaryPath("coordinator/gangway-coordinator"); }
inline std::string AgentBinary() { return BinaryPath("agent/gangway-agent"); }
inline std::string CliBinary() { return BinaryPath("cli/gangway"); }

// Polls `cond` every 10 ms until it returns true (true) or `timeout` passes
// (false; `cond` is tried once more at the deadline).
template <typename Fn>
bool WaitFor(Fn&& cond, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (SteadyClock::now() >= deadline) return cond();
    std::this_thread::sleep_for(kPollInterval);
  }
}

// Checks that `cond` holds at every poll during `window`: for asserting that
// something does *not* happen (a job stays Pending, nothing is relaunched).
template <typename Fn>
bool HoldsFor(Fn&& cond, std::chrono::milliseconds window) {
  const auto end = SteadyClock::now() + window;
  while (SteadyClock::now() < end) {
    if (!cond()) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return cond();
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Lines of `text`, without their newlines.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A fresh directory under $TMPDIR, removed when the test passed and kept
// (its path printed) when it failed, so daemon logs can be read.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gangway-it-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    }
    path_ = tmpl;
    // mkdtemp makes it 0700; ranks running as the workload user read
    // files here (specs' inputs, go-files).
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    if (::testing::Test::HasFailure() || std::getenv("GANGWAY_IT_KEEP") != nullptr) {
      std::cerr << "[ harness  ] kept " << path_ << "\n";
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }
  // The directory name: unique among concurrently running tests.
  std::string Name() const { return std::filesystem::path(path_).filename().string(); }

 private:
  std::string path_;
};

// A child process in its own process group, stdout and stderr to files.
class Process {
 public:
  // Returns nullptr (and records a test failure) when it cannot spawn.
  static std::unique_ptr<Process> Spawn(const std::vector<std::string>& argv,
                                        const std::string& stdout_path,
                                        const std::string& stderr_path, const Env& env = {}) {
    std::vector<std::string> env_strings;
    for (char** e = environ; e && *e; ++e) {
      std::string kv(*e);
      bool overridden = false;
      for (const auto& [k, v] : env) overridden |= kv.compare(0, k.size() + 1, k + "=") == 0;
      if (!overridden) env_strings.push_back(std::move(kv));
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& s : argv_copy) args.push_back(s.data());
    args.push_back(nullptr);

    int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || err < 0) {
      ADD_FAILURE() << "cannot open " << stdout_path << " or " << stderr_path;
      if (out >= 0) ::close(out);
      if (err >= 0) ::close(err);
      return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err, STDERR_FILENO);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out);
    ::close(err);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
      return nullptr;
    }
    return std::unique_ptr<Process>(new Process(pid, stdout_path, stderr_path));
  }

  ~Process() { Stop(3s); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool exited() { return Poll().has_value(); }
  std::string Stdout() const { return ReadFile(stdout_path_); }
  std::string Stderr() const { return ReadFile(stderr_path_); }

  // Signals the process alone (not its group).
  void Signal(int sig) {
    if (!status_) ::kill(pid_, sig);
  }

  // The exit code (128+N for signal N) once it has exited, else nullopt.
  // Reaps it.
  std::optional<int> Poll() {
    if (status_) return status_;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (r < 0 && errno == ECHILD) {
      status_ = -1;
    }
    return status_;
  }

  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    WaitFor([this] { return Poll().has_value(); }, timeout);
    return Poll();
  }

  // SIGTERM, then SIGKILL to the whole group after `grace`; reaps.
  std::optional<int> Stop(std::chrono::milliseconds grace) {
    if (Poll()) return status_;
    ::kill(pid_, SIGCONT);  // a stopped process cannot act on SIGTERM
    ::kill(pid_, SIGTERM);
    if (Wait(grace)) return status_;
    return Kill();
  }

  // SIGKILL to the whole group; reaps.
  std::optional<int> Kill() {
    if (Poll()) return status_;
    ::kill(-pid_, SIGKILL);
    return Wait(10s);
  }

 private:
  Process(pid_t pid, std::string out, std::string err)
      : pid_(pid), stdout_path_(std::move(out)), stderr_path_(std::move(err)) {}

  pid_t pid_;
  std::string stdout_path_, stderr_path_;
  std::optional<int> status_;
};

// Runs a command to completion (bounded by `timeout`, then killed).
struct RunResult {
  int code = -1;  // exit code; 128+N for signal N
  std::string out;
  std::string err;
};

inline RunResult RunCommand(const TempDir& dir, const std::vector<std::string>& argv,
                            std::chrono::milliseconds timeout = 20s, const Env& env = {}) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  const std::string out = dir.Sub("run-" + std::to_string(n) + ".out");
  const std::string err = dir.Sub("run-" + std::to_string(n) + ".err");
  RunResult result;
  std::unique_ptr<Process> p = Process::Spawn(argv, out, err, env);
  if (!p) return result;
  std::optional<int> code = p->Wait(timeout);
  if (!code) {
    ADD_FAILURE() << argv[0] << " ran longer than " << timeout.count() << " ms";
    code = p->Kill();
  }
  result.code = code.value_or(-1);
  result.out = p->Stdout();
  result.err = p->Stderr();
  return result;
}

// Whether a user with no relation to the file's owner can reach `path`:
// every directory above it searchable by others, the file readable and
// executable by them.
inline bool ReachableByOthers(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH)) {
    return false;
  }
  for (std::filesystem::path dir = std::filesystem::absolute(path).parent_path();;
       dir = dir.parent_path()) {
    if (::stat(dir.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (dir == dir.root_path()) return true;
  }
}

// `program` where a rank running as the workload user can execute it: the
// path itself when others can reach it, else a copy in `dir`. CI clones
// the repository into a folder that may sit under a private (0700) home.
inline std::string WorkloadPath(const TempDir& dir, const std::string& program) {
  if (ReachableByOthers(program)) return program;
  const std::string copy = dir.Sub(std::filesystem::path(program).filename().string());
  std::error_code ec;
  std::filesystem::copy_file(program, copy, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) ADD_FAILURE() << "copy " << program << " to " << copy << ": " << ec.message();
  ::chmod(copy.c_str(), 0755);
  return copy;
}

// A TCP port that was free a moment ago on 127.0.0.1 (bind 0, release).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

// Pids of processes whose environment holds every one of `entries`
// ("NAME=value", matched exactly). Zombies (no environment left) are not
// counted: they are dead.
// The session id of `pid` from /proc/PID/stat, or -1.
inline pid_t SessionOf(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream in(stat.substr(paren + 1));
  std::string state;
  long ppid = 0, pgrp = 0, session = -1;
  in >> state >> ppid >> pgrp >> session;
  return in ? static_cast<pid_t>(session) : -1;
}

inline std::vector<pid_t> FindProcesses(const std::vector<std::string>& entries) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::atoi(name.c_str());
    if (pid == ::getpid()) continue;
    const std::string environ_text = ReadFile(e.path().string() + "/environ");
    if (environ_text.empty()) continue;
    size_t found = 0;
    size_t pos = 0;
    while (pos < environ_text.size()) {
      size_t end = environ_text.find('\0', pos);
      if (end == std::string::npos) end = environ_text.size();
      const std::string_view kv(environ_text.data() + pos, end - pos);
      for (const std::string& want : entries) found += kv == want;
      pos = end + 1;
    }
    if (found == entries.size()) out.push_back(pid);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct ClusterOptions {
  int agents = 2;
  std::string agent_cpus = "2";
  std::string agent_memory = "4Gi";
  int agent_gpus = 0;
  std::vector<std::string> agent_flags;  // appended to every agent's command line
  // Where agents reach the coordinator: "" is the address it printed; a
  // host alone keeps its port (127.0.0.2: another loopback address).
  std::string agent_coordinator_host;
  // A 2 s node timeout: short enough for the fault tests, long enough that
  // a busy 2-core machine running `ctest -j2` does not miss ten heartbeats
  // in a row.
  std::vector<std::string> coordinator_flags = {
      "--node-timeout", "2", "--heartbeat-interval", "0.2",
      "--stop-grace",   "1", "--restart-backoff",    "0.2"};
  // TLS and tokens everywhere: `gangway certs init` makes the CA, the
  // coordinator's and every node's certificate; `gangway token create`
  // makes an admin, a submitter and a viewer token. The harness's own
  // calls and Cli() use the admin token.
  bool secure = false;
};

// The Control RPCs the tests make, each bounded by kRpcTimeout, over the
// stub that a cluster (or the e2e test bed) sets up once it is serving.
class ControlClient {
 public:
  v1::Control::Stub& stub() { return *stub_; }

  grpc::Status SubmitYaml(const std::string& yaml, v1::Job* job) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::SubmitJobRequest req;
    req.set_yaml(yaml);
    return stub_->SubmitJob(&ctx, req, job);
  }

  // The job's id, or "" (with a test failure) when the submit failed.
  std::string Submit(const std::string& yaml) {
    v1::Job job;
    grpc::Status s = SubmitYaml(yaml, &job);
    if (!s.ok()) ADD_FAILURE() << "submit: " << s.error_message() << "\n" << yaml;
    return job.id();
  }

  std::optional<v1::Job> GetJob(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::GetJobRequest req;
    req.set_id(id);
    v1::Job job;
    if (!stub_->GetJob(&ctx, req, &job).ok()) return std::nullopt;
    return job;
  }

  // Every page.
  std::optional<v1::ListJobsResponse> ListJobs(bool all) {
    v1::ListJobsResponse resp;
    if (!common::ListAllJobs(*stub_, all, kRpcTimeout, &resp).ok()) return std::nullopt;
    return resp;
  }

  std::optional<v1::ListNodesResponse> ListNodes() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::ListNodesResponse resp;
    if (!stub_->ListNodes(&ctx, v1::ListNodesRequest(), &resp).ok()) return std::nullopt;
    return resp;
  }

  std::optional<v1::Node> GetNode(const std::string& name) {
    if (auto nodes = ListNodes()) {
      for (const auto& n : nodes->nodes()) {
        if (n.name() == name) return n;
      }
    }
    return std::nullopt;
  }

  int ReadyNodes() {
    int ready = 0;
    if (auto nodes = ListNodes()) {
      for (const auto& n : nodes->nodes()) ready += n.state() == v1::NODE_STATE_READY;
    }
    return ready;
  }

  // Polls the job until `pred` holds; the last job seen goes to `last`.
  template <typename Pred>
  ::testing::AssertionResult WaitForJob(const std::string& id, Pred pred,
                                        std::chrono::milliseconds timeout, v1::Job* last = nullptr,
                                        const std::string& what = "the condition") {
    v1::Job seen;
    const bool ok = WaitFor(
        [&] {
          std::optional<v1::Job> job = GetJob(id);
          if (!job) return false;
          seen = std::move(*job);
          return pred(seen);
        },
        timeout);
    if (last) *last = seen;
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "job " << id << " did not reach " << what << " within " << timeout.count()
           << " ms; last seen " << v1::JobState_Name(seen.state()) << " attempt " << seen.attempt()
           << " reason '" << seen.reason() << "'";
  }

  ::testing::AssertionResult WaitForState(const std::string& id, v1::JobState state,
                                          std::chrono::milliseconds timeout,
                                          v1::Job* last = nullptr) {
    return WaitForJob(
        id, [state](const v1::Job& j) { return j.state() == state; }, timeout, last,
        v1::JobState_Name(state));
  }

 protected:
  std::unique_ptr<v1::Control::Stub> stub_;
};

// A coordinator and its agents as real processes, plus RPC helpers.
class Cluster : public ControlClient {
 public:
  explicit Cluster(ClusterOptions options = {}) : options_(std::move(options)) {
    tag_ = "GANGWAY_IT_TAG=" + dir_.Name();
  }

  ~Cluster() {
    // Agents first: on SIGTERM they stop their ranks.
    for (auto& a : agents_) a.reset();
    // An idle client connection holds the coordinator's shutdown to its 2 s
    // deadline: close ours first.
    stub_.reset();
    coordinator_.reset();
    // Whatever survived (ranks of a killed agent): by tag.
    for (pid_t pid : FindProcesses({tag_})) ::kill(pid, SIGKILL);
  }

  // Starts the coordinator and every agent and waits until all are Ready.
  ::testing::AssertionResult Start() {
    if (auto r = StartCoordinator(); !r) return r;
    for (int i = 0; i < options_.agents; ++i) {
      if (auto r = StartAgent(i); !r) return r;
    }
    if (!WaitFor([&] { return ReadyNodes() == options_.agents; }, kStartTimeout)) {
      return ::testing::AssertionFailure()
             << "only " << ReadyNodes() << " of " << options_.agents << " nodes became Ready";
    }
    return ::testing::AssertionSuccess();
  }

  // `listen` defaults to port 0; the real address is read from stdout.
  ::testing::AssertionResult StartCoordinator(const std::string& listen = "127.0.0.1:0") {
    const int n = coordinator_starts_++;
    std::vector<std::string> argv = {CoordinatorBinary(), "--listen", listen, "--state",
                                     dir_.Sub("coordinator")};
    argv.insert(argv.end(), options_.coordinator_flags.begin(), options_.coordinator_flags.end());
    if (options_.secure) {
      if (auto r = MakeCredentials(); !r) return r;
      argv.insert(argv.end(), {"--tls-cert", CertPath("coordinator.crt"), "--tls-key",
                               CertPath("coordinator.key"), "--tls-ca", CertPath("ca.crt"),
                               "--token-file", dir_.Sub("tokens")});
    }
    const std::string out = dir_.Sub("coordinator-" + std::to_string(n) + ".out");
    coordinator_ = Process::Spawn(argv, out, dir_.Sub("coordinator-" + std::to_string(n) + ".log"),
                                  {{"GANGWAY_IT_TAG", dir_.Name()}});
    if (!coordinator_) return ::testing::AssertionFailure() << "cannot spawn the coordinator";
    std::string address;
    const bool up = WaitFor(
        [&] {
          for (const std::string& line : Lines(coordinator_->Stdout())) {
            if (line.rfind("listening ", 0) == 0) address = line.substr(10);
          }
          return !address.empty() || coordinator_->exited();
        },
        kStartTimeout);
    if (!up || address.empty()) {
      return ::testing::AssertionFailure() << "coordinator did not print its address; stderr:\n"
                                           << coordinator_->Stderr();
    }
    address_ = address;
    stub_ = v1::Control::NewStub(Channel(admin_token_));
    return ::testing::AssertionSuccess();
  }

  // ---- Credentials (secure clusters) ---------------------------------------
  std::string CertPath(const std::string& file) const { return dir_.Sub("certs/" + file); }
  common::ClientTls Tls() const {
    common::ClientTls tls;
    if (options_.secure) tls.ca_file = CertPath("ca.crt");
    return tls;
  }
  // A channel to the coordinator as a CLI would open it, with `token`.
  std::shared_ptr<grpc::Channel> Channel(const std::string& token) const {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = common::MakeChannel(address_, Tls(), token);
    if (!ch.ok()) ADD_FAILURE() << ch.status();
    return ch.ok() ? *ch : nullptr;
  }
  const std::string& admin_token() const { return admin_token_; }
  const std::string& submitter_token() const { return submitter_token_; }
  const std::string& viewer_token() const { return viewer_token_; }

  // Certificates for the coordinator and nodes node-0 .. node-(agents+1),
  // and the three tokens; once per cluster.
  ::testing::AssertionResult MakeCredentials() {
    if (!admin_token_.empty()) return ::testing::AssertionSuccess();
    std::vector<std::string> argv = {CliBinary(), "certs", "init", dir_.Sub("certs")};
    for (int i = 0; i < options_.agents + 2; ++i) argv.insert(argv.end(), {"--node", NodeName(i)});
    RunResult certs = RunCommand(dir_, argv);
    if (certs.code != 0) {
      return ::testing::AssertionFailure() << "certs init: " << certs.err << certs.out;
    }
    for (auto [name, role, token] : {std::tuple{"admin", "admin", &admin_token_},
                                     std::tuple{"sam", "submitter", &submitter_token_},
                                     std::tuple{"vera", "viewer", &viewer_token_}}) {
      RunResult r = RunCommand(dir_, {CliBinary(), "token", "create", name, "--role", role,
                                      "--file", dir_.Sub("tokens")});
      std::vector<std::string> lines = Lines(r.out);
      if (r.code != 0 || lines.empty()) {
        return ::testing::AssertionFailure() << "token create " << name << ": " << r.err;
      }
      *token = lines.back();
    }
    return ::testing::AssertionSuccess();
  }

  // SIGTERM and wait: the state stays in the state directory.
  ::testing::AssertionResult StopCoordinator() {
    stub_.reset();  // see ~Cluster
    std::optional<int> code = coordinator_->Stop(10s);
    coordinator_.reset();
    if (code != 0) {
      return ::testing::AssertionFailure()
             << "coordinator exited with " << code.value_or(-1) << " on SIGTERM";
    }
    return ::testing::AssertionSuccess();
  }

  // `env` is added to the agent's environment (not to its ranks').
  ::testing::AssertionResult StartAgent(int i, const Env& env = {}) {
    if (static_cast<int>(agents_.size()) <= i) agents_.resize(i + 1);
    const std::string name = NodeName(i);
    std::string coordinator = address_;
    if (!options_.agent_coordinator_host.empty()) {
      coordinator = options_.agent_coordinator_host + address_.substr(address_.rfind(':'));
    }
    std::vector<std::string> argv = {AgentBinary(),
                                     "--coordinator",
                                     coordinator,
                                     "--name",
                                     name,
                                     "--address",
                                     "127.0.0.1",
                                     "--state",
                                     dir_.Sub(name),
                                     "--cpus",
                                     options_.agent_cpus,
                                     "--memory",
                                     options_.agent_memory,
                                     "--pass-env",
                                     "GANGWAY_IT_TAG"};
    if (options_.agent_gpus > 0) {
      argv.insert(argv.end(),
                  {"--gpus", std::to_string(options_.agent_gpus), "--gpu-model", "H100"});
    }
    argv.insert(argv.end(), options_.agent_flags.begin(), options_.agent_flags.end());
    if (options_.secure) {
      argv.insert(argv.end(), {"--tls-ca", CertPath("ca.crt"), "--tls-cert",
                               CertPath(name + ".crt"), "--tls-key", CertPath(name + ".key")});
    }
    Env agent_env = {{"GANGWAY_IT_TAG", dir_.Name()}};
    agent_env.insert(agent_env.end(), env.begin(), env.end());
    agents_[i] = Process::Spawn(argv, dir_.Sub(name + ".out"), dir_.Sub(name + ".log"), agent_env);
    if (!agents_[i]) return ::testing::AssertionFailure() << "cannot spawn agent " << name;
    return ::testing::AssertionSuccess();
  }

  static std::string NodeName(int i) { return "node-" + std::to_string(i); }
  Process& agent(int i) { return *agents_.at(i); }
  Process& coordinator() { return *coordinator_; }
  const std::string& address() const { return address_; }
  const TempDir& dir() const { return dir_; }

  // ---- RPC helpers beyond ControlClient's ---------------------------------
  // A rank's whole log for the current attempt (attempt 0) or a given one.
  std::optional<std::string> Logs(const std::string& id, int rank, int attempt = 0) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    v1::GetLogsRequest req;
    req.set_id(id);
    req.set_rank(rank);
    req.set_attempt(attempt);
    auto reader = stub_->GetLogs(&ctx, req);
    std::string text;
    v1::LogChunk chunk;
    while (reader->Read(&chunk)) text += chunk.data();
    if (!reader->Finish().ok()) return std::nullopt;
    return text;
  }

  // Live processes of this cluster's job `id` (ranks and their children).
  std::vector<pid_t> JobProcesses(const std::string& id, int attempt = 0) {
    std::vector<std::string> want = {tag_, "GANGWAY_JOB=" + id};
    if (attempt > 0) want.push_back("GANGWAY_ATTEMPT=" + std::to_string(attempt));
    return FindProcesses(want);
  }

  // The rank processes themselves of job `id` (each runs in its own session,
  // so a rank is a process that leads its session), not their children.
  std::vector<pid_t> JobRanks(const std::string& id, int attempt = 0) {
    std::vector<pid_t> out;
    for (pid_t pid : JobProcesses(id, attempt)) {
      if (SessionOf(pid) == pid) out.push_back(pid);
    }
    return out;
  }

  // Runs `gangway --coordinator ADDR ARGS...`.
  RunResult Cli(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 20s) {
    std::vector<std::string> argv = {CliBinary(), "--coordinator", address_};
    if (options_.secure) {
      argv.insert(argv.end(), {"--tls-ca", CertPath("ca.crt"), "--token", admin_token_});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(dir_, argv, timeout);
  }

  // Writes `text` to a file in the test directory; returns its path.
  std::string WriteSpec(const std::string& name, const std::string& text) {
    const std::string path = dir_.Sub(name);
    WriteFile(path, text);
    return path;
  }

 private:
  ClusterOptions options_;
  TempDir dir_;
  std::string tag_;
  std::unique_ptr<Process> coordinator_;
  std::vector<std::unique_ptr<Process>> agents_;
  std::string address_;
  int coordinator_starts_ = 0;
  std::string admin_token_, submitter_token_, viewer_token_;
};

}  // namespace gangway::itest
