// The rendezvous in three layers: the store alone with explicit times; the
// gRPC service on a real in-process server (port 0) with many concurrent
// trainer-side clients; and Gloo running a real all-reduce among ranks that
// found each other through it.
#include "coordinator/rendezvous.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "coordinator/rendezvous_service.h"
#include "gpu/rendezvous/exchange.h"
#include "gpu/rendezvous/rendezvous_client.h"

#ifdef GANGWAY_HAVE_GLOO
#include "gloo/allreduce.h"
#include "gloo/math.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "gpu/rendezvous/gloo_store.h"
#endif

namespace gangway::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const RdzvScopeId kJob{"job-1", 1};

// Records what a Get or Barrier answered, if it has.
struct GetResult {
  std::optional<absl::StatusOr<std::vector<std::string>>> value;
  Rendezvous::GetCallback Callback() {
    return [this](absl::StatusOr<std::vector<std::string>> v) { value = std::move(v); };
  }
  bool done() const { return value.has_value(); }
  absl::StatusCode code() const {
    return value ? value->status().code() : absl::StatusCode::kUnknown;
  }
};

struct DoneResult {
  std::optional<absl::Status> status;
  Rendezvous::DoneCallback Callback() {
    return [this](absl::Status s) { status = std::move(s); };
  }
  bool done() const { return status.has_value(); }
  absl::StatusCode code() const { return status ? status->code() : absl::StatusCode::kUnknown; }
};

// ---------------------------------------------------------------------------
// The store

TEST(RendezvousStore, SetThenGetAnswersAtOnce) {
  Rendezvous store;
  ASSERT_TRUE(store.Set(kJob, "a", "1").ok());
  ASSERT_TRUE(store.Set(kJob, "b", std::string("\0x", 2)).ok());  // values are bytes
  GetResult r;
  EXPECT_EQ(store.Get(kJob, {"b", "a", "a"}, 0, 0, r.Callback()), 0u);
  ASSERT_TRUE(r.done());
  ASSERT_TRUE(r.value->ok());
  EXPECT_THAT(**r.value, ElementsAre(std::string("\0x", 2), "1", "1"));
  EXPECT_EQ(store.waiter_count(), 0u);
}

TEST(RendezvousStore, GetWaitsUntilEveryKeyIsSet) {
  Rendezvous store;
  GetResult r;
  EXPECT_NE(store.Get(kJob, {"x", "y", "x"}, 1000, 5000, r.Callback()), 0u);
  EXPECT_FALSE(r.done());
  EXPECT_EQ(store.NextDeadline(), 6000);
  ASSERT_TRUE(store.Set(kJob, "x", "X").ok());
  EXPECT_FALSE(r.done()) << "y is still missing";
  ASSERT_TRUE(store.Set(kJob, "y", "Y").ok());
  ASSERT_TRUE(r.done());
  ASSERT_TRUE(r.value->ok()) << r.value->status();
  EXPECT_THAT(**r.value, ElementsAre("X", "Y", "X"));
  EXPECT_EQ(store.waiter_count(), 0u);
  EXPECT_EQ(store.NextDeadline(), std::nullopt);
}

TEST(RendezvousStore, ManyWaitersOnOneKeyAllWake) {
  Rendezvous store;
  std::vector<GetResult> results(100);
  for (auto& r : results) store.Get(kJob, {"id"}, 0, 1000, r.Callback());
  EXPECT_EQ(store.waiter_count(), 100u);
  ASSERT_TRUE(store.Set(kJob, "id", "v").ok());
  for (auto& r : results) {
    ASSERT_TRUE(r.done());
    EXPECT_THAT(r.value->value(), ElementsAre("v"));
  }
  EXPECT_EQ(store.waiter_count(), 0u);
}

TEST(RendezvousStore, GetWithoutWaitingIsNotFound) {
  Rendezvous store;
  GetResult r;
  store.Get(kJob, {"nope"}, 0, 0, r.Callback());
  ASSERT_TRUE(r.done());
  EXPECT_EQ(r.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.value->status().message(), HasSubstr("'nope'"));
  EXPECT_EQ(store.scope_count(), 0u) << "a read that does not wait creates nothing";
}

TEST(RendezvousStore, GetTimesOutAtItsDeadline) {
  Rendezvous store;
  GetResult early, late;
  store.Get(kJob, {"k", "other"}, 100, 50, early.Callback());
  store.Get(kJob, {"k"}, 100, 500, late.Callback());
  EXPECT_EQ(store.NextDeadline(), 150);
  store.Expire(149);
  EXPECT_FALSE(early.done());
  store.Expire(150);
  ASSERT_TRUE(early.done());
  EXPECT_EQ(early.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(early.value->status().message(), HasSubstr("'k'"));
  EXPECT_THAT(early.value->status().message(), HasSubstr("1 more"));
  EXPECT_FALSE(late.done());
  EXPECT_EQ(store.NextDeadline(), 600);
  // The expired waiter no longer watches its keys: setting them wakes only
  // the one still waiting.
  ASSERT_TRUE(store.Set(kJob, "k", "v").ok());
  ASSERT_TRUE(late.done());
  EXPECT_TRUE(late.value->ok());
  EXPECT_EQ(store.NextDeadline(), std::nullopt);
}

TEST(RendezvousStore, SetOverwrites) {
  Rendezvous store;
  ASSERT_TRUE(store.Set(kJob, "k", "old").ok());
  ASSERT_TRUE(store.Set(kJob, "k", "new-value").ok());
  GetResult r;
  store.Get(kJob, {"k"}, 0, 0, r.Callback());
  EXPECT_THAT(r.value->value(), ElementsAre("new-value"));
  EXPECT_EQ(store.total_bytes(), std::string("k").size() + std::string("new-value").size());
}

TEST(RendezvousStore, AddCountsAndWakesWaiters) {
  Rendezvous store;
  GetResult r;
  store.Get(kJob, {"n"}, 0, 1000, r.Callback());
  EXPECT_EQ(store.Add(kJob, "n", 2).value(), 2);
  ASSERT_TRUE(r.done());
  EXPECT_THAT(r.value->value(), ElementsAre("2"));
  EXPECT_EQ(store.Add(kJob, "n", -5).value(), -3);
  ASSERT_TRUE(store.Set(kJob, "text", "abc").ok());
  EXPECT_EQ(store.Add(kJob, "text", 1).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store.Set(kJob, "big", absl::StrCat(INT64_MAX)).ok());
  EXPECT_EQ(store.Add(kJob, "big", 1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(RendezvousStore, BarrierReleasesEveryPartyAndStartsOver) {
  Rendezvous store;
  DoneResult a, b, c;
  EXPECT_NE(store.Barrier(kJob, "b", 3, 0, 1000, a.Callback()), 0u);
  store.Barrier(kJob, "b", 3, 0, 1000, b.Callback());
  EXPECT_FALSE(a.done());
  EXPECT_FALSE(b.done());
  EXPECT_EQ(store.Barrier(kJob, "b", 3, 0, 1000, c.Callback()), 0u);
  ASSERT_TRUE(a.done() && b.done() && c.done());
  EXPECT_TRUE(a.status->ok() && b.status->ok() && c.status->ok());
  EXPECT_EQ(store.waiter_count(), 0u);

  // The next round with the same name, and now with a different count.
  DoneResult d, e;
  store.Barrier(kJob, "b", 2, 0, 1000, d.Callback());
  EXPECT_FALSE(d.done());
  store.Barrier(kJob, "b", 2, 0, 1000, e.Callback());
  EXPECT_TRUE(d.done() && e.done());

  DoneResult solo;
  store.Barrier(kJob, "one", 1, 0, 0, solo.Callback());
  EXPECT_TRUE(solo.done() && solo.status->ok());
}

TEST(RendezvousStore, BarrierCountMismatchIsInvalid) {
  Rendezvous store;
  DoneResult a, b;
  store.Barrier(kJob, "b", 3, 0, 1000, a.Callback());
  store.Barrier(kJob, "b", 4, 0, 1000, b.Callback());
  EXPECT_FALSE(a.done());
  EXPECT_EQ(b.code(), absl::StatusCode::kInvalidArgument);
}

TEST(RendezvousStore, BarrierPartyThatTimesOutLeaves) {
  Rendezvous store;
  DoneResult a, b, c;
  store.Barrier(kJob, "b", 2, 0, 10, a.Callback());
  store.Expire(10);
  EXPECT_EQ(a.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(a.status->message(), HasSubstr("1 of 2"));
  // a left, so b alone does not complete the barrier; c does.
  store.Barrier(kJob, "b", 2, 20, 100, b.Callback());
  EXPECT_FALSE(b.done());
  store.Barrier(kJob, "b", 2, 20, 100, c.Callback());
  EXPECT_TRUE(b.done() && b.status->ok());
  EXPECT_TRUE(c.done() && c.status->ok());

  DoneResult nowait;
  store.Barrier(kJob, "c", 2, 0, 0, nowait.Callback());
  EXPECT_EQ(nowait.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store.waiter_count(), 0u);
}

TEST(RendezvousStore, ScopesIsolateJobsAndAttempts) {
  Rendezvous store;
  const RdzvScopeId attempt2{"job-1", 2};
  const RdzvScopeId other{"job-2", 1};
  ASSERT_TRUE(store.Set(kJob, "nccl/unique_id", "old").ok());
  GetResult r2, rother;
  store.Get(attempt2, {"nccl/unique_id"}, 0, 0, r2.Callback());
  EXPECT_EQ(r2.code(), absl::StatusCode::kNotFound) << "a restarted gang sees no stale keys";
  store.Get(other, {"nccl/unique_id"}, 0, 1000, rother.Callback());
  EXPECT_FALSE(rother.done());
  ASSERT_TRUE(store.Set(attempt2, "nccl/unique_id", "new").ok());
  EXPECT_FALSE(rother.done());
  EXPECT_EQ(store.Add(kJob, "n", 1).value(), 1);
  EXPECT_EQ(store.Add(attempt2, "n", 1).value(), 1);
  EXPECT_EQ(store.scope_count(), 3u);
}

TEST(RendezvousStore, ClearJobDropsItsScopesAndCancelsItsWaiters) {
  Rendezvous store;
  const RdzvScopeId attempt2{"job-1", 2};
  const RdzvScopeId other{"job-10", 1};  // shares a prefix with job-1
  ASSERT_TRUE(store.Set(kJob, "k", "v").ok());
  ASSERT_TRUE(store.Set(other, "k", "v").ok());
  GetResult waiting, other_waiting;
  DoneResult barrier;
  store.Get(attempt2, {"never"}, 0, 1000, waiting.Callback());
  store.Barrier(attempt2, "b", 2, 0, 1000, barrier.Callback());
  store.Get(other, {"later"}, 0, 1000, other_waiting.Callback());

  store.ClearJob("job-1");
  EXPECT_EQ(waiting.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(barrier.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(other_waiting.done());
  EXPECT_EQ(store.scope_count(), 1u);
  EXPECT_EQ(store.waiter_count(), 1u);
  EXPECT_EQ(store.total_bytes(), 2u) << "only job-10's key is left";
  GetResult gone;
  store.Get(kJob, {"k"}, 0, 0, gone.Callback());
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  store.ClearJob("no-such-job");
  EXPECT_EQ(store.scope_count(), 1u);
}

TEST(RendezvousStore, ClearAttemptsBeforeKeepsTheCurrentAttempt) {
  Rendezvous store;
  for (int a = 1; a <= 3; ++a) ASSERT_TRUE(store.Set({"job-1", a}, "k", "v").ok());
  GetResult old_waiter;
  store.Get({"job-1", 2}, {"x"}, 0, 1000, old_waiter.Callback());
  store.ClearAttemptsBefore("job-1", 3);
  EXPECT_EQ(old_waiter.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(store.scope_count(), 1u);
  GetResult kept;
  store.Get({"job-1", 3}, {"k"}, 0, 0, kept.Callback());
  EXPECT_TRUE(kept.value->ok());
}

TEST(RendezvousStore, CancelWaitEndsOneCall) {
  Rendezvous store;
  GetResult a, b;
  const Rendezvous::WaitId id = store.Get(kJob, {"k"}, 0, 1000, a.Callback());
  store.Get(kJob, {"k"}, 0, 1000, b.Callback());
  store.CancelWait(id);
  EXPECT_EQ(a.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(b.done());
  store.CancelWait(id);  // already gone: ignored
  store.CancelWait(12345);
  ASSERT_TRUE(store.Set(kJob, "k", "v").ok());
  EXPECT_TRUE(b.value->ok());
}

TEST(RendezvousStore, CallbacksMayCallBackIntoTheStore) {
  Rendezvous store;
  std::optional<absl::StatusOr<std::vector<std::string>>> second;
  store.Get(kJob, {"first"}, 0, 1000, [&](absl::StatusOr<std::vector<std::string>> v) {
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE(store.Set(kJob, "second", (*v)[0] + "!").ok());
  });
  store.Get(kJob, {"second"}, 0, 1000,
            [&](absl::StatusOr<std::vector<std::string>> v) { second = std::move(v); });
  ASSERT_TRUE(store.Set(kJob, "first", "hi").ok());
  ASSERT_TRUE(second.has_value());
  EXPECT_THAT(second->value(), ElementsAre("hi!"));
}

TEST(RendezvousStore, BadInputIsInvalidArgument) {
  Rendezvous store;
  auto code = [](const absl::Status& s) { return s.code(); };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(store.Set(kJob, "", "v")), kInvalid);
  EXPECT_EQ(code(store.Set(kJob, std::string(1025, 'k'), "v")), kInvalid);
  EXPECT_TRUE(store.Set(kJob, std::string(1024, 'k'), "v").ok());
  EXPECT_EQ(code(store.Set(kJob, "k", std::string((1 << 20) + 1, 'v'))), kInvalid);
  EXPECT_TRUE(store.Set(kJob, "k", std::string(1 << 20, 'v')).ok());
  EXPECT_EQ(code(store.Set({"", 1}, "k", "v")), kInvalid);
  EXPECT_EQ(code(store.Set({"job", -1}, "k", "v")), kInvalid);
  EXPECT_EQ(code(store.Set({std::string(257, 'j'), 1}, "k", "v")), kInvalid);
  GetResult neg, huge, empty_key;
  store.Get(kJob, {"k"}, 0, -1, neg.Callback());
  EXPECT_EQ(neg.code(), kInvalid);
  store.Get(kJob, {"k"}, 0, int64_t{7} * 3600 * 1000, huge.Callback());
  EXPECT_EQ(huge.code(), kInvalid);
  store.Get(kJob, {"k", ""}, 0, 10, empty_key.Callback());
  EXPECT_EQ(empty_key.code(), kInvalid);
  DoneResult zero, negative;
  store.Barrier(kJob, "b", 0, 0, 10, zero.Callback());
  EXPECT_EQ(zero.code(), kInvalid);
  store.Barrier(kJob, "b", -3, 0, 10, negative.Callback());
  EXPECT_EQ(negative.code(), kInvalid);
  EXPECT_EQ(store.waiter_count(), 0u);
}

TEST(RendezvousStore, FullStoreIsResourceExhausted) {
  RendezvousLimits limits;
  limits.max_keys_per_scope = 3;
  limits.max_scopes = 2;
  limits.max_waiters = 2;
  limits.max_scope_bytes = 100;
  limits.max_total_bytes = 150;
  Rendezvous store(limits);
  const auto kFull = absl::StatusCode::kResourceExhausted;
  ASSERT_TRUE(store.Set(kJob, "a", "1").ok());
  ASSERT_TRUE(store.Set(kJob, "b", "1").ok());
  ASSERT_TRUE(store.Set(kJob, "c", "1").ok());
  EXPECT_EQ(store.Set(kJob, "d", "1").code(), kFull);
  EXPECT_TRUE(store.Set(kJob, "a", "overwrite is not a new key").ok());
  EXPECT_EQ(store.Add(kJob, "e", 1).status().code(), kFull);
  DoneResult barrier;
  store.Barrier(kJob, "new-barrier", 2, 0, 10, barrier.Callback());
  EXPECT_EQ(barrier.code(), kFull) << "barriers count as keys";

  EXPECT_EQ(store.Set(kJob, "a", std::string(100, 'x')).code(), kFull) << "scope bytes";
  ASSERT_TRUE(store.Set({"job-2", 1}, "k", std::string(90, 'x')).ok());
  EXPECT_EQ(store.Set({"job-2", 1}, "k2", std::string(80, 'x')).code(), kFull) << "total bytes";
  EXPECT_EQ(store.Set({"job-3", 1}, "k", "v").code(), kFull) << "scopes";

  GetResult w1, w2, w3;
  store.Get(kJob, {"x"}, 0, 100, w1.Callback());
  store.Get(kJob, {"x"}, 0, 100, w2.Callback());
  store.Get(kJob, {"x"}, 0, 100, w3.Callback());
  EXPECT_FALSE(w1.done());
  EXPECT_FALSE(w2.done());
  EXPECT_EQ(w3.code(), kFull) << "waiters";

  // Space comes back when a job ends.
  store.ClearJob("job-2");
  EXPECT_TRUE(store.Set({"job-3", 1}, "k", "v").ok());
}

// ---------------------------------------------------------------------------
// The service over a real gRPC server on 127.0.0.1:0

class RendezvousServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service_ = std::make_unique<RendezvousService>(io_, store_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);
    loop_ = std::thread([this] { io_.run(); });
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    // The order the service's header asks for: server first, loop still
    // running so cancellations reach the store; then the loop.
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 2s);
    work_.reset();
    io_.stop();
    if (loop_.joinable()) loop_.join();
  }

  std::unique_ptr<gpu::RendezvousClient> Client(int rank, int world,
                                                const std::string& job = "job-1", int attempt = 1) {
    gpu::RendezvousConfig config;
    config.endpoint = absl::StrCat("127.0.0.1:", port_);
    config.job_id = job;
    config.attempt = attempt;
    config.rank = rank;
    config.world_size = world;
    auto c = gpu::RendezvousClient::Create(config, channel_);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  // Runs `fn` on the loop thread (which owns the store) and returns its
  // result.
  template <typename Fn>
  auto OnLoop(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto future = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    EXPECT_EQ(future.wait_for(10s), std::future_status::ready);
    return future.get();
  }

  // Polls the loop until `pred(store)` holds, for at most `timeout`.
  template <typename Pred>
  bool LoopEventually(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (OnLoop([&] { return pred(store_); })) return true;
      std::this_thread::sleep_for(2ms);  // poll interval
    }
    return OnLoop([&] { return pred(store_); });
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  Rendezvous store_;
  std::unique_ptr<RendezvousService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::thread loop_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(RendezvousServiceTest, SetGetAddBarrierOverGrpc) {
  auto c = Client(0, 1);
  ASSERT_TRUE(c->Set("k", "v").ok());
  EXPECT_EQ(c->Get("k", 1s).value(), "v");
  EXPECT_EQ(c->TryGet("missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c->Add("n", 5).value(), 5);
  EXPECT_EQ(c->Add("n", 1).value(), 6);
  EXPECT_EQ(c->GetAll({"k", "n"}, 1s).value(), (std::vector<std::string>{"v", "6"}));
  EXPECT_TRUE(c->Barrier("alone", 1s).ok());
  absl::Status bad = c->Set("", "v");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("rendezvous set ''"));
}

TEST_F(RendezvousServiceTest, GetTimesOutOnTheServersTimer) {
  auto c = Client(1, 2);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> v = c->Get("never", 100ms);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(v.status().message(), HasSubstr("'never'"));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_TRUE(LoopEventually([](const Rendezvous& s) { return s.waiter_count() == 0; }, 5s));
}

TEST_F(RendezvousServiceTest, SixtyFourRanksGetRankZerosId) {
  constexpr int kRanks = 64;
  std::vector<absl::StatusOr<std::string>> got(kRanks, absl::UnknownError("not run"));
  std::atomic<int> created{0};
  {
    std::vector<std::jthread> ranks;
    for (int r = 0; r < kRanks; ++r) {
      ranks.emplace_back([&, r] {
        auto c = Client(r, kRanks);
        got[r] = gpu::ExchangeBlob(
            *c, "nccl/unique_id",
            [&]() -> absl::StatusOr<std::string> {
              ++created;
              return std::string("id-of-attempt-1");
            },
            20s);
      });
    }
  }
  EXPECT_EQ(created.load(), 1);
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_TRUE(got[r].ok()) << "rank " << r << ": " << got[r].status();
    EXPECT_EQ(*got[r], "id-of-attempt-1");
  }
  EXPECT_EQ(OnLoop([this] { return store_.waiter_count(); }), 0u);
}

TEST_F(RendezvousServiceTest, BarrierAcrossThreads) {
  constexpr int kRanks = 16;
  std::vector<absl::Status> results(kRanks);
  std::atomic<int> arrived{0};
  std::atomic<int> passed_before_all{0};
  {
    std::vector<std::jthread> ranks;
    for (int r = 0; r < kRanks; ++r) {
      ranks.emplace_back([&, r] {
        auto c = Client(r, kRanks);
        ++arrived;
        results[r] = c->Barrier("start", 20s);
        if (arrived.load() < kRanks) ++passed_before_all;
      });
    }
  }
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(passed_before_all.load(), 0);
}

TEST_F(RendezvousServiceTest, RestartedAttemptWaitsForItsOwnId) {
  auto old_rank0 = Client(0, 2, "job-1", 1);
  ASSERT_TRUE(old_rank0->Set("nccl/unique_id", "stale").ok());
  auto new_rank1 = Client(1, 2, "job-1", 2);
  auto new_rank0 = Client(0, 2, "job-1", 2);
  std::future<absl::StatusOr<std::string>> waiting =
      std::async(std::launch::async, [&] { return new_rank1->Get("nccl/unique_id", 20s); });
  ASSERT_TRUE(LoopEventually([](const Rendezvous& s) { return s.waiter_count() == 1; }, 5s));
  ASSERT_TRUE(new_rank0->Set("nccl/unique_id", "fresh").ok());
  ASSERT_EQ(waiting.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(waiting.get().value(), "fresh");
}

TEST_F(RendezvousServiceTest, ClearJobCancelsRemoteWaiters) {
  auto c = Client(1, 2);
  std::future<absl::StatusOr<std::string>> waiting =
      std::async(std::launch::async, [&] { return c->Get("never", 20s); });
  ASSERT_TRUE(LoopEventually([](const Rendezvous& s) { return s.waiter_count() == 1; }, 5s));
  OnLoop([this] {
    store_.ClearJob("job-1");
    return true;
  });
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(waiting.get().status().code(), absl::StatusCode::kCancelled);
}

TEST_F(RendezvousServiceTest, ClientThatGivesUpLeavesNoWaiter) {
  auto stub = v1::Rendezvous::NewStub(channel_);
  v1::RdzvGetRequest req;
  req.mutable_scope()->set_job_id("job-1");
  req.mutable_scope()->set_attempt(1);
  req.add_keys("never");
  req.set_timeout_ms(60'000);
  v1::RdzvGetResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
  grpc::Status s = stub->Get(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(LoopEventually([](const Rendezvous& st) { return st.waiter_count() == 0; }, 5s))
      << "the cancelled call must leave the store";
}

TEST_F(RendezvousServiceTest, ShutdownEndsWaitingCalls) {
  auto c = Client(1, 2);
  std::future<absl::StatusOr<std::string>> waiting =
      std::async(std::launch::async, [&] { return c->Get("never", 60s); });
  ASSERT_TRUE(LoopEventually([](const Rendezvous& s) { return s.waiter_count() == 1; }, 5s));
  const auto start = std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + 1s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(waiting.get().ok());
}

// ---------------------------------------------------------------------------
// The client's environment and NCCL's id

TEST(RendezvousClientEnv, ReadsARanksEnvironment) {
  std::map<std::string, std::string> env = {{"GANGWAY_RDZV", "10.0.0.1:7070"},
                                            {"GANGWAY_JOB", "j-42"},
                                            {"GANGWAY_ATTEMPT", "3"},
                                            {"RANK", "5"},
                                            {"WORLD_SIZE", "8"}};
  auto lookup = [&env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  absl::StatusOr<gpu::RendezvousConfig> c = gpu::RendezvousConfigFromEnv(lookup);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->endpoint, "10.0.0.1:7070");
  EXPECT_EQ(c->job_id, "j-42");
  EXPECT_EQ(c->attempt, 3);
  EXPECT_EQ(c->rank, 5);
  EXPECT_EQ(c->world_size, 8);

  for (const char* name :
       {"GANGWAY_RDZV", "GANGWAY_JOB", "GANGWAY_ATTEMPT", "RANK", "WORLD_SIZE"}) {
    auto without = env;
    without.erase(name);
    auto lookup_without = [&without](const std::string& n) -> std::optional<std::string> {
      auto it = without.find(n);
      if (it == without.end()) return std::nullopt;
      return it->second;
    };
    absl::StatusOr<gpu::RendezvousConfig> missing = gpu::RendezvousConfigFromEnv(lookup_without);
    EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(missing.status().message(), HasSubstr(name));
  }
  env["RANK"] = "8";
  EXPECT_THAT(gpu::RendezvousConfigFromEnv(lookup).status().message(), HasSubstr("RANK=8"));
  env["RANK"] = "x";
  EXPECT_THAT(gpu::RendezvousConfigFromEnv(lookup).status().message(), HasSubstr("RANK='x'"));
}

TEST_F(RendezvousServiceTest, NcclIdExchangeWithAFakeCreator) {
  gpu::NcclUniqueIdBytes id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<char>(i * 7);
  auto rank0 = Client(0, 2);
  auto rank1 = Client(1, 2);
  std::future<absl::StatusOr<gpu::NcclUniqueIdBytes>> waiting =
      std::async(std::launch::async, [&] { return gpu::ExchangeNcclUniqueId(*rank1, 20s); });
  absl::StatusOr<gpu::NcclUniqueIdBytes> mine =
      gpu::ExchangeNcclUniqueId(*rank0, 20s, gpu::kNcclUniqueIdKey,
                                [&]() -> absl::StatusOr<gpu::NcclUniqueIdBytes> { return id; });
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_EQ(waiting.wait_for(20s), std::future_status::ready);
  absl::StatusOr<gpu::NcclUniqueIdBytes> theirs = waiting.get();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_EQ(*theirs, id);
  EXPECT_EQ(*mine, id);

  // A value of the wrong size is not taken for an id.
  ASSERT_TRUE(rank0->Set("nccl/bad", "short").ok());
  EXPECT_EQ(gpu::ExchangeNcclUniqueId(*rank1, 1s, "nccl/bad").status().code(),
            absl::StatusCode::kDataLoss);
  // A creator's failure reaches rank 0's caller; nothing is published.
  absl::StatusOr<gpu::NcclUniqueIdBytes> failed = gpu::ExchangeNcclUniqueId(
      *rank0, 1s, "nccl/failed", []() -> absl::StatusOr<gpu::NcclUniqueIdBytes> {
        return absl::FailedPreconditionError("no NCCL here");
      });
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rank1->TryGet("nccl/failed").status().code(), absl::StatusCode::kNotFound);
}

// The real ncclGetUniqueId through dlopen; skipped where NCCL is missing or
// cannot create an id (no network interface it accepts).
TEST(RendezvousNccl, RealUniqueIdWhereNcclIsInstalled) {
  absl::StatusOr<gpu::NcclUniqueIdBytes> a = gpu::CreateNcclUniqueId();
  if (!a.ok()) GTEST_SKIP() << a.status();
  absl::StatusOr<gpu::NcclUniqueIdBytes> b = gpu::CreateNcclUniqueId();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(*a, *b) << "every call makes a new id";
}

// Rank 0 creates a real id with the default creator (ncclGetUniqueId from
// libnccl.so.2; no GPU needed) and rank 1 receives the same 128 bytes.
TEST_F(RendezvousServiceTest, RealNcclIdReachesRankOne) {
  auto rank0 = Client(0, 2);
  auto rank1 = Client(1, 2);
  std::future<absl::StatusOr<gpu::NcclUniqueIdBytes>> waiting =
      std::async(std::launch::async, [&] { return gpu::ExchangeNcclUniqueId(*rank1, 20s); });
  ASSERT_TRUE(LoopEventually([](const Rendezvous& s) { return s.waiter_count() == 1; }, 5s))
      << "rank 1 waits before rank 0 publishes";
  absl::StatusOr<gpu::NcclUniqueIdBytes> mine = gpu::ExchangeNcclUniqueId(*rank0, 20s);
  if (mine.status().code() == absl::StatusCode::kFailedPrecondition) {
    // No NCCL here and nothing was published: end rank 1's wait, then skip.
    OnLoop([this] {
      store_.ClearJob("job-1");
      return true;
    });
    EXPECT_EQ(waiting.wait_for(10s), std::future_status::ready);
    GTEST_SKIP() << mine.status();
  }
  ASSERT_TRUE(mine.ok()) << mine.status();
  ASSERT_EQ(waiting.wait_for(20s), std::future_status::ready);
  absl::StatusOr<gpu::NcclUniqueIdBytes> theirs = waiting.get();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_EQ(*theirs, *mine);
  EXPECT_NE(*mine, gpu::NcclUniqueIdBytes{}) << "an id of zeros was never created";
}

// ---------------------------------------------------------------------------
// Gloo over the rendezvous: four ranks (threads) connect a full mesh through
// GlooStore and all-reduce.

#ifdef GANGWAY_HAVE_GLOO
TEST_F(RendezvousServiceTest, GlooAllreduceAmongFourRanks) {
  constexpr int kRanks = 4;
  constexpr size_t kCount = 1000;
  std::vector<std::vector<float>> data(kRanks);
  std::vector<std::string> errors(kRanks);
  {
    std::vector<std::jthread> ranks;
    for (int r = 0; r < kRanks; ++r) {
      ranks.emplace_back([&, r] {
        auto client = Client(r, kRanks);
        try {
          gpu::GlooStore store(*client, "gloo/", 20s);
          gloo::transport::tcp::attr attr;
          attr.hostname = "127.0.0.1";
          auto device = gloo::transport::tcp::CreateDevice(attr);
          auto context = std::make_shared<gloo::rendezvous::Context>(r, kRanks);
          context->setTimeout(20s);
          context->connectFullMesh(store, device);
          data[r].resize(kCount);
          for (size_t i = 0; i < kCount; ++i) data[r][i] = static_cast<float>(r * 1000 + i);
          gloo::AllreduceOptions opts(context);
          opts.setOutput(data[r].data(), kCount);
          opts.setReduceFunction(
              static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
          gloo::allreduce(opts);
        } catch (const std::exception& e) {
          errors[r] = e.what();
        }
      });
    }
  }
  for (int r = 0; r < kRanks; ++r) {
    ASSERT_EQ(errors[r], "") << "rank " << r;
    for (size_t i = 0; i < kCount; ++i) {
      // sum over r of (r * 1000 + i) = 6000 + 4i
      ASSERT_EQ(data[r][i], static_cast<float>(6000 + 4 * i)) << "rank " << r << " element " << i;
    }
  }
}

TEST_F(RendezvousServiceTest, GlooStoreThrowsWhenAKeyNeverComes) {
  auto client = Client(0, 2);
  gpu::GlooStore store(*client, "gloo/", 100ms);
  store.set("present", {'a', 'b'});
  EXPECT_EQ(store.get("present"), (std::vector<char>{'a', 'b'}));
  EXPECT_EQ(client->Get("gloo/present", 1s).value(), "ab") << "keys live under the prefix";
  EXPECT_THROW(store.get("absent"), gloo::IoException);
  EXPECT_THROW(store.wait({"absent"}, 50ms), gloo::IoException);
  EXPECT_NO_THROW(store.wait({"present"}, std::chrono::milliseconds(0)));
}
#endif

}  // namespace
}  // namespace gangway::coordinator
