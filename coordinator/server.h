// The coordinator daemon's wiring: the store, the core on its own loop
// thread, and the gRPC callback services (Control, AgentSession) that post
// events into the loop. Used by gangway-coordinator and `gangway local`.
//
// Threads: gRPC's callback threads run the reactors, which only post onto
// the loop; the loop thread owns the Core. No thread per stream.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls.h"
#include "coordinator/core.h"

namespace gangway::coordinator {

struct ServerOptions {
  std::string listen = "127.0.0.1:7070";  // port 0 picks a free port
  std::string state_dir = "state";
  CoreOptions core;
  int64_t tick_ms = 100;
  // Larger requests get RESOURCE_EXHAUSTED from gRPC itself.
  int max_message_bytes = 4 << 20;
  // Bytes queued for one agent that has read nothing for a node timeout
  // before its session is closed (server_reactors.h).
  int64_t session_queue_max_bytes = 16 << 20;
  // TLS for every connection; agents then prove their node with a client
  // certificate signed by tls.ca_file.
  common::ServerTls tls;
  // Users' token hashes (gangway token create); empty: anyone who reaches
  // the port may use every user method.
  std::string token_file;
  // Serve a non-loopback address without TLS and tokens (a warning on every
  // start). Without it, such a listen address is refused.
  bool insecure = false;
  // JSON lines of mutating and refused calls; default STATE/audit.log.
  std::string audit_log;
  // Serve Prometheus' /metrics on this host:port (telemetry.h); empty: no.
  std::string metrics_listen;
  // SqliteStore::Open's full_sync: false only to measure what it costs.
  bool store_full_sync = true;
};

class CoordinatorServer {
 public:
  // Opens the store, recovers, listens. Errors: UNAVAILABLE (store, port).
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(const ServerOptions& options);
  ~CoordinatorServer();

  // "127.0.0.1:PORT" with the port actually bound.
  std::string address() const;
  int port() const;
  // The /metrics port (ServerOptions::metrics_listen), 0 without.
  int metrics_port() const;
  // Stops accepting, ends every stream and the loop. Idempotent.
  void Shutdown();
  // Whether the loop ran a task posted now within `timeout` (the systemd
  // watchdog's probe). Any thread.
  bool LoopAnswers(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gangway::coordinator
