// gangway-agent: one per node.
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string_view>

#include "CLI/CLI.hpp"
#include "agent/agent.h"
#include "agent/inventory.h"
#include "agent/keeper.h"
#ifndef GANGWAY_STATIC_AGENT  // no static prometheus-cpp (cmake/GangwayStaticAgent.cmake)
#include "agent/telemetry.h"
#endif
#include "common/log.h"
#include "common/spec.h"
#include "common/version.h"
#include "daemon/systemd_notify.h"
#include "google/protobuf/util/json_util.h"
#include "gpu/inventory.h"

namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::move(fallback);
}

// --on-stop=drain: true once every rank has ended and been reported; false
// on a second SIGTERM or SIGINT, which stops the wait.
bool DrainUntilDone(gangway::agent::Agent& a, const sigset_t& signals) {
  a.Drain();
  const timespec poll{0, 200'000'000};
  while (!a.Drained()) {
    if (sigtimedwait(&signals, nullptr, &poll) > 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gangway;
  // The same binary is each rank's keeper (agent/keeper.h), so a node needs
  // one file.
  if (argc >= 2 && std::string_view(argv[1]) == "keeper") return agent::KeeperMain(argc, argv);
  CLI::App app{"gangway-agent: runs the ranks gangway places on this node"};
  agent::AgentOptions options;
  options.coordinator = EnvOr("GANGWAY_COORDINATOR", "127.0.0.1:7070");
  std::string topology, links;
  char hostname[256] = {};
  gethostname(hostname, sizeof(hostname) - 1);
  options.name = hostname;
  std::string cpus, memory, gpu_memory = "80Gi", gpu_model = "NVIDIA H100 80GB HBM3";
  int gpus = -1;
  std::string log_level = "info";
  bool print_inventory = false;
  app.add_option("--coordinator", options.coordinator,
                 "coordinator address host:port (env GANGWAY_COORDINATOR)");
  app.add_option("--name", options.name, "node name (default: hostname)");
  app.add_option("--address", options.address,
                 "address ranks use to reach this node (MASTER_ADDR); default: the node name");
  app.add_option("--state", options.state_dir, "directory for rank logs");
  app.add_option("--cpus", cpus,
                 "offer this many cores instead of those detected (e.g. 8 or 500m)");
  app.add_option("--memory", memory, "offer this much memory instead of that detected (e.g. 64Gi)");
  app.add_option("--gpus", gpus, "simulate this many GPUs instead of those detected");
  app.add_option("--gpu-model", gpu_model, "model name of simulated GPUs");
  app.add_option("--gpu-memory", gpu_memory, "memory of each simulated GPU");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  app.add_option("--topology", topology,
                 "describe this hwloc XML topology instead of this machine (tests, laptops)");
  app.add_option("--links", links, "NVLink file for --topology (default: FILE.links beside it)");
  app.add_flag("--print-inventory", print_inventory, "print what this node offers and exit");
  app.add_option("--run-as", options.workload.run_as,
                 "user ranks run as (default for a root agent: 'gangway' if that account "
                 "exists, else 'nobody'); a non-root agent runs them as itself");
  app.add_flag("--allow-root-workloads", options.workload.allow_root,
               "let ranks run as root (--run-as root, or jobs with user: root listed in "
               "--allow-user)");
  app.add_option("--allow-user", options.workload.allowed_users,
                 "a user jobs may ask for with `user:` (repeat, or a comma list)")
      ->delimiter(',');
  app.add_option("--pass-env", options.environment.pass,
                 "pass this variable of the agent's environment to ranks (repeat); they get "
                 "only PATH, LANG, LANGUAGE, LC_*, TZ, TERM otherwise")
      ->delimiter(',');
  app.add_option("--tls-ca", options.tls.ca_file,
                 "CA certificate (PEM) that signed the coordinator's; enables TLS, and ranks "
                 "get it in GANGWAY_TLS_CA")
      ->envname("GANGWAY_TLS_CA");
  app.add_option("--tls-cert", options.tls.cert_file, "this node's client certificate (PEM)")
      ->envname("GANGWAY_TLS_CERT");
  app.add_option("--tls-key", options.tls.key_file,
                 "the client certificate's private key (PEM, not readable by group or others)")
      ->envname("GANGWAY_TLS_KEY");
  bool no_keepers = false;
  app.add_flag("--no-rank-keepers", no_keepers,
               "run ranks as the agent's own children: they die with the agent, and a frozen "
               "agent cannot stop them when its lease runs out (default: each rank runs under a "
               "small keeper process, survives an agent restart and is re-adopted)");
  std::string log_max_bytes = "64Mi";
  app.add_option("--log-max-bytes", log_max_bytes,
                 "disk each rank's log may use, its one rotated file included (e.g. 64Mi; "
                 "at least 64Ki; 0: no cap; docs/limits.md)");
  std::string inbound_max_bytes = "64Mi";
  app.add_option("--inbound-max-bytes", inbound_max_bytes,
                 "bytes read from the coordinator and not yet handled before the agent stops "
                 "reading its session (backpressure; default 64Mi, at least 1Mi)");
  app.add_option("--inbound-max-messages", options.inbound_max_messages,
                 "the same bound in messages (default 1024)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 24));
  std::string on_stop = "leave";
  app.add_option("--on-stop", on_stop,
                 "what SIGTERM does: leave (default) stops the agent alone, its ranks run on "
                 "under their keepers and the next agent adopts them; drain places nothing more "
                 "here and waits for every rank to end first (a second SIGTERM stops at once)")
      ->check(CLI::IsMember({"leave", "drain"}));
  app.set_version_flag("--version", common::VersionText("gangway-agent"));
  std::string metrics_listen;
#ifndef GANGWAY_STATIC_AGENT
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus metrics at http://HOST:PORT/metrics (port 0 = any; default: "
                 "off). Unauthenticated: bind it where only Prometheus reaches");
#endif
  CLI11_PARSE(app, argc, argv);
  // Forked now, while this process has one thread (agent/keeper.h).
  std::unique_ptr<agent::KeeperLauncher> launcher;
  if (!no_keepers && !print_inventory) {
    absl::StatusOr<std::unique_ptr<agent::KeeperLauncher>> started = agent::KeeperLauncher::Start();
    if (started.ok()) launcher = *std::move(started);
  }
  common::SetupLogging(log_level);

  gpu::InventoryOptions detect;
  detect.topology_xml = topology;
  detect.links_file = links;
  absl::StatusOr<gpu::DetectedInventory> detected = gpu::Detect(detect);
  if (!detected.ok()) {
    std::cerr << "gangway-agent: " << detected.status().message() << "\n";
    return 2;
  }
  for (const absl::Status& note : detected->notes) {
    GW_LOG_INFO("inventory: {}", std::string(note.message()));
  }
  const v1::NodeInventory& host = detected->inventory;

  // --cpus and --memory replace only what they name, so a --topology
  // machine (or this one) can offer less than it has and keep its GPUs;
  // --gpus replaces the GPUs with simulated ones.
  auto parse = [](auto fn, const std::string& text, const char* flag) -> int64_t {
    auto v = fn(text);
    if (!v.ok()) {
      std::cerr << "gangway-agent: " << flag << ": " << v.status().message() << "\n";
      std::exit(2);
    }
    return *v;
  };
  v1::NodeInventory inv = host;
  if (gpus > 64) {
    std::cerr << "gangway-agent: --gpus: at most 64 GPUs per node\n";
    return 2;
  }
  if (gpus >= 0) {
    inv = agent::SimulatedInventory(
        host.milli_cpus(), host.memory_bytes(), gpus, gpu_model,
        gpu_memory.empty() ? 0 : parse(common::ParseBytes, gpu_memory, "--gpu-memory"));
  }
  if (!cpus.empty()) inv.set_milli_cpus(parse(common::ParseMilliCpus, cpus, "--cpus"));
  if (!memory.empty()) inv.set_memory_bytes(parse(common::ParseBytes, memory, "--memory"));
  options.log_max_bytes = parse(common::ParseBytes, log_max_bytes, "--log-max-bytes");
  if (options.log_max_bytes != 0 && options.log_max_bytes < agent::kMinLogMaxBytes) {
    std::cerr << "gangway-agent: --log-max-bytes: " << log_max_bytes
              << " is below the smallest cap, 64Ki (0 for no cap)\n";
    return 2;
  }
  options.inbound_max_bytes = parse(common::ParseBytes, inbound_max_bytes, "--inbound-max-bytes");
  if (options.inbound_max_bytes < (int64_t{1} << 20)) {
    std::cerr << "gangway-agent: --inbound-max-bytes: " << inbound_max_bytes << " is below 1Mi\n";
    return 2;
  }
  if (print_inventory) {
    std::string json;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = true;
    o.always_print_primitive_fields = true;  // index 0 and NUMA node 0 too
    (void)google::protobuf::util::MessageToJsonString(inv, &json, o);
    std::cout << json;
    return 0;
  }
  // Refused now rather than failing every launch or connection later.
  if (absl::Status valid = agent::ValidateAgentOptions(options); !valid.ok()) {
    std::cerr << "gangway-agent: " << valid.message() << "\n";
    return 2;
  }
  if (options.name.empty()) {
    std::cerr << "gangway-agent: --name is required (no hostname found)\n";
    return 2;
  }
  if (options.address.empty()) options.address = options.name;
  options.inventory = inv;
  if (!no_keepers) {
    options.keeper_launcher = launcher.get();
    std::error_code ec;
    options.keeper_exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec) {
      std::cerr << "gangway-agent: cannot find its own binary for rank keepers (/proc/self/exe: "
                << ec.message() << "); use --no-rank-keepers\n";
      return 2;
    }
  }

  options.version = common::VersionText("gangway-agent");
  absl::StatusOr<std::chrono::microseconds> watchdog_interval = daemon::WatchdogInterval();
  if (!watchdog_interval.ok()) {
    std::cerr << "gangway-agent: " << watchdog_interval.status().message() << "\n";
    return 2;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // threads started below inherit the mask
#ifndef GANGWAY_STATIC_AGENT
  // After the keeper launcher forked: the HTTP server starts threads.
  std::unique_ptr<agent::AgentTelemetry> telemetry;
  if (!metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<agent::AgentTelemetry>> started =
        agent::StartTelemetry(metrics_listen, options.state_dir);
    if (!started.ok()) {
      std::cerr << "gangway-agent: " << started.status().message() << "\n";
      return 2;
    }
    telemetry = *std::move(started);
    options.rank_events = telemetry.get();
    std::cout << "metrics " << telemetry->port() << std::endl;  // tests read the port
  }
#endif
  agent::Agent a(options);
  a.Start();
  // Ready without waiting for the coordinator: the agent runs (and keeps
  // its adopted ranks) while it reconnects.
  std::optional<daemon::Watchdog> watchdog;
  if (watchdog_interval->count() > 0) {
    watchdog.emplace(*watchdog_interval,
                     [&a](std::chrono::milliseconds t) { return a.LoopAnswers(t); });
  }
  (void)daemon::Notify("READY=1");
  int sig = 0;
  sigwait(&set, &sig);
  GW_LOG_INFO("node={} stopping on signal {} (--on-stop={})", options.name, sig, on_stop);
  (void)daemon::Notify("STOPPING=1");
  if (on_stop == "drain" && !DrainUntilDone(a, set)) {
    GW_LOG_WARN("node={} second signal: stopping before its ranks ended", options.name);
  }
  watchdog.reset();
  a.Stop();
  return 0;
}
