// Time as an injected dependency, so heartbeat timeouts, deadlines and
// backoff are tested by advancing a FakeClock instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace gangway::common {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. Wall time, because it is also what
  // people read in `gangway get`; only for timestamps shown and stored.
  virtual int64_t NowMs() const = 0;
  // Milliseconds on a clock that never steps (CLOCK_MONOTONIC): for every
  // duration that decides something (liveness, deadlines, backoff), so an
  // NTP step neither fails every node at once nor hides a dead one.
  virtual int64_t MonotonicMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t MonotonicMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// Thread-safe so a test thread may advance it while a loop thread reads it.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  int64_t MonotonicMs() const override { return mono_.load(); }
  // Time passes: both clocks move.
  void Advance(int64_t ms) {
    now_ += ms;
    mono_ += ms;
  }
  // The wall clock steps (NTP, an operator): the monotonic one does not.
  void Set(int64_t ms) { now_ = ms; }
  void JumpWall(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_{1'000'000};
};

}  // namespace gangway::common
