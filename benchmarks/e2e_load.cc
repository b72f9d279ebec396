// End-to-end load: a coordinator and N agents on loopback (in this process,
// as `gangway local` runs them), then M trivial jobs (`true`) submitted from
// several client threads. Reports jobs/s from the first submission to the
// last Succeeded, and percentiles of submit-to-start latency (the
// coordinator's create time to the time it learned the rank's process was
// spawned), all from the coordinator's own timestamps.
//
//   e2e_load [--agents 4] [--jobs 2000] [--clients 4] [--rate R] [--state DIR] [--tls]
//            [--keepers PATH-TO-gangway-agent [--exec-keepers]]
//
// --keepers runs every rank under a rank keeper, as gangway-agent does on a
// node (agent/keeper.h); without it ranks are the agents' own children, as
// in `gangway local`.
//
// --tls runs everything as a secured cluster does: certificates from
// InitCertificates (what `gangway certs init` makes), agents with node
// certificates, clients over TLS with an admin token from a token file.
//
// Without --rate every job is submitted at once, which measures throughput
// (and start latency then includes the queue); with --rate the latency is
// that of a job arriving at a cluster running at that load.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "agent/agent.h"
#include "agent/inventory.h"
#include "common/certs.h"
#include "common/list_jobs.h"
#include "common/log.h"
#include "common/tokens.h"
#include "coordinator/job_state.h"
#include "coordinator/server.h"
#include "gangway/v1/gangway.grpc.pb.h"

using namespace gangway;

int main(int argc, char** argv) {
  CLI::App app{"end-to-end job throughput and start latency"};
  int agents_n = 4, jobs_n = 2000, clients = 4;
  double rate = 0;  // submissions per second in all; 0 = as fast as the clients go
  bool tls = false;
  std::string sync = "full";
  std::string state = "/tmp/gangway-e2e-load";
  std::string keepers;
  app.add_option("--agents", agents_n);
  app.add_option("--jobs", jobs_n);
  app.add_option("--clients", clients);
  app.add_option("--state", state);
  app.add_option("--rate", rate, "paced submissions per second (open loop); 0 = burst");
  app.add_option("--keepers", keepers, "gangway-agent binary: run ranks under rank keepers");
  bool exec_keepers = false;
  app.add_flag("--exec-keepers", exec_keepers,
               "with --keepers: exec each keeper instead of forking it from a launcher");
  app.add_flag("--tls", tls, "TLS, node certificates and a token, as a secured cluster");
  app.add_option("--store-sync", sync, "full (the default, power-loss safe) or normal")
      ->check(CLI::IsMember({"full", "normal"}));
  CLI11_PARSE(app, argc, argv);
  // Forked while this process has one thread, as gangway-agent does.
  std::unique_ptr<agent::KeeperLauncher> launcher;
  if (!keepers.empty() && !exec_keepers) {
    absl::StatusOr<std::unique_ptr<agent::KeeperLauncher>> started = agent::KeeperLauncher::Start();
    if (!started.ok()) {
      std::cerr << started.status() << "\n";
      return 1;
    }
    launcher = *std::move(started);
  }
  common::SetupLogging("warn");
  std::filesystem::remove_all(state);

  coordinator::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.state_dir = state;
  so.store_full_sync = sync == "full";
  const std::string certs = state + "/certs";
  std::string token;
  if (tls) {
    common::CertsInitOptions co;
    co.dir = certs;
    for (int i = 0; i < agents_n; ++i) co.nodes.push_back(absl::StrCat("load-", i));
    absl::StatusOr<common::CertsInitResult> made = common::InitCertificates(co);
    absl::StatusOr<std::string> admin =
        made.ok() ? common::CreateToken(state + "/tokens", "bench", common::Role::kAdmin)
                  : absl::StatusOr<std::string>(made.status());
    if (!admin.ok()) {
      std::cerr << admin.status() << "\n";
      return 1;
    }
    token = *admin;
    so.tls.ca_file = certs + "/ca.crt";
    so.tls.cert_file = certs + "/coordinator.crt";
    so.tls.key_file = certs + "/coordinator.key";
    so.token_file = state + "/tokens";
  }
  auto server = coordinator::CoordinatorServer::Start(so);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::vector<std::unique_ptr<agent::Agent>> agents;
  for (int i = 0; i < agents_n; ++i) {
    agent::AgentOptions a;
    a.coordinator = (*server)->address();
    a.name = absl::StrCat("load-", i);
    a.address = "127.0.0.1";
    a.state_dir = absl::StrCat(state, "/agents/", a.name);
    a.inventory = agent::SimulatedInventory(64000, int64_t{64} << 30, 0, "", 0);
    a.keeper_exe = keepers;
    a.keeper_launcher = launcher.get();
    if (tls) {
      a.tls.ca_file = certs + "/ca.crt";
      a.tls.cert_file = absl::StrCat(certs, "/", a.name, ".crt");
      a.tls.key_file = absl::StrCat(certs, "/", a.name, ".key");
    }
    agents.push_back(std::make_unique<agent::Agent>(a));
    agents.back()->Start();
  }
  common::ClientTls client_tls;
  if (tls) client_tls.ca_file = certs + "/ca.crt";
  auto channel = common::MakeChannel((*server)->address(), client_tls, token).value();
  auto stub = v1::Control::NewStub(channel);
  // Wait for the agents (start-up, not measured).
  for (int tries = 0; tries < 1000; ++tries) {
    grpc::ClientContext ctx;
    v1::ListNodesResponse nodes;
    if (stub->ListNodes(&ctx, {}, &nodes).ok() && nodes.nodes_size() == agents_n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  v1::SubmitJobRequest req;
  req.set_yaml("name: t\ncommand: [\"true\"]\nresources: {cpus: 0.1}\n");
  std::atomic<int> next{0}, failed{0};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      auto s = v1::Control::NewStub(channel);
      int i;
      while ((i = next.fetch_add(1)) < jobs_n) {
        if (rate > 0) {
          // Open loop: job i is due at t0 + i / rate, whatever came before.
          std::this_thread::sleep_until(
              t0 + std::chrono::microseconds(static_cast<int64_t>(i * 1e6 / rate)));
        }
        grpc::ClientContext ctx;
        v1::Job job;
        if (!s->SubmitJob(&ctx, req, &job).ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  auto t_submitted = std::chrono::steady_clock::now();

  v1::ListJobsResponse all;
  for (int tries = 0; tries < 6000; ++tries) {
    if (!common::ListAllJobs(*stub, true, std::chrono::seconds(30), &all).ok()) continue;
    int done = 0;
    for (const auto& j : all.jobs()) done += coordinator::IsTerminal(j.state());
    if (done == all.jobs_size() && done == jobs_n - failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  int64_t first_create = INT64_MAX, last_end = 0;
  int succeeded = 0;
  std::vector<int64_t> start_ms;
  std::map<std::string, int> unfinished;  // reason -> jobs not Succeeded
  for (const auto& j : all.jobs()) {
    first_create = std::min(first_create, j.create_time_ms());
    last_end = std::max(last_end, j.end_time_ms());
    succeeded += j.state() == v1::JOB_STATE_SUCCEEDED;
    if (j.state() != v1::JOB_STATE_SUCCEEDED) ++unfinished[j.reason()];
    if (j.ranks_size() > 0 && j.ranks(0).start_time_ms() > 0) {
      start_ms.push_back(j.ranks(0).start_time_ms() - j.create_time_ms());
    }
  }
  std::sort(start_ms.begin(), start_ms.end());
  auto pct = [&](double p) {
    if (start_ms.empty()) return int64_t{-1};
    return start_ms[std::min(start_ms.size() - 1, static_cast<size_t>(p * start_ms.size()))];
  };
  const double secs = (last_end - first_create) / 1000.0;
  const double submit_secs = std::chrono::duration<double>(t_submitted - t0).count();
  std::cout << (tls ? "tls " : "plaintext ")
            << (keepers.empty() ? ""
                : exec_keepers  ? "exec'd-keepers "
                                : "keepers ")
            << "store-sync " << sync << " rate " << (rate > 0 ? absl::StrCat(rate, "/s") : "burst")
            << " agents " << agents_n << " clients " << clients << " jobs " << jobs_n
            << " succeeded " << succeeded << " failed_submits " << failed << "\n"
            << "submit phase " << submit_secs << " s (" << jobs_n / submit_secs << " submits/s)\n"
            << "first submit -> last Succeeded " << secs << " s = " << succeeded / secs
            << " jobs/s\n"
            << "submit -> process start ms: p50 " << pct(0.5) << " p90 " << pct(0.9) << " p99 "
            << pct(0.99) << " max " << (start_ms.empty() ? -1 : start_ms.back()) << "\n";
  for (const auto& [reason, n] : unfinished)
    std::cout << "not succeeded: " << n << " x " << reason << "\n";
  agents.clear();
  (*server)->Shutdown();
  return succeeded == jobs_n ? 0 : 1;
}
