#include "agent/metrics_tail.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <string_view>
#include <utility>

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

std::vector<v1::MetricPoint> MetricsTail::Poll(int64_t now_ms) {
  std::vector<v1::MetricPoint> out;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  std::string buf(static_cast<size_t>(kMaxReadBytes), '\0');
  const ssize_t n = ::pread(fd, buf.data(), buf.size(), offset_);
  ::close(fd);
  if (n <= 0) return out;
  offset_ += n;
  buf.resize(static_cast<size_t>(n));
  splitter_.Feed(buf, [&](std::string_view line) {
    if (json_) {
      parser_.ParseJsonLine(line, now_ms, &out);
    } else {
      parser_.ParseLine(line, now_ms, &out);
    }
  });
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
    if (offset_ - before < kMaxReadBytes) break;
  }
  splitter_.Feed("\n", [&](std::string_view line) {
    if (json_) {
      parser_.ParseJsonLine(line, now_ms, &out);
    } else {
      parser_.ParseLine(line, now_ms, &out);
    }
  });
  Bound(&out);
  return out;
}

}  // namespace gangway::agent
