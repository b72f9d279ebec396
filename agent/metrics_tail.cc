#include "agent/metrics_tail.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

#include "agent/rank_log.h"
#include "common/metric_limits.h"

namespace gangway::agent {

absl::StatusOr<MetricsTail> MetricsTail::Create(std::string path,
                                                const v1::MetricsCollector& collector, bool json) {
  absl::StatusOr<common::MetricParser> parser = common::MetricParser::Create(
      json ? "" : collector.regex(), {collector.names().begin(), collector.names().end()});
  if (!parser.ok()) return parser.status();
  return MetricsTail(std::move(path), *std::move(parser), json);
}

void MetricsTail::Bound(std::vector<v1::MetricPoint>* points) {
  std::erase_if(*points, [](v1::MetricPoint& p) { return !common::SanitizeMetricPoint(&p); });
  if (points->size() > kMaxPoints) {
    points->erase(points->begin(), points->end() - static_cast<std::ptrdiff_t>(kMaxPoints));
  }
}

void MetricsTail::ParseLine(std::string_view line, int64_t end_offset, int64_t now_ms,
                            std::vector<v1::MetricPoint>* out) {
  const size_t before = out->size();
  if (json_) {
    parser_.ParseJsonLine(line, now_ms, out);
  } else {
    parser_.ParseLine(line, now_ms, out);
  }
  for (size_t k = before; k < out->size(); ++k) {
    (*out)[k].set_seq(end_offset * 64 + static_cast<int64_t>(std::min<size_t>(k - before, 63)));
  }
}

std::vector<v1::MetricPoint> MetricsTail::Poll(int64_t now_ms) {
  std::vector<v1::MetricPoint> out;
  int64_t budget = kMaxReadBytes;
  // A read stops at the end of a segment: on into the next one.
  for (int i = 0; i < 3 && budget > 0; ++i) {
    absl::StatusOr<RankLogRead> read = ReadRankLog(path_, offset_, budget);
    if (!read.ok()) break;
    end_ = read->end;
    std::string_view data(read->data);
    if (read->offset > offset_) {
      // Rotated away unread: the partial line held back, and the one the
      // read starts in the middle of, are not whole lines.
      skipped_ += read->offset - offset_;
      splitter_ = common::LineSplitter();
      const size_t nl = data.find('\n');
      data.remove_prefix(nl == std::string_view::npos ? data.size() : nl + 1);
    }
    offset_ = read->offset + static_cast<int64_t>(read->data.size());
    budget -= static_cast<int64_t>(read->data.size());
    // Line by line, to know where each one ends (the points' seq).
    const int64_t start = offset_ - static_cast<int64_t>(data.size());
    size_t pos = 0;
    while (pos < data.size()) {
      const size_t nl = data.find('\n', pos);
      const size_t stop = nl == std::string_view::npos ? data.size() : nl + 1;
      splitter_.Feed(data.substr(pos, stop - pos), [&](std::string_view line) {
        ParseLine(line, start + static_cast<int64_t>(stop), now_ms, &out);
      });
      pos = stop;
    }
    if (read->data.empty() || offset_ >= end_) break;
  }
  Bound(&out);
  return out;
}

std::vector<v1::MetricPoint> MetricsTail::Drain(int64_t now_ms) {
  std::vector<v1::MetricPoint> out;
  // Bounded, since a child the rank left behind may still be writing.
  for (int i = 0; i < 64; ++i) {
    const int64_t before = offset_;
    std::vector<v1::MetricPoint> more = Poll(now_ms);
    out.insert(out.end(), std::make_move_iterator(more.begin()),
               std::make_move_iterator(more.end()));
    if (offset_ == before || offset_ >= end_) break;
  }
  splitter_.Feed("\n", [&](std::string_view line) { ParseLine(line, offset_, now_ms, &out); });
  Bound(&out);
  return out;
}

}  // namespace gangway::agent
