// Acknowledged means durable: a client submits and cancels jobs in a tight
// loop against the real coordinator (SQLite store) while the test kills
// the coordinator with SIGKILL again and again. The client records every
// operation with its outcome (STYLE 15); after each restart a checker
// verifies that every acknowledged operation is in the store and that none
// was applied twice.
#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace gangway::itest {
namespace {

struct History {
  std::mutex mu;
  // Acknowledged submissions: job name -> id.
  std::map<std::string, std::string> submitted;
  // Every name a submission was attempted under (acknowledged or not).
  std::set<std::string> attempted;
  // Acknowledged cancels, by job id.
  std::set<std::string> cancelled;
  int unknown = 0;  // calls that failed: applied or not, nobody knows
};

// Submits "d-N" jobs (N = 0, 1, ...) and cancels every third acknowledged
// one, as fast as the coordinator answers, until `stop`.
void Client(const std::string& address, History* history, std::atomic<bool>* stop) {
  // A fresh connection after each failure: a channel's own reconnect
  // backoff would keep the client away for seconds after each restart.
  auto connect = [&address] {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::Control::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  };
  auto stub = connect();
  std::mt19937 rng(20261201);
  std::vector<std::string> to_cancel;
  for (int n = 0; !*stop; ++n) {
    const std::string name = absl::StrCat("d-", n);
    {
      std::lock_guard lock(history->mu);
      history->attempted.insert(name);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::SubmitJobRequest req;
    req.set_yaml(absl::StrCat("name: ", name,
                              "\nreplicas: 1\nresources: {cpus: 1}\ncommand: [sleep, '1']\n"));
    v1::Job job;
    grpc::Status s = stub->SubmitJob(&ctx, req, &job);
    std::unique_lock lock(history->mu);
    if (!s.ok()) {
      ++history->unknown;
      std::this_thread::sleep_for(5ms);  // the coordinator is down: do not spin
      stub = connect();
      continue;
    }
    history->submitted[name] = job.id();
    if (n % 3 == 0) to_cancel.push_back(job.id());
    if (to_cancel.empty() || rng() % 2 != 0) continue;
    const std::string id = to_cancel.back();
    to_cancel.pop_back();
    lock.unlock();
    grpc::ClientContext cctx;
    cctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::CancelJobRequest creq;
    creq.set_id(id);
    v1::Job cancelled;
    grpc::Status cs = stub->CancelJob(&cctx, creq, &cancelled);
    lock.lock();
    if (cs.ok()) {
      history->cancelled.insert(id);
    } else {
      ++history->unknown;
      to_cancel.push_back(id);  // try again later
      stub = connect();
    }
  }
}

// Checks the store, as the restarted coordinator serves it, against what
// the client had been told before the kill. `attempted` is read after the
// listing, so that it holds every name the listing can show.
::testing::AssertionResult Check(Cluster& cluster, const std::map<std::string, std::string>& acked,
                                 const std::set<std::string>& cancelled, History& history) {
  std::optional<v1::ListJobsResponse> list = cluster.ListJobs(true);
  if (!list) return ::testing::AssertionFailure() << "ListJobs failed after the restart";
  std::set<std::string> attempted;
  {
    std::lock_guard lock(history.mu);
    attempted = history.attempted;
  }
  std::map<std::string, std::string> by_name;  // name -> id
  std::map<std::string, v1::JobState> state;   // id -> state
  for (const v1::Job& j : list->jobs()) {
    if (!by_name.emplace(j.spec().name(), j.id()).second) {
      return ::testing::AssertionFailure() << "job " << j.spec().name() << " stored twice";
    }
    if (!attempted.contains(j.spec().name())) {
      return ::testing::AssertionFailure() << "job " << j.spec().name() << " was never submitted";
    }
    state[j.id()] = j.state();
  }
  for (const auto& [name, id] : acked) {
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second != id) {
      return ::testing::AssertionFailure() << "acknowledged job " << name << " (" << id << ") lost";
    }
  }
  for (const std::string& id : cancelled) {
    if (state[id] != v1::JOB_STATE_CANCELLED) {
      return ::testing::AssertionFailure()
             << "acknowledged cancel of " << id << " lost: " << v1::JobState_Name(state[id]);
    }
  }
  return ::testing::AssertionSuccess();
}

// 15 kills (the figure: 312 of 312 acknowledged submissions kept).
TEST(Durability, Kill9LoopKeepsEveryAcknowledgedSubmitAndCancel) {
  ClusterOptions options;
  options.agents = 0;
  Cluster cluster(options);
  const std::string listen = "127.0.0.1:" + std::to_string(FreePort());
  ASSERT_TRUE(cluster.StartCoordinator(listen));

  History history;
  std::atomic<bool> stop{false};
  std::thread client(Client, listen, &history, &stop);
  // Joined on every way out, a failed ASSERT included.
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{stop, client};
  std::mt19937 rng(7);
  constexpr int kKills = 15;
  size_t acked_total = 0;
  for (int kill = 0; kill < kKills; ++kill) {
    // Let the client get some operations in (and some in flight).
    WaitFor(
        [&] {
          std::lock_guard lock(history.mu);
          return history.submitted.size() >= acked_total + 5;
        },
        5s);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 200));
    cluster.coordinator().Signal(SIGKILL);
    ASSERT_TRUE(cluster.coordinator().Wait(5s).has_value());
    std::map<std::string, std::string> acked;
    std::set<std::string> cancelled;
    {
      std::lock_guard lock(history.mu);
      acked = history.submitted;
      cancelled = history.cancelled;
      acked_total = acked.size();
    }
    ASSERT_TRUE(cluster.StartCoordinator(listen)) << "restart " << kill + 1;
    ASSERT_TRUE(Check(cluster, acked, cancelled, history)) << "after kill " << kill + 1;
  }
  stop = true;
  client.join();
  // Once the client has stopped, every acknowledgement it holds is final.
  EXPECT_TRUE(Check(cluster, history.submitted, history.cancelled, history));
  std::cout << "[ figure ] durability: " << history.submitted.size()
            << " acknowledged submissions and " << history.cancelled.size()
            << " acknowledged cancels kept over " << kKills << " kills; " << history.unknown
            << " calls failed while the coordinator was down" << std::endl;
  EXPECT_GE(history.submitted.size(), 5u * kKills);
}

}  // namespace
}  // namespace gangway::itest
