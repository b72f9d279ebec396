// A rank's metric points as AgentMessages small enough to send: one
// RankMetrics message holding a burst of points (a rank printing a million
// lines) could pass gRPC's 4 MiB limit, and a refused message lost the
// trial's objective with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

// Most bytes of one metrics message, serialized: a quarter of gRPC's
// default limit, so a batch never comes near it.
inline constexpr size_t kMaxMetricsMessageBytes = 1 << 20;

// `points` in order, split into RankMetrics messages of at most `max_bytes`
// each (a point larger than that alone in its message). Empty for no points.
std::vector<v1::AgentMessage> MetricsMessages(const std::string& job_id, int32_t attempt,
                                              int32_t rank, std::vector<v1::MetricPoint> points,
                                              size_t max_bytes = kMaxMetricsMessageBytes);

// Metrics messages sent but not yet acknowledged (MetricsAck): a
// coordinator killed before storing them never will, so they are sent
// again on the next session, before anything newer (the coordinator drops
// the points it already has, by MetricPoint.seq). Bounded per rank: past
// `max_bytes_per_rank` the oldest are forgotten (and counted).
//
// Thread: the agent's loop.
class MetricsOutbox {
 public:
  using Key = std::tuple<std::string, int32_t, int32_t>;  // job, attempt, rank

  explicit MetricsOutbox(size_t max_bytes_per_rank = 8 << 20)
      : max_bytes_per_rank_(max_bytes_per_rank) {}

  // `msg` (a RankMetrics message) was written; its points were read from
  // `from_offset` on in the rank's output.
  void Sent(const v1::AgentMessage& msg, int64_t from_offset);
  // Forgets what `ack` covers.
  void Ack(const v1::MetricsAck& ack);
  // Everything unacknowledged, each rank's oldest first.
  std::vector<v1::AgentMessage> Unacked() const;
  bool Has(const Key& key) const { return ranks_.count(key) > 0; }
  // Where reading `key`'s output must resume for nothing unacknowledged to
  // be lost (a restarted agent has no outbox); nullopt when all is acked.
  std::optional<int64_t> OldestOffset(const Key& key) const;
  void Forget(const Key& key) { ranks_.erase(key); }
  void Clear() { ranks_.clear(); }

  size_t bytes() const;
  int64_t dropped_messages() const { return dropped_; }

 private:
  struct Entry {
    v1::AgentMessage msg;
    int64_t seq = 0;  // its highest point seq
    int64_t from_offset = 0;
    size_t bytes = 0;
  };
  struct Rank {
    std::deque<Entry> entries;
    size_t bytes = 0;
  };
  const size_t max_bytes_per_rank_;
  std::map<Key, Rank> ranks_;
  int64_t dropped_ = 0;
};

}  // namespace gangway::agent
