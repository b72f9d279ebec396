// A deep queue under many readers: a real coordinator process with no
// agents, --jobs jobs submitted (they stay Pending), then --clients
// clients, each on its own connection as separate `gangway` processes
// would be. Half of them list the queue over and over (`gangway list`);
// the other half watch a job each (`gangway watch`) and read it, while
// this driver cancels the watched jobs one by one so that every watch sees
// its job end. Reports every RPC that failed, latency percentiles per
// method, and the coordinator's peak RSS and CPU.
//
//   queue_load --coordinator-bin build/coordinator/gangway-coordinator
//              [--jobs 10000] [--clients 100] [--seconds 30] [--state DIR]
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "benchmarks/coordinator_process.h"
#include "gangway/v1/gangway.grpc.pb.h"

using namespace gangway;
using Clock = std::chrono::steady_clock;
using bench::CpuTicks;
using bench::RssKb;

namespace {

struct Stats {
  std::mutex mu;
  std::map<std::string, std::vector<double>> latency_ms;  // by method
  std::map<std::string, int> errors;                      // "method: code message"
  void Record(const std::string& method, Clock::time_point t0, const grpc::Status& s) {
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::lock_guard lock(mu);
    latency_ms[method].push_back(ms);
    if (!s.ok()) ++errors[absl::StrCat(method, ": ", s.error_code(), " ", s.error_message())];
  }
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

std::unique_ptr<v1::Control::Stub> OwnConnection(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection each, as a CLI process
  return v1::Control::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"coordinator under a deep queue and many listing and watching clients"};
  std::string bin, state = "/tmp/gangway-queue-load";
  int jobs_n = 10000, clients = 100;
  double seconds = 30;
  app.add_option("--coordinator-bin", bin)->required();
  app.add_option("--jobs", jobs_n);
  app.add_option("--clients", clients);
  app.add_option("--seconds", seconds);
  app.add_option("--state", state);
  CLI11_PARSE(app, argc, argv);

  std::filesystem::remove_all(state);
  const std::optional<bench::CoordinatorProcess> coordinator = bench::StartCoordinator(
      {bin, "--listen", "127.0.0.1:0", "--state", state, "--log-level", "warn"});
  if (!coordinator) return 1;
  const pid_t pid = coordinator->pid;
  const std::string& address = coordinator->address;

  Stats stats;
  // The queue: submitted from 8 connections at once.
  std::vector<std::string> ids(jobs_n);
  const auto submit0 = Clock::now();
  {
    std::vector<std::thread> submitters;
    for (int t = 0; t < 8; ++t) {
      submitters.emplace_back([&, t] {
        auto stub = OwnConnection(address);
        for (int j = t; j < jobs_n; j += 8) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          v1::SubmitJobRequest req;
          req.set_yaml(absl::StrCat("name: queued-", j,
                                    "\nreplicas: 2\nresources: {cpus: 1, memory: 1Gi}\n"
                                    "command: [python3, train.py, --epochs, '10']\n"));
          v1::Job job;
          const auto t0 = Clock::now();
          grpc::Status s = stub->SubmitJob(&ctx, req, &job);
          stats.Record("SubmitJob", t0, s);
          ids[j] = job.id();
        }
      });
    }
    for (auto& t : submitters) t.join();
  }
  const double submit_s = std::chrono::duration<double>(Clock::now() - submit0).count();
  std::cout << "submitted " << jobs_n << " jobs in " << submit_s << " s; coordinator RSS "
            << RssKb(pid) / 1024 << " MiB\n";

  // The readers.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> watch_updates{0}, watches_ended{0};
  const int watchers = clients / 2;
  const int watched = std::min(jobs_n, watchers * 20);  // cancelled over the run
  std::vector<std::thread> threads;
  const auto watch_deadline = std::chrono::system_clock::now() +
                              std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                  std::chrono::duration<double>(seconds + 5));
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto stub = OwnConnection(address);
      std::mt19937 rng(i);
      if (i >= watchers) {  // a `gangway list` loop
        while (!stop) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          v1::ListJobsResponse resp;
          const auto t0 = Clock::now();
          stats.Record("ListJobs", t0, stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp));
        }
        return;
      }
      // `gangway watch` on jobs this client owns (i, i + watchers, ...),
      // each until the driver cancels it, then `gangway get` on it.
      for (int j = i; j < watched && !stop; j += watchers) {
        grpc::ClientContext ctx;
        // A watched job the run did not get to cancel sends nothing more:
        // the watch ends with the run.
        ctx.set_deadline(watch_deadline);
        v1::WatchJobRequest req;
        req.set_id(ids[j]);
        auto reader = stub->WatchJob(&ctx, req);
        v1::Job job;
        const auto t0 = Clock::now();
        while (reader->Read(&job)) {
          ++watch_updates;
          if (job.state() == v1::JOB_STATE_CANCELLED) break;
          if (stop) ctx.TryCancel();
        }
        if (job.state() == v1::JOB_STATE_CANCELLED) {
          ctx.TryCancel();
          reader->Finish();
          ++watches_ended;
        } else if (grpc::Status s = reader->Finish(); !stop) {
          stats.Record(
              "WatchJob", t0,
              s.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "stream ended before the job") : s);
        }
        grpc::ClientContext gctx;
        gctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        v1::GetJobRequest get;
        get.set_id(ids[j]);
        v1::Job got;
        const auto g0 = Clock::now();
        stats.Record("GetJob", g0, stub->GetJob(&gctx, get, &got));
      }
    });
  }

  // Cancel the watched jobs evenly over the run.
  const int64_t cpu0 = CpuTicks(pid);
  int64_t peak_rss = RssKb(pid);
  const auto run0 = Clock::now();
  auto canceller = OwnConnection(address);
  // Bounded by the run: behind a loop saturated by listings each cancel
  // waits its turn, and 1,000 of them would outlast the run many times.
  const auto run_end =
      run0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  int cancelled = 0;
  for (int j = 0; j < watched && Clock::now() < run_end; ++j, ++cancelled) {
    std::this_thread::sleep_until(run0 + std::chrono::duration<double>(seconds * j / watched));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::CancelJobRequest req;
    req.set_id(ids[j]);
    v1::Job job;
    const auto t0 = Clock::now();
    stats.Record("CancelJob", t0, canceller->CancelJob(&ctx, req, &job));
    peak_rss = std::max(peak_rss, RssKb(pid));
  }
  std::this_thread::sleep_until(run0 + std::chrono::duration<double>(seconds));
  const double run_s = std::chrono::duration<double>(Clock::now() - run0).count();
  const double cpu = double(CpuTicks(pid) - cpu0) / sysconf(_SC_CLK_TCK);
  peak_rss = std::max(peak_rss, RssKb(pid));
  stop = true;
  for (auto& t : threads) t.join();

  std::cout << clients - watchers << " listing and " << watchers << " watching clients for "
            << run_s << " s; " << cancelled << " of " << watched << " watched jobs cancelled\n";
  int errors = 0;
  for (const auto& [method, v] : stats.latency_ms) {
    std::cout << method << ": " << v.size() << " calls, p50 " << Percentile(v, 0.5) << " ms, p99 "
              << Percentile(v, 0.99) << " ms, max " << Percentile(v, 1.0) << " ms\n";
  }
  for (const auto& [what, n] : stats.errors) {
    std::cout << "ERROR x" << n << " " << what << "\n";
    errors += n;
  }
  std::cout << "watches that saw their job end: " << watches_ended << " of " << cancelled
            << "; updates read " << watch_updates << "\n"
            << "RPC errors: " << errors << "\n"
            << "coordinator peak RSS " << peak_rss / 1024 << " MiB, CPU " << 100.0 * cpu / run_s
            << "% of one core\n";
  bench::StopCoordinator(pid);
  return errors == 0 ? 0 : 1;
}
