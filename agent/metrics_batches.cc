#include "agent/metrics_batches.h"

#include <algorithm>
#include <utility>

#include "google/protobuf/io/coded_stream.h"

namespace gangway::agent {
namespace {

// What a length-delimited field of `size` bytes takes: tag, length, bytes.
size_t FieldBytes(size_t size) {
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size;
}

}  // namespace

std::vector<v1::AgentMessage> MetricsMessages(const std::string& job_id, int32_t attempt,
                                              int32_t rank, std::vector<v1::MetricPoint> points,
                                              size_t max_bytes) {
  std::vector<v1::AgentMessage> out;
  v1::RankMetrics header;
  header.set_job_id(job_id);
  header.set_attempt(attempt);
  header.set_rank(rank);
  // The AgentMessage's own field around the RankMetrics: at most a tag and
  // a 5-byte length.
  const size_t fixed = header.ByteSizeLong() + 6;
  size_t bytes = 0;
  for (v1::MetricPoint& p : points) {
    const size_t size = FieldBytes(p.ByteSizeLong());
    if (out.empty() || (bytes + size > max_bytes && out.back().metrics().points_size() > 0)) {
      out.emplace_back();
      *out.back().mutable_metrics() = header;
      bytes = fixed;
    }
    *out.back().mutable_metrics()->add_points() = std::move(p);
    bytes += size;
  }
  return out;
}

void MetricsOutbox::Sent(const v1::AgentMessage& msg, int64_t from_offset) {
  if (!msg.has_metrics() || msg.metrics().points_size() == 0) return;
  const v1::RankMetrics& m = msg.metrics();
  Entry e;
  for (const v1::MetricPoint& p : m.points()) e.seq = std::max(e.seq, p.seq());
  if (e.seq <= 0) return;  // nothing the coordinator could acknowledge
  e.msg = msg;
  e.from_offset = from_offset;
  e.bytes = msg.ByteSizeLong();
  Rank& rank = ranks_[Key{m.job_id(), m.attempt(), m.rank()}];
  rank.bytes += e.bytes;
  rank.entries.push_back(std::move(e));
  while (rank.bytes > max_bytes_per_rank_ && rank.entries.size() > 1) {
    rank.bytes -= rank.entries.front().bytes;
    rank.entries.pop_front();
    ++dropped_;
  }
}

void MetricsOutbox::Ack(const v1::MetricsAck& ack) {
  auto it = ranks_.find(Key{ack.job_id(), ack.attempt(), ack.rank()});
  if (it == ranks_.end()) return;
  Rank& rank = it->second;
  while (!rank.entries.empty() && rank.entries.front().seq <= ack.seq()) {
    rank.bytes -= rank.entries.front().bytes;
    rank.entries.pop_front();
  }
  if (rank.entries.empty()) ranks_.erase(it);
}

std::vector<v1::AgentMessage> MetricsOutbox::Unacked() const {
  std::vector<v1::AgentMessage> out;
  for (const auto& [key, rank] : ranks_) {
    for (const Entry& e : rank.entries) out.push_back(e.msg);
  }
  return out;
}

std::optional<int64_t> MetricsOutbox::OldestOffset(const Key& key) const {
  auto it = ranks_.find(key);
  if (it == ranks_.end() || it->second.entries.empty()) return std::nullopt;
  return it->second.entries.front().from_offset;
}

size_t MetricsOutbox::bytes() const {
  size_t total = 0;
  for (const auto& [key, rank] : ranks_) total += rank.bytes;
  return total;
}

}  // namespace gangway::agent
