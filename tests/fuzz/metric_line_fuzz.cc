// A rank's stdout through the metric line parser. The first input line
// picks the collector: empty for Katib's `name=value` format, else an RE2
// regex (most do not compile or lack the groups: refused, and the rest of
// the input is parsed in Katib's format). The rest is fed to LineSplitter in
// uneven chunks, each line to ParseLine, and every point through
// SanitizeMetricPoint, whose promises are checked.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/metric_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  std::string regex(text.substr(0, nl == std::string_view::npos ? text.size() : nl));
  text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  if (regex.size() > 256) regex.clear();  // RE2's compile time is not under test
  auto parser = gangway::common::MetricParser::Create(regex);
  if (!parser.ok()) parser = gangway::common::MetricParser::Create("");
  FUZZ_CHECK(parser.ok(), "Katib's format always has a parser");

  std::vector<gangway::v1::MetricPoint> points;
  gangway::common::LineSplitter splitter;
  auto on_line = [&](std::string_view line) { parser->ParseLine(line, 1, &points); };
  // Chunk sizes from the data itself, so splits land everywhere.
  size_t chunk = 1 + size % 7;
  while (!text.empty()) {
    const size_t n = std::min(chunk, text.size());
    splitter.Feed(text.substr(0, n), on_line);
    text.remove_prefix(n);
    chunk = chunk * 3 % 61 + 1;
  }
  CheckSanitized(&points);
  return 0;
}
