// gangway-coordinator: owns every job and node record.
#include <signal.h>

#include <iostream>
#include <optional>

#include "CLI/CLI.hpp"
#include "common/log.h"
#include "common/spec.h"
#include "common/version.h"
#include "coordinator/server.h"
#include "daemon/systemd_notify.h"

int main(int argc, char** argv) {
  using namespace gangway;
  CLI::App app{"gangway-coordinator: schedules gangs of ranks onto agents"};
  coordinator::ServerOptions options;
  double node_timeout_s = 5, heartbeat_s = 1, grace_s = 5, reserve_after_s = 60;
  double backoff_s = 10, backoff_max_s = 300;
  double lease_s = -1;  // default: the node timeout
  int64_t ttl_s = -1, metric_points = 10'000;
  std::string log_level = "info";
  app.add_option("--listen", options.listen, "address to serve on (host:port; port 0 = any)");
  app.add_option("--state", options.state_dir, "state directory (SQLite store)");
  app.add_option("--node-timeout", node_timeout_s,
                 "seconds without a heartbeat before a node is NotReady (default 5)");
  app.add_option("--heartbeat-interval", heartbeat_s, "seconds between agent heartbeats");
  app.add_option("--stop-grace", grace_s, "seconds between SIGTERM and SIGKILL (default 5)");
  app.add_option("--restart-backoff", backoff_s,
                 "seconds the second restart of a failed gang waits, doubling for each "
                 "restart after it (default 10; the first restart is immediate)");
  app.add_option("--lease", lease_s,
                 "seconds an agent keeps its ranks without hearing from the coordinator "
                 "(default: --node-timeout; 0 = no lease). A silent node's ranks count as lost "
                 "after --node-timeout + --stop-grace + --heartbeat-interval, once its agent "
                 "has stopped them");
  app.add_option("--restart-backoff-max", backoff_max_s,
                 "the longest a restart waits (default 300)");
  app.add_option("--reserve-after", reserve_after_s,
                 "seconds a job waits before smaller jobs behind it stop taking what it needs "
                 "(default 60; 0 = never)");
  app.add_option("--ttl-after-finished", ttl_s,
                 "seconds a finished job or sweep is kept, with its trials and metric points, "
                 "when its spec sets no ttlSecondsAfterFinished (default -1: forever; 0: "
                 "deleted as soon as it ends)");
  app.add_option("--metric-points-per-name", metric_points,
                 "most metric points kept per job and metric name; past it the series is "
                 "downsampled evenly, keeping its latest, lowest and highest values (default "
                 "10000; 0: every point)");
  app.add_option("--rendezvous-endpoint", options.core.rendezvous_endpoint,
                 "GANGWAY_RDZV given to ranks (default: the listen address; with a wildcard "
                 "one such as 0.0.0.0, the address each node's agent reaches the coordinator "
                 "at)");
  app.add_option("--metrics-listen", options.metrics_listen,
                 "serve Prometheus metrics at http://HOST:PORT/metrics (port 0 = any; default: "
                 "off). Unauthenticated: bind it where only Prometheus reaches");
  std::string session_queue_max = "16Mi";
  app.add_option("--session-queue-max-bytes", session_queue_max,
                 "bytes queued for an agent that has read nothing for a node timeout before its "
                 "session is closed; the agent reconnects and reconciles (default 16Mi, at least "
                 "1Mi)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  app.add_option("--tls-cert", options.tls.cert_file,
                 "this coordinator's certificate (PEM; gangway certs init makes one)");
  app.add_option("--tls-key", options.tls.key_file, "its private key (mode 0600)");
  app.add_option("--tls-ca", options.tls.ca_file,
                 "the CA that signs the agents' node certificates");
  app.add_option("--token-file", options.token_file,
                 "users' token hashes (gangway token create); without it anyone who reaches "
                 "the port may use every user call");
  app.add_flag("--insecure", options.insecure,
               "serve a non-loopback address without TLS and tokens (refused otherwise)");
  app.add_option("--audit-log", options.audit_log,
                 "JSON lines of mutating and refused calls (default STATE/audit.log)");
  app.set_version_flag("--version", common::VersionText("gangway-coordinator"));
  CLI11_PARSE(app, argc, argv);
  if (node_timeout_s <= 0 || heartbeat_s <= 0 || grace_s < 0 || heartbeat_s >= node_timeout_s ||
      reserve_after_s < 0 || backoff_s < 0 || backoff_max_s < backoff_s) {
    std::cerr << "gangway-coordinator: need 0 < --heartbeat-interval < --node-timeout, "
                 "--stop-grace >= 0, --reserve-after >= 0 and "
                 "0 <= --restart-backoff <= --restart-backoff-max\n";
    return 2;
  }
  if (ttl_s < -1 || ttl_s > 315'360'000 || metric_points < 0) {
    std::cerr << "gangway-coordinator: need -1 <= --ttl-after-finished <= 315360000 (ten "
                 "years) and --metric-points-per-name >= 0\n";
    return 2;
  }
  if (absl::StatusOr<int64_t> bytes = common::ParseBytes(session_queue_max);
      !bytes.ok() || *bytes < (int64_t{1} << 20)) {
    std::cerr << "gangway-coordinator: --session-queue-max-bytes: "
              << (bytes.ok() ? session_queue_max + " is below 1Mi" : bytes.status().message())
              << "\n";
    return 2;
  } else {
    options.session_queue_max_bytes = *bytes;
  }
  options.core.ttl_after_finished_s = ttl_s;
  options.core.metric_points_per_name = metric_points;
  options.core.reserve_after_ms = static_cast<int64_t>(reserve_after_s * 1000);
  options.core.node_timeout_ms = static_cast<int64_t>(node_timeout_s * 1000);
  options.core.lease_ms = static_cast<int64_t>((lease_s < 0 ? node_timeout_s : lease_s) * 1000);
  options.core.heartbeat_interval_ms = static_cast<int64_t>(heartbeat_s * 1000);
  options.core.stop_grace_ms = static_cast<int64_t>(grace_s * 1000);
  options.core.restart_backoff_ms = static_cast<int64_t>(backoff_s * 1000);
  options.core.restart_backoff_max_ms = static_cast<int64_t>(backoff_max_s * 1000);
  common::SetupLogging(log_level);
  absl::StatusOr<std::chrono::microseconds> watchdog_interval = daemon::WatchdogInterval();
  if (!watchdog_interval.ok()) {
    std::cerr << "gangway-coordinator: " << watchdog_interval.status().message() << "\n";
    return 2;
  }

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto server = coordinator::CoordinatorServer::Start(options);
  if (!server.ok()) {
    std::cerr << "gangway-coordinator: " << server.status().message() << "\n";
    return 1;
  }
  // Scripts and tests that pass port 0 read the port from this line.
  std::cout << "listening " << (*server)->address() << std::endl;
  if (const int port = (*server)->metrics_port(); port != 0) {
    std::cout << "metrics " << port << std::endl;
  }
  // systemd (Type=notify): serving now; the watchdog pings while the loop
  // answers.
  std::optional<daemon::Watchdog> watchdog;
  if (watchdog_interval->count() > 0) {
    watchdog.emplace(*watchdog_interval,
                     [&s = **server](std::chrono::milliseconds t) { return s.LoopAnswers(t); });
  }
  if (absl::Status s = daemon::Notify("READY=1"); !s.ok()) {
    GW_LOG_WARN("{}", std::string(s.message()));
  }
  int sig = 0;
  sigwait(&set, &sig);
  GW_LOG_INFO("stopping on signal {}", sig);
  (void)daemon::Notify("STOPPING=1");
  watchdog.reset();
  (*server)->Shutdown();
  return 0;
}
