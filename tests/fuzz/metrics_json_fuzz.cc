// A rank's JSON-lines metrics file (metricsCollector kind: file) through
// LineSplitter and ParseJsonLine, every point through SanitizeMetricPoint.
// Records are parsed by yaml-cpp (JSON is YAML), so this is also yaml-cpp's
// Load on hostile one-line documents: no crash, hang or deep recursion.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/metric_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The first byte, when it is '!', selects only the metrics named "loss"
  // (a sweep's objective and additional metrics), else every name is kept.
  std::vector<std::string> names;
  if (!text.empty() && text[0] == '!') {
    names = {"loss"};
    text.remove_prefix(1);
  }
  auto parser = gangway::common::MetricParser::Create("", names);
  FUZZ_CHECK(parser.ok(), "Katib's format always has a parser");
  std::vector<gangway::v1::MetricPoint> points;
  gangway::common::LineSplitter splitter;
  size_t chunk = 1 + size % 13;
  while (!text.empty()) {
    const size_t n = std::min(chunk, text.size());
    splitter.Feed(text.substr(0, n),
                  [&](std::string_view line) { parser->ParseJsonLine(line, 1, &points); });
    text.remove_prefix(n);
    chunk = chunk * 5 % 127 + 1;
  }
  CheckSanitized(&points);
  return 0;
}
