// gangway: the command line. kubectl's conventions: --coordinator or
// GANGWAY_COORDINATOR picks the coordinator, -o json|yaml for scripts.
#include <signal.h>
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/admin.h"
#include "cli/commands.h"
#include "cli/local.h"
#include "cli/sweeps.h"
#include "common/log.h"
#include "common/version.h"

int main(int argc, char** argv) {
  using namespace gangway::cli;
  CLI::App app{"gangway: gang-scheduled training jobs and sweeps"};
  app.require_subcommand(1);
  // Global options also after the subcommand, as kubectl takes them
  // (`gangway get JOB -o json`); subcommands made below inherit this.
  app.fallthrough();
  Context ctx;
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  const char* env = std::getenv("GANGWAY_COORDINATOR");
  ctx.coordinator = env && *env ? env : "127.0.0.1:7070";
  std::string output;
  std::string log_level = "warn";
  app.add_option("--coordinator", ctx.coordinator,
                 "coordinator address host:port (env GANGWAY_COORDINATOR)");
  app.add_option("-o,--output", output, "table|wide|json|yaml|name");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  std::string tls_ca;
  if (const char* v = std::getenv("GANGWAY_TLS_CA"); v && *v) tls_ca = v;
  if (const char* v = std::getenv("GANGWAY_TOKEN"); v && *v) ctx.token = v;
  app.add_option("--tls-ca", tls_ca,
                 "the cluster CA (PEM file) to verify a TLS coordinator (env GANGWAY_TLS_CA)");
  app.add_option("--tls-server-name", ctx.tls.server_name,
                 "expect this name in the coordinator's certificate instead of the address's host");
  app.add_option("--token", ctx.token, "bearer token (env GANGWAY_TOKEN)");

  std::string file, id;
  int rank = 0, attempt = 0;
  bool follow = false, all = false;
  auto* submit = app.add_subcommand("submit", "submit a job spec (YAML file, - for stdin)");
  submit->add_option("FILE", file)->required();
  auto* get = app.add_subcommand("get", "show a job and its ranks");
  get->add_option("JOB", id)->required();
  auto* list = app.add_subcommand("list", "list jobs");
  list->add_flag("-a,--all", all, "include finished jobs");
  auto* cancel = app.add_subcommand("cancel", "stop every rank of a job");
  cancel->add_option("JOB", id)->required();
  auto* logs = app.add_subcommand("logs", "print a rank's output");
  logs->add_option("JOB", id)->required();
  logs->add_option("--rank", rank, "rank (default 0)");
  logs->add_option("--attempt", attempt, "attempt (default: the current one)");
  logs->add_flag("-f,--follow", follow, "keep printing until the job ends");
  int64_t offset = 0;
  logs->add_option("--offset", offset,
                   "start at this byte of the log (where an interrupted read said it stopped)")
      ->check(CLI::NonNegativeNumber);
  auto* watch = app.add_subcommand("watch", "show a job's progress until it ends");
  watch->add_option("JOB", id)->required();
  auto* nodes = app.add_subcommand("nodes", "list nodes (-o wide for GPUs)");
  auto* best = app.add_subcommand("best", "the best trial of a sweep and its parameters");
  best->add_option("SWEEP", id)->required();
  int parallel = 0, max_trials = 0, max_failed = 0;
  auto* update = app.add_subcommand(
      "update",
      "change a sweep's parallelTrials, maxTrials (extends a finished sweep), maxFailedTrials");
  update->add_option("SWEEP", id)->required();
  update->add_option("--parallel-trials", parallel, "trials at once");
  update->add_option("--max-trials", max_trials, "trials in all");
  update->add_option("--max-failed-trials", max_failed, "failures before the sweep fails");
  std::string metric;
  auto* metrics = app.add_subcommand("metrics", "the metric points a job (trial) reported");
  metrics->add_option("JOB", id)->required();
  metrics->add_option("--name", metric, "only this metric");
  LocalOptions local_options;
  auto* local = app.add_subcommand(
      "local", "run a spec on this machine: coordinator and nodes in one process");
  local->add_option("SPEC", local_options.spec_file)->required();
  local->add_option("--nodes", local_options.nodes, "simulated nodes (default 2)");
  local->add_option("--node-cpus", local_options.node_cpus,
                    "cores per node (default max(2, cores / nodes))");
  local->add_option("--node-memory", local_options.node_memory, "memory per node");
  local->add_option("--node-gpus", local_options.node_gpus, "simulated GPUs per node");
  local->add_option("--node-topology", local_options.node_topology,
                    "every node describes this hwloc XML topology (GPUs, NUMA, links)");
  local->add_option("--state", local_options.state_dir, "state directory (default .gangway/local)");
  local->add_flag("!--no-logs", local_options.show_logs, "do not print the ranks' output");
  AdminCommands admin(app);  // certs, token: local files, no coordinator
  const std::string version = gangway::common::VersionText("gangway");
  auto* version_cmd = app.add_subcommand("version", "print this binary's version and exit");
  app.set_version_flag("--version", version);
  CLI11_PARSE(app, argc, argv);
  if (version_cmd->parsed()) {
    std::cout << version << "\n";
    return 0;
  }
  if (!tls_ca.empty()) ctx.tls.SetCa(tls_ca);
  gangway::common::SetupLogging(log_level);

  auto out = ParseOutput(output);
  if (!out.ok()) {
    std::cerr << "error: " << out.status().message() << "\n";
    return 2;
  }
  ctx.output = *out;
  ctx.terminal = isatty(STDOUT_FILENO) == 1;
  if (local->parsed()) {
    // Before any thread starts, so Ctrl-C reaches the thread that cancels.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    local_options.terminal = isatty(STDOUT_FILENO) == 1;
    return RunLocal(local_options, std::cout, std::cerr);
  }
  if (auto code = admin.Run(std::cout, std::cerr)) return *code;
  if (auto s = Connect(ctx); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
  }
  if (submit->parsed()) return Submit(ctx, file);
  if (get->parsed()) return Get(ctx, id);
  if (list->parsed()) return List(ctx, all);
  if (cancel->parsed()) return Cancel(ctx, id);
  if (logs->parsed()) return Logs(ctx, id, rank, attempt, follow, offset);
  if (watch->parsed()) return Watch(ctx, id);
  if (nodes->parsed()) return Nodes(ctx);
  if (best->parsed()) return Best(ctx, id);
  if (update->parsed()) return UpdateSweep(ctx, id, parallel, max_trials, max_failed);
  if (metrics->parsed()) return Metrics(ctx, id, metric);
  return 2;
}
