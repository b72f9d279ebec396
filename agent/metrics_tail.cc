#include "agent/metrics_tail.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace gangway::agent {

absl::StatusOr<MetricsTail> MetricsTail::Create(std::string path,
                                                const v1::MetricsCollector& collector, bool json) {
  absl::StatusOr<common::MetricParser> parser = common::MetricParser::Create(
      json ? "" : collector.regex(), {collector.names().begin(), collector.names().end()});
  if (!parser.ok()) return parser.status();
  return MetricsTail(std::move(path), *std::move(parser), json);
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
  return out;
}

}  // namespace gangway::agent
