#include "agent/metrics_batches.h"

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

}  // namespace gangway::agent
