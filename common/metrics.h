// Metric lines from a trial's output.
//
// The default format is Katib's: `name=value` pairs, several per line,
// separated by spaces, commas or tabs; a pair named `step` (or `epoch`) gives
// the step of the others on that line. A user regex (RE2, so no pattern can
// take more than linear time on a line) replaces it: named groups `name` and
// `value`, optional `step`, matched repeatedly along the line. A JSON-lines
// metrics file holds one object per line: {"name": ..., "value": ...,
// "step": ...} or {"step": 3, "loss": 0.5, "acc": 0.9}.
//
// Values that are not numbers are kept as NaN with the raw text; inf and
// nan parse as such. Nothing here throws or aborts on any input.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"

namespace re2 {
class RE2;
}

namespace gangway::common {

// Longest line looked at; longer lines are skipped (a progress bar without
// newlines must not grow a buffer without bound).
inline constexpr size_t kMaxMetricLineBytes = 64 * 1024;

class MetricParser {
 public:
  // Empty regex: Katib's format. Errors: INVALID_ARGUMENT when the regex does
  // not compile or lacks the `name` and `value` groups.
  static absl::StatusOr<MetricParser> Create(const std::string& regex,
                                             std::vector<std::string> names = {});
  MetricParser(MetricParser&&) noexcept;
  MetricParser& operator=(MetricParser&&) noexcept;
  ~MetricParser();

  // Appends the points found on one line (without its newline).
  void ParseLine(std::string_view line, int64_t time_ms, std::vector<v1::MetricPoint>* out) const;
  // One JSON-lines record.
  void ParseJsonLine(std::string_view line, int64_t time_ms,
                     std::vector<v1::MetricPoint>* out) const;

 private:
  MetricParser() = default;
  bool Wanted(std::string_view name) const;

  std::unique_ptr<re2::RE2> regex_;  // null: Katib's format
  std::vector<std::string> names_;
};

// Feeds a byte stream in arbitrary chunks and hands whole lines to the
// parser; keeps the unfinished tail between calls.
class LineSplitter {
 public:
  // Bytes of an unfinished line held back (0 while an overlong one is skipped).
  size_t pending() const { return tail_.size(); }
  template <typename Fn>
  void Feed(std::string_view data, Fn&& on_line) {
    size_t start = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      if (data[i] != '\n') continue;
      std::string_view piece = data.substr(start, i - start);
      if (skipping_) {
        skipping_ = false;
      } else if (tail_.empty()) {
        on_line(piece);
      } else {
        tail_.append(piece);
        on_line(std::string_view(tail_));
      }
      tail_.clear();
      start = i + 1;
    }
    if (start < data.size() && !skipping_) {
      tail_.append(data.substr(start));
      if (tail_.size() > kMaxMetricLineBytes) {
        tail_.clear();
        skipping_ = true;  // drop the rest of this overlong line
      }
    }
  }

 private:
  std::string tail_;
  bool skipping_ = false;
};

}  // namespace gangway::common
