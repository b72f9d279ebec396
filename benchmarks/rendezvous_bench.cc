// How fast the rendezvous hands rank 0's NCCL unique id to a whole gang.
//
// An in-process coordinator-like server (RendezvousService on its own
// io_context thread, grpc::Server on 127.0.0.1:0) and N simulated ranks,
// each with its own channel and TCP connection as real rank processes have,
// driven with gRPC's callback client API from one thread (no thread per
// rank). Connections are made before timing: a rank's first call also pays
// for its TCP and HTTP/2 setup, which is not the rendezvous' cost.
//
//   IdFanOut/N  ranks 1..N-1 already wait in Get; rank 0 arrives last with
//               its Set. Timed from the Set being sent until every rank
//               holds the id (rank 0's Set answered, every Get answered).
//   IdBurst/N   rank 0 has published; ranks 1..N-1 arrive at once. Timed
//               from the first Get sent (so issuing the calls counts) until
//               the last answer.
//
// Each iteration is one trial in a fresh job attempt; counters p50_ms and
// p90_ms are over the trials of a run, and the reported time is their mean.
//
//   ninja -C build rendezvous_bench && build/benchmarks/rendezvous_bench
#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "coordinator/rendezvous.h"
#include "coordinator/rendezvous_service.h"
#include "gangway/v1/gangway.grpc.pb.h"

namespace gangway {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kKey = "nccl/unique_id";
const std::string kId(128, 'i');  // the size of an ncclUniqueId

// The coordinator's part: store, service, loop thread, server.
class Server {
 public:
  Server() : service_(io_, store_) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    loop_ = std::thread([this] { io_.run(); });
  }
  ~Server() {
    server_->Shutdown(std::chrono::system_clock::now() + 2s);
    work_.reset();
    io_.stop();
    loop_.join();
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  // Runs fn(store) on the loop thread and returns its result.
  template <typename Fn>
  auto OnLoop(Fn fn) {
    std::packaged_task<decltype(fn(store_))()> task([&] { return fn(store_); });
    auto future = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return future.get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  coordinator::Rendezvous store_;
  coordinator::RendezvousService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::thread loop_;
};

// Counts answers; remembers when the last one came.
class Latch {
 public:
  explicit Latch(int n) : left_(n) {}
  void Arrive(const grpc::Status& s) {
    std::lock_guard lock(mu_);
    if (!s.ok()) ++failed_;
    if (--left_ == 0) {
      last_ = Clock::now();
      cv_.notify_all();
    }
  }
  // False when the answers did not all come within 30 s.
  bool Wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 30s, [this] { return left_ == 0; });
  }
  Clock::time_point last() const { return last_; }
  int failed() const { return failed_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int left_;
  int failed_ = 0;
  Clock::time_point last_;
};

struct Rank {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Rendezvous::Stub> stub;
  // One call in flight at a time.
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::RdzvGetRequest get;
  v1::RdzvGetResponse got;
  v1::RdzvSetRequest set;
  v1::RdzvSetResponse set_resp;
};

std::vector<Rank> Connect(const std::string& address, int n) {
  // Real ranks are processes with one connection each; a local subchannel
  // pool stops gRPC from sharing one connection among the channels.
  std::vector<Rank> ranks(n);
  for (Rank& r : ranks) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    r.channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    r.stub = v1::Rendezvous::NewStub(r.channel);
  }
  for (Rank& r : ranks) r.channel->WaitForConnected(std::chrono::system_clock::now() + 10s);
  return ranks;
}

void StartGet(Rank& r, int attempt, Latch& latch) {
  r.ctx = std::make_unique<grpc::ClientContext>();
  r.ctx->set_deadline(std::chrono::system_clock::now() + 30s);
  r.get.Clear();
  r.get.mutable_scope()->set_job_id("bench");
  r.get.mutable_scope()->set_attempt(attempt);
  r.get.add_keys(kKey);
  r.get.set_timeout_ms(20'000);
  r.got.Clear();
  r.stub->async()->Get(r.ctx.get(), &r.get, &r.got, [&latch](grpc::Status s) { latch.Arrive(s); });
}

void StartSet(Rank& r, int attempt, Latch& latch) {
  r.ctx = std::make_unique<grpc::ClientContext>();
  r.ctx->set_deadline(std::chrono::system_clock::now() + 30s);
  r.set.Clear();
  r.set.mutable_scope()->set_job_id("bench");
  r.set.mutable_scope()->set_attempt(attempt);
  r.set.set_key(kKey);
  r.set.set_value(kId);
  r.stub->async()->Set(r.ctx.get(), &r.set, &r.set_resp,
                       [&latch](grpc::Status s) { latch.Arrive(s); });
}

void RaiseFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

void Report(benchmark::State& state, std::vector<double> ms) {
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  auto at = [&ms](double q) { return ms[static_cast<size_t>(q * (ms.size() - 1) + 0.5)]; };
  state.counters["p50_ms"] = at(0.5);
  state.counters["p90_ms"] = at(0.9);
  state.counters["max_ms"] = ms.back();
  state.counters["ranks"] = static_cast<double>(state.range(0));
}

void BM_IdFanOut(benchmark::State& state) {
  RaiseFileLimit();
  const int n = static_cast<int>(state.range(0));
  Server server;
  std::vector<Rank> ranks = Connect(server.address(), n);
  std::vector<double> samples;
  int attempt = 0;
  for (auto _ : state) {
    ++attempt;
    Latch latch(n);  // n - 1 Gets and the Set
    for (int r = 1; r < n; ++r) StartGet(ranks[r], attempt, latch);
    // Everyone but rank 0 is waiting in the store before rank 0 arrives.
    while (server.OnLoop([](coordinator::Rendezvous& s) { return s.waiter_count(); }) <
           static_cast<size_t>(n - 1)) {
      std::this_thread::yield();
    }
    const Clock::time_point start = Clock::now();
    StartSet(ranks[0], attempt, latch);
    if (!latch.Wait() || latch.failed() > 0) {
      state.SkipWithError("a rank did not get the id");
      break;
    }
    const double seconds = std::chrono::duration<double>(latch.last() - start).count();
    state.SetIterationTime(seconds);
    samples.push_back(seconds * 1e3);
    server.OnLoop([](coordinator::Rendezvous& s) {
      s.ClearJob("bench");
      return 0;
    });
  }
  Report(state, std::move(samples));
}

void BM_IdBurst(benchmark::State& state) {
  RaiseFileLimit();
  const int n = static_cast<int>(state.range(0));
  Server server;
  std::vector<Rank> ranks = Connect(server.address(), n);
  std::vector<double> samples, issue;
  int attempt = 0;
  for (auto _ : state) {
    ++attempt;
    Latch published(1);
    StartSet(ranks[0], attempt, published);
    if (!published.Wait() || published.failed() > 0) {
      state.SkipWithError("rank 0 could not publish");
      break;
    }
    Latch latch(n - 1);
    const Clock::time_point start = Clock::now();
    for (int r = 1; r < n; ++r) StartGet(ranks[r], attempt, latch);
    issue.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!latch.Wait() || latch.failed() > 0) {
      state.SkipWithError("a rank did not get the id");
      break;
    }
    const double seconds = std::chrono::duration<double>(latch.last() - start).count();
    state.SetIterationTime(seconds);
    samples.push_back(seconds * 1e3);
    server.OnLoop([](coordinator::Rendezvous& s) {
      s.ClearJob("bench");
      return 0;
    });
  }
  Report(state, std::move(samples));
  std::sort(issue.begin(), issue.end());
  if (!issue.empty()) state.counters["issue_p50_ms"] = issue[issue.size() / 2];
}

BENCHMARK(BM_IdFanOut)
    ->Arg(8)
    ->Arg(64)
    ->Arg(512)
    ->Iterations(50)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_IdBurst)
    ->Arg(8)
    ->Arg(64)
    ->Arg(512)
    ->Iterations(50)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gangway

BENCHMARK_MAIN();
