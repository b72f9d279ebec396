// The rendezvous key-value store that trainer ranks use to find each other
// (an NCCL unique id, Gloo's addresses, barriers), scoped by job and attempt
// so that a restarted gang never reads the keys of the attempt before it.
//
// A plain data structure: no gRPC, no threads, no clock. Every call that
// needs the time takes `now_ms` on one monotonic timeline chosen by the
// caller (the service uses the steady clock, tests pass numbers), so
// deadlines are tested without sleeping.
//
// Thread: one. The coordinator's loop thread owns it; RendezvousService posts
// every RPC onto that loop.
//
// Waiting calls (Get, Barrier) finish through a callback, which may run
// before the call returns (the keys are there, or the input is wrong), later
// from Set/Add/Barrier, from Expire once the deadline passed, or from
// ClearJob/CancelWait. Callbacks run after the store's state is consistent,
// so they may call back into the store.
//
// Limits (RendezvousLimits) are explicit: a bad request (empty or oversized
// key or value, negative timeout) is INVALID_ARGUMENT; a store that is full
// (too many keys, bytes, scopes or waiters) is RESOURCE_EXHAUSTED.
//
// Scopes live until ClearJob: the coordinator clears a job's scopes when the
// job ends (and ClearAttemptsBefore when it relaunches a gang), so memory is
// bounded by the live jobs, not by history. The store is not durable: like
// torchrun's TCPStore, a coordinator restart forgets it.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gangway::coordinator {

struct RendezvousLimits {
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 1 << 20;
  size_t max_job_id_bytes = 256;
  // Keys and barrier names together, per scope.
  size_t max_keys_per_scope = 100'000;
  // Keys plus values in one scope, and in the whole store: the per-key limits
  // alone would allow 100 GiB per scope.
  size_t max_scope_bytes = size_t{64} << 20;
  size_t max_total_bytes = size_t{1} << 30;
  size_t max_scopes = 10'000;
  // Pending Get and Barrier calls in the whole store; each holds an RPC open.
  size_t max_waiters = 100'000;
  // Keys one Get may ask for.
  size_t max_keys_per_get = 100'000;
  int32_t max_barrier_count = 1 << 20;
  // Longest wait one call may ask for; NCCL and Gloo setup on a slow cluster
  // can take many minutes, a day is clearly a mistake.
  int64_t max_timeout_ms = int64_t{6} * 3600 * 1000;
};

// job_id + attempt: GANGWAY_JOB and GANGWAY_ATTEMPT of the rank.
struct RdzvScopeId {
  std::string job_id;
  int32_t attempt = 0;
  auto operator<=>(const RdzvScopeId&) const = default;
};

class Rendezvous {
 public:
  // Values in the order of the keys asked for.
  using GetCallback = absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>>)>;
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;
  // Names a pending Get or Barrier for CancelWait; 0 when the call already
  // finished.
  using WaitId = uint64_t;

  explicit Rendezvous(RendezvousLimits limits = {});
  Rendezvous(const Rendezvous&) = delete;
  Rendezvous& operator=(const Rendezvous&) = delete;
  // Pending callbacks are dropped without being called: the owner is going
  // away together with whatever the callbacks would answer.
  ~Rendezvous();

  // Stores (or overwrites) `key` and completes the waiters it was the last
  // missing key of.
  absl::Status Set(const RdzvScopeId& scope, std::string key, std::string value);

  // Answers with the values of every key once all exist. With
  // timeout_ms == 0 it does not wait: a missing key is NOT_FOUND. Otherwise
  // it waits until now_ms + timeout_ms: DEADLINE_EXCEEDED names a key still
  // missing then.
  WaitId Get(const RdzvScopeId& scope, std::vector<std::string> keys, int64_t now_ms,
             int64_t timeout_ms, GetCallback done);

  // Adds `delta` to the integer stored at `key` (absent: 0) and returns the
  // sum. The value is stored as decimal text, so Get reads it and waiters on
  // the key wake up as for Set. A key that holds anything but an integer is
  // FAILED_PRECONDITION; overflow is OUT_OF_RANGE.
  absl::StatusOr<int64_t> Add(const RdzvScopeId& scope, const std::string& key, int64_t delta);

  // Finishes every party once `count` parties arrived at barrier `name`; the
  // barrier then starts over, so a name can be reused round after round.
  // Every party must give the same count (INVALID_ARGUMENT otherwise). A
  // party whose deadline passes first leaves the barrier with
  // DEADLINE_EXCEEDED; with timeout_ms == 0 only the last party succeeds.
  WaitId Barrier(const RdzvScopeId& scope, std::string name, int32_t count, int64_t now_ms,
                 int64_t timeout_ms, DoneCallback done);

  // Fails, with DEADLINE_EXCEEDED, every waiter whose deadline is <= now_ms.
  void Expire(int64_t now_ms);
  // The earliest pending deadline, for the owner's timer.
  std::optional<int64_t> NextDeadline() const;

  // Finishes a pending call with CANCELLED (its client went away). Unknown or
  // finished ids are ignored: the cancellation raced with the answer.
  void CancelWait(WaitId id);

  // Drops every scope of the job and fails its waiters with CANCELLED.
  void ClearJob(std::string_view job_id);
  // Drops the job's scopes of attempts below `attempt`: a relaunched gang's
  // old keys go, its own stay.
  void ClearAttemptsBefore(std::string_view job_id, int32_t attempt);

  size_t scope_count() const { return scopes_.size(); }
  size_t waiter_count() const { return waiters_.size(); }
  size_t total_bytes() const { return total_bytes_; }

 private:
  struct Scope;
  struct Waiter {
    Scope* scope = nullptr;
    int64_t deadline_ms = 0;
    int64_t timeout_ms = 0;  // for messages
    // Get: the keys asked for, in order, and how many distinct ones are
    // still missing.
    std::vector<std::string> keys;
    size_t missing = 0;
    GetCallback get_done;
    // Barrier.
    std::string barrier;
    DoneCallback barrier_done;
  };
  struct BarrierState {
    int32_t count = 0;
    std::vector<WaitId> arrived;
  };
  struct Scope {
    RdzvScopeId id;
    std::unordered_map<std::string, std::string> values;
    std::unordered_map<std::string, std::set<WaitId>> watchers;  // missing key -> Get waiters
    std::unordered_map<std::string, BarrierState> barriers;
    std::set<WaitId> waiters;
    size_t bytes = 0;
  };
  // A finished waiter and its result, whose callback runs once the store is
  // consistent again.
  struct Completion {
    Waiter waiter;
    absl::Status status;
    std::vector<std::string> values;  // Get, when status is OK
  };

  absl::Status CheckScope(const RdzvScopeId& scope) const;
  absl::Status CheckKey(absl::string_view what, absl::string_view key) const;
  absl::Status CheckTimeout(int64_t timeout_ms) const;
  absl::StatusOr<Scope*> FindOrCreate(const RdzvScopeId& scope);
  Scope* Find(const RdzvScopeId& scope);
  // Stores `value` at `key` within the byte and key limits and collects the
  // Get waiters it completed.
  absl::Status Put(Scope& scope, const std::string& key, std::string value,
                   std::vector<Completion>& done);
  WaitId AddWaiter(Scope& scope, Waiter waiter);
  // Removes the waiter from every index and returns it.
  Waiter TakeWaiter(WaitId id);
  // Drops the job's scopes, all or those of attempts below `below`.
  void Clear(std::string_view job_id, std::optional<int32_t> below);
  void DropScope(std::map<RdzvScopeId, Scope>::iterator it, std::vector<Completion>& done);
  static void Run(std::vector<Completion>& done);

  RendezvousLimits limits_;
  std::map<RdzvScopeId, Scope> scopes_;  // ordered: a job's scopes are one range
  std::unordered_map<WaitId, Waiter> waiters_;
  std::set<std::pair<int64_t, WaitId>> deadlines_;
  WaitId next_wait_ = 1;
  size_t total_bytes_ = 0;
};

}  // namespace gangway::coordinator
