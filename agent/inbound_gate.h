// Backpressure on what the agent reads from the coordinator: the session
// thread reads messages and posts them to the loop; without a bound, a
// loop slower than the coordinator (a burst of launches, a slow disk)
// lets them pile up in memory without limit. The session thread asks the
// gate before each Read; while the loop holds too much, it stops reading,
// and gRPC's HTTP/2 flow control holds the rest on the coordinator's side.
//
// Hysteresis: once full, reading resumes only when the loop is down to
// half of both bounds, so the reader wakes once per half-queue rather than
// once per message.
//
// Threads: Admit and Added on the session thread, Handled on the loop,
// Stop and Counts from any.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace gangway::agent {

class InboundGate {
 public:
  // Both at least 1 (smaller values are raised to 1).
  InboundGate(int64_t max_messages, int64_t max_bytes)
      : max_messages_(std::max<int64_t>(1, max_messages)),
        max_bytes_(std::max<int64_t>(1, max_bytes)) {}

  enum class Admission {
    kRoom,      // below the bounds: read
    kDeadline,  // still full at `deadline`: the caller decides
    kStopped,
  };
  // Waits until the loop holds less than the bounds (after a stall: half
  // of them), `deadline` passes, or Stop.
  Admission Admit(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    const bool done = cv_.wait_until(lock, deadline, [this] { return stopped_ || Room(); });
    if (stopped_) return Admission::kStopped;
    return done ? Admission::kRoom : Admission::kDeadline;
  }

  // A message of `bytes` was posted to the loop.
  void Added(int64_t bytes) {
    std::lock_guard lock(mu_);
    ++messages_;
    bytes_ += bytes;
    peak_messages_ = std::max(peak_messages_, messages_);
    peak_bytes_ = std::max(peak_bytes_, bytes_);
    if (messages_ >= max_messages_ || bytes_ >= max_bytes_) full_ = true;
  }

  // The loop handled a message of `bytes`.
  void Handled(int64_t bytes) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      --messages_;
      bytes_ -= bytes;
      wake = full_ && Room();
    }
    if (wake) cv_.notify_all();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

  struct Counts {
    int64_t messages = 0;
    int64_t bytes = 0;
    int64_t peak_messages = 0;  // the most held at once
    int64_t peak_bytes = 0;
  };
  Counts counts() const {
    std::lock_guard lock(mu_);
    return {messages_, bytes_, peak_messages_, peak_bytes_};
  }

 private:
  // Under mu_.
  bool Room() {
    if (full_ && messages_ <= max_messages_ / 2 && bytes_ <= max_bytes_ / 2) full_ = false;
    return !full_ && messages_ < max_messages_ && bytes_ < max_bytes_;
  }

  const int64_t max_messages_;
  const int64_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int64_t messages_ = 0;
  int64_t bytes_ = 0;
  int64_t peak_messages_ = 0;
  int64_t peak_bytes_ = 0;
  bool full_ = false;
  bool stopped_ = false;
};

}  // namespace gangway::agent
