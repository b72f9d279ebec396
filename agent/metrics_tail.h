// Follows a rank's output (or its metrics file) and turns each new complete
// line into metric points, for trials of a sweep.
//
// Offsets are positions in the rank's whole output (rank_log.h), so the
// tail follows the log across its rotations, and a restarted agent resumes
// where the last one stopped. Lines rotated away before they were read (a
// rank writing more than the log cap between two polls) are skipped; the
// tail reads faster while it is behind (behind()), and a rank's last lines
// are always still on disk when Drain reads them.
//
// Thread: the agent's loop. Reads are small and local (the file is appended
// by the rank on the same node), so they run on the loop between events.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/metrics.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

class MetricsTail {
 public:
  // `json`: the file holds JSON lines (a metrics file), else text lines in
  // the collector's format. Errors: the collector's regex is invalid.
  static absl::StatusOr<MetricsTail> Create(std::string path, const v1::MetricsCollector& collector,
                                            bool json);

  // Points in what was appended since the last call (at most kMaxReadBytes
  // of it). A missing file is simply empty so far.
  std::vector<v1::MetricPoint> Poll(int64_t now_ms);

  // Everything left once the rank has exited: reads to the end of the file
  // (Poll stops at kMaxReadBytes, and a rank that printed more than that
  // since the last poll lost the lines after it, its objective often among
  // them) and parses an unfinished last line, which is complete now (a
  // `printf 'loss=%s'` without a newline was dropped).
  std::vector<v1::MetricPoint> Drain(int64_t now_ms);

  // Where reading should resume in a new MetricsTail for the same file (a
  // restarted agent re-adopting the rank): past every line already returned.
  int64_t resume_offset() const { return offset_ - static_cast<int64_t>(splitter_.pending()); }
  void Seek(int64_t offset) { offset_ = offset; }
  // Bytes written but not yet read, as of the last Poll.
  int64_t behind() const { return end_ - offset_; }
  // Bytes rotated away before they could be read.
  int64_t skipped_bytes() const { return skipped_; }

  // Most bytes read per Poll, so one chatty rank cannot stall the loop.
  static constexpr int64_t kMaxReadBytes = 1 << 20;
  // Most points Poll or Drain returns; the agent sends them in one message,
  // which must stay under gRPC's 4 MiB (at most 128 + 256 bytes of name and
  // raw text each, common/metric_limits.h). Past it the latest are kept: the
  // last value is what a trial's objective usually reads.
  static constexpr size_t kMaxPoints = 5000;

  // Every point carries its seq: where its line ends in the output, so a
  // point read twice (resent, or read again by a restarted agent) is known
  // as the same point.
  // Every point returned has passed common::SanitizeMetricPoint: valid UTF-8
  // (invalid bytes become U+FFFD), names of at most 128 bytes (longer ones are
  // dropped), raw text cut to 256 bytes, steps -1 or 0..2^53.

 private:
  // Parses one whole line that ends at `end_offset` in the rank's output;
  // its points get their seq (MetricPoint.seq) from it.
  void ParseLine(std::string_view line, int64_t end_offset, int64_t now_ms,
                 std::vector<v1::MetricPoint>* out);
  // Sanitizes the points and keeps at most kMaxPoints of them.
  static void Bound(std::vector<v1::MetricPoint>* points);

  MetricsTail(std::string path, common::MetricParser parser, bool json)
      : path_(std::move(path)), parser_(std::move(parser)), json_(json) {}

  std::string path_;
  common::MetricParser parser_;
  common::LineSplitter splitter_;
  bool json_;
  int64_t offset_ = 0;
  int64_t end_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace gangway::agent
