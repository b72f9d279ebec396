#include "coordinator/rendezvous.h"

#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace gangway::coordinator {
namespace {

std::string Describe(const RdzvScopeId& scope) {
  return absl::StrCat("job ", scope.job_id, " attempt ", scope.attempt);
}

}  // namespace

Rendezvous::Rendezvous(RendezvousLimits limits) : limits_(limits) {}

Rendezvous::~Rendezvous() = default;

// ---------------------------------------------------------------------------
// Checks

absl::Status Rendezvous::CheckScope(const RdzvScopeId& scope) const {
  if (scope.job_id.empty()) return absl::InvalidArgumentError("rendezvous scope needs a job_id");
  if (scope.job_id.size() > limits_.max_job_id_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous job_id is longer than ", limits_.max_job_id_bytes, " bytes"));
  }
  if (scope.attempt < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous attempt must be >= 0, got ", scope.attempt));
  }
  return absl::OkStatus();
}

absl::Status Rendezvous::CheckKey(absl::string_view what, absl::string_view key) const {
  if (key.empty())
    return absl::InvalidArgumentError(absl::StrCat("rendezvous ", what, " is empty"));
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("rendezvous ", what, " is ", key.size(),
                                                   " bytes; the limit is ", limits_.max_key_bytes));
  }
  return absl::OkStatus();
}

absl::Status Rendezvous::CheckTimeout(int64_t timeout_ms) const {
  if (timeout_ms < 0 || timeout_ms > limits_.max_timeout_ms) {
    return absl::InvalidArgumentError(absl::StrCat("rendezvous timeout_ms must be in [0, ",
                                                   limits_.max_timeout_ms, "], got ", timeout_ms));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Scopes and waiters

Rendezvous::Scope* Rendezvous::Find(const RdzvScopeId& scope) {
  auto it = scopes_.find(scope);
  return it == scopes_.end() ? nullptr : &it->second;
}

absl::StatusOr<Rendezvous::Scope*> Rendezvous::FindOrCreate(const RdzvScopeId& scope) {
  if (Scope* found = Find(scope)) return found;
  if (scopes_.size() >= limits_.max_scopes) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous holds ", scopes_.size(),
                                                     " job attempts, its limit; ", Describe(scope),
                                                     " cannot start one until a job ends"));
  }
  auto [it, inserted] = scopes_.try_emplace(scope);
  it->second.id = scope;
  return &it->second;
}

Rendezvous::WaitId Rendezvous::AddWaiter(Scope& scope, Waiter waiter) {
  const WaitId id = next_wait_++;
  deadlines_.emplace(waiter.deadline_ms, id);
  scope.waiters.insert(id);
  waiter.scope = &scope;
  waiters_.emplace(id, std::move(waiter));
  return id;
}

Rendezvous::Waiter Rendezvous::TakeWaiter(WaitId id) {
  auto node = waiters_.extract(id);
  Waiter w = std::move(node.mapped());
  deadlines_.erase({w.deadline_ms, id});
  Scope& scope = *w.scope;
  scope.waiters.erase(id);
  if (w.get_done) {
    for (const std::string& key : w.keys) {
      auto it = scope.watchers.find(key);
      if (it == scope.watchers.end()) continue;
      it->second.erase(id);
      if (it->second.empty()) scope.watchers.erase(it);
    }
  } else if (auto it = scope.barriers.find(w.barrier); it != scope.barriers.end()) {
    std::erase(it->second.arrived, id);
    // An empty barrier is forgotten, so it no longer counts as a key and a
    // later round may choose another count.
    if (it->second.arrived.empty()) scope.barriers.erase(it);
  }
  return w;
}

void Rendezvous::Run(std::vector<Completion>& done) {
  for (Completion& c : done) {
    if (c.waiter.get_done) {
      if (c.status.ok()) {
        c.waiter.get_done(std::move(c.values));
      } else {
        c.waiter.get_done(c.status);
      }
    } else {
      c.waiter.barrier_done(c.status);
    }
  }
  done.clear();
}

void Rendezvous::DropScope(std::map<RdzvScopeId, Scope>::iterator it,
                           std::vector<Completion>& done) {
  Scope& scope = it->second;
  const absl::Status why = absl::CancelledError(
      absl::StrCat("rendezvous of ", Describe(scope.id), " was cleared: the attempt ended"));
  const std::vector<WaitId> ids(scope.waiters.begin(), scope.waiters.end());
  for (WaitId id : ids) done.push_back({TakeWaiter(id), why, {}});
  total_bytes_ -= scope.bytes;
  scopes_.erase(it);
}

// ---------------------------------------------------------------------------
// Operations

absl::Status Rendezvous::Put(Scope& scope, const std::string& key, std::string value,
                             std::vector<Completion>& done) {
  auto it = scope.values.find(key);
  const size_t old_bytes = it == scope.values.end() ? 0 : key.size() + it->second.size();
  const size_t new_bytes = key.size() + value.size();
  if (it == scope.values.end() &&
      scope.values.size() + scope.barriers.size() >= limits_.max_keys_per_scope) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous of ", Describe(scope.id),
                                                     " holds ", limits_.max_keys_per_scope,
                                                     " keys, its limit"));
  }
  if (scope.bytes - old_bytes + new_bytes > limits_.max_scope_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("rendezvous of ", Describe(scope.id),
                                                     " would exceed its ", limits_.max_scope_bytes,
                                                     " bytes"));
  }
  if (total_bytes_ - old_bytes + new_bytes > limits_.max_total_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("rendezvous store would exceed its ", limits_.max_total_bytes, " bytes"));
  }
  scope.bytes = scope.bytes - old_bytes + new_bytes;
  total_bytes_ = total_bytes_ - old_bytes + new_bytes;
  if (it == scope.values.end()) {
    scope.values.emplace(key, std::move(value));
  } else {
    it->second = std::move(value);
  }

  auto watch = scope.watchers.find(key);
  if (watch == scope.watchers.end()) return absl::OkStatus();
  const std::set<WaitId> ids = std::move(watch->second);
  scope.watchers.erase(watch);
  for (WaitId id : ids) {
    Waiter& w = waiters_.at(id);
    if (--w.missing > 0) continue;
    std::vector<std::string> values;
    values.reserve(w.keys.size());
    for (const std::string& k : w.keys) values.push_back(scope.values.at(k));
    done.push_back({TakeWaiter(id), absl::OkStatus(), std::move(values)});
  }
  return absl::OkStatus();
}

absl::Status Rendezvous::Set(const RdzvScopeId& scope, std::string key, std::string value) {
  if (absl::Status s = CheckScope(scope); !s.ok()) return s;
  if (absl::Status s = CheckKey("key", key); !s.ok()) return s;
  if (value.size() > limits_.max_value_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("rendezvous value of '", key, "' is ",
                                                   value.size(), " bytes; the limit is ",
                                                   limits_.max_value_bytes));
  }
  absl::StatusOr<Scope*> found = FindOrCreate(scope);
  if (!found.ok()) return found.status();
  std::vector<Completion> done;
  absl::Status s = Put(**found, key, std::move(value), done);
  Run(done);
  return s;
}

Rendezvous::WaitId Rendezvous::Get(const RdzvScopeId& scope, std::vector<std::string> keys,
                                   int64_t now_ms, int64_t timeout_ms, GetCallback done) {
  absl::Status s = CheckScope(scope);
  if (s.ok()) s = CheckTimeout(timeout_ms);
  if (s.ok() && keys.size() > limits_.max_keys_per_get) {
    s = absl::InvalidArgumentError(absl::StrCat("rendezvous get of ", keys.size(),
                                                " keys; the limit is ", limits_.max_keys_per_get));
  }
  for (size_t i = 0; s.ok() && i < keys.size(); ++i) s = CheckKey("key", keys[i]);
  if (!s.ok()) {
    done(s);
    return 0;
  }

  Scope* found = Find(scope);
  std::set<absl::string_view> missing;
  for (const std::string& key : keys) {
    if (found == nullptr || !found->values.contains(key)) missing.insert(key);
  }
  if (missing.empty()) {
    std::vector<std::string> values;
    values.reserve(keys.size());
    for (const std::string& key : keys) values.push_back(found->values.at(key));
    done(std::move(values));
    return 0;
  }
  if (timeout_ms == 0) {
    done(absl::NotFoundError(
        absl::StrCat("rendezvous key '", *missing.begin(), "' is not set in ", Describe(scope))));
    return 0;
  }
  if (waiters_.size() >= limits_.max_waiters) {
    done(absl::ResourceExhaustedError(
        absl::StrCat("rendezvous has ", waiters_.size(), " waiting calls, its limit")));
    return 0;
  }
  absl::StatusOr<Scope*> created = FindOrCreate(scope);
  if (!created.ok()) {
    done(created.status());
    return 0;
  }
  Scope& sc = **created;
  Waiter w;
  w.deadline_ms = now_ms + timeout_ms;
  w.timeout_ms = timeout_ms;
  w.missing = missing.size();
  w.get_done = std::move(done);
  // The watch list takes copies of the key names before `keys` moves into
  // the waiter, which `missing` points into.
  std::vector<std::string> watch;
  watch.reserve(missing.size());
  for (absl::string_view key : missing) watch.emplace_back(key);
  w.keys = std::move(keys);
  const WaitId id = AddWaiter(sc, std::move(w));
  for (std::string& key : watch) sc.watchers[std::move(key)].insert(id);
  return id;
}

absl::StatusOr<int64_t> Rendezvous::Add(const RdzvScopeId& scope, const std::string& key,
                                        int64_t delta) {
  if (absl::Status s = CheckScope(scope); !s.ok()) return s;
  if (absl::Status s = CheckKey("key", key); !s.ok()) return s;
  absl::StatusOr<Scope*> found = FindOrCreate(scope);
  if (!found.ok()) return found.status();
  Scope& sc = **found;
  int64_t current = 0;
  if (auto it = sc.values.find(key); it != sc.values.end()) {
    if (!absl::SimpleAtoi(it->second, &current)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rendezvous key '", key, "' holds a value that is not an integer; Add needs one"));
    }
  }
  int64_t sum = 0;
  if (__builtin_add_overflow(current, delta, &sum)) {
    return absl::OutOfRangeError(
        absl::StrCat("rendezvous counter '", key, "' would overflow: ", current, " + ", delta));
  }
  std::vector<Completion> done;
  absl::Status s = Put(sc, key, absl::StrCat(sum), done);
  Run(done);
  if (!s.ok()) return s;
  return sum;
}

Rendezvous::WaitId Rendezvous::Barrier(const RdzvScopeId& scope, std::string name, int32_t count,
                                       int64_t now_ms, int64_t timeout_ms, DoneCallback done) {
  absl::Status s = CheckScope(scope);
  if (s.ok()) s = CheckKey("barrier name", name);
  if (s.ok()) s = CheckTimeout(timeout_ms);
  if (s.ok() && (count < 1 || count > limits_.max_barrier_count)) {
    s = absl::InvalidArgumentError(
        absl::StrCat("barrier count must be in [1, ", limits_.max_barrier_count, "], got ", count));
  }
  absl::StatusOr<Scope*> found = s.ok() ? FindOrCreate(scope) : s;
  if (!found.ok()) {
    done(found.status());
    return 0;
  }
  Scope& sc = **found;
  auto it = sc.barriers.find(name);
  if (it != sc.barriers.end() && it->second.count != count) {
    done(absl::InvalidArgumentError(absl::StrCat("barrier '", name, "' in ", Describe(scope),
                                                 " waits for ", it->second.count,
                                                 " parties; this call says ", count)));
    return 0;
  }
  const size_t arrived = it == sc.barriers.end() ? 0 : it->second.arrived.size();
  if (arrived + 1 >= static_cast<size_t>(count)) {
    // The last party: everyone goes, and the name is free for the next round.
    std::vector<Completion> released;
    if (it != sc.barriers.end()) {
      const std::vector<WaitId> ids = std::move(it->second.arrived);
      sc.barriers.erase(it);
      for (WaitId id : ids) released.push_back({TakeWaiter(id), absl::OkStatus(), {}});
    }
    Run(released);
    done(absl::OkStatus());
    return 0;
  }
  if (timeout_ms == 0) {
    done(absl::DeadlineExceededError(absl::StrCat("barrier '", name, "' in ", Describe(scope), ": ",
                                                  arrived + 1, " of ", count,
                                                  " parties arrived and the call did not wait")));
    return 0;
  }
  if (waiters_.size() >= limits_.max_waiters) {
    done(absl::ResourceExhaustedError(
        absl::StrCat("rendezvous has ", waiters_.size(), " waiting calls, its limit")));
    return 0;
  }
  if (it == sc.barriers.end()) {
    if (sc.values.size() + sc.barriers.size() >= limits_.max_keys_per_scope) {
      done(absl::ResourceExhaustedError(absl::StrCat("rendezvous of ", Describe(scope), " holds ",
                                                     limits_.max_keys_per_scope,
                                                     " keys and barriers, its limit")));
      return 0;
    }
    it = sc.barriers.emplace(name, BarrierState{count, {}}).first;
  }
  Waiter w;
  w.deadline_ms = now_ms + timeout_ms;
  w.timeout_ms = timeout_ms;
  w.barrier = std::move(name);
  w.barrier_done = std::move(done);
  const WaitId id = AddWaiter(sc, std::move(w));
  it->second.arrived.push_back(id);
  return id;
}

// ---------------------------------------------------------------------------
// Time and cancellation

void Rendezvous::Expire(int64_t now_ms) {
  std::vector<Completion> done;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    const WaitId id = deadlines_.begin()->second;
    const Waiter& w = waiters_.at(id);
    const Scope& scope = *w.scope;
    std::string why;
    if (w.get_done) {
      absl::string_view first;
      for (const std::string& key : w.keys) {
        if (!scope.values.contains(key)) {
          first = key;
          break;
        }
      }
      why = absl::StrCat("rendezvous key '", first, "' was not set within ", w.timeout_ms,
                         " ms in ", Describe(scope.id));
      if (w.missing > 1) absl::StrAppend(&why, " (", w.missing - 1, " more keys missing)");
    } else {
      const auto b = scope.barriers.find(w.barrier);
      const BarrierState* state = b == scope.barriers.end() ? nullptr : &b->second;
      why = absl::StrCat("barrier '", w.barrier, "' in ", Describe(scope.id), ": ",
                         state ? state->arrived.size() : 0, " of ", state ? state->count : 0,
                         " parties arrived within ", w.timeout_ms, " ms");
    }
    done.push_back({TakeWaiter(id), absl::DeadlineExceededError(why), {}});
  }
  Run(done);
}

std::optional<int64_t> Rendezvous::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

void Rendezvous::CancelWait(WaitId id) {
  if (!waiters_.contains(id)) return;
  std::vector<Completion> done;
  done.push_back({TakeWaiter(id), absl::CancelledError("rendezvous call cancelled"), {}});
  Run(done);
}

void Rendezvous::ClearJob(std::string_view job_id) { Clear(job_id, std::nullopt); }

void Rendezvous::ClearAttemptsBefore(std::string_view job_id, int32_t attempt) {
  Clear(job_id, attempt);
}

void Rendezvous::Clear(std::string_view job_id, std::optional<int32_t> below) {
  std::vector<Completion> done;
  auto it =
      scopes_.lower_bound(RdzvScopeId{std::string(job_id), std::numeric_limits<int32_t>::min()});
  while (it != scopes_.end() && it->first.job_id == job_id &&
         (!below || it->first.attempt < *below)) {
    DropScope(it++, done);
  }
  Run(done);
}

}  // namespace gangway::coordinator
