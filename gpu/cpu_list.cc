#include "gpu/cpu_list.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gangway::gpu {
namespace {

// Digits only: SimpleAtoi would also take "+3" and " 3".
bool ParseCpuId(absl::string_view text, int& out) {
  if (text.empty() || text.size() > 6) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return absl::SimpleAtoi(text, &out) && out <= kMaxCpuId;
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseCpuList(absl::string_view text) {
  std::vector<int> cpus;
  if (absl::StripAsciiWhitespace(text).empty()) return cpus;
  // Ranges are merged before they are expanded, so repeating a wide range
  // costs neither memory nor time.
  std::vector<std::pair<int, int>> ranges;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("cpu list \"", text, "\": item \"", item, "\" ", why));
    };
    const size_t dash = item.find('-');
    int first = 0, last = 0;
    if (dash == absl::string_view::npos) {
      if (!ParseCpuId(item, first)) {
        return bad(absl::StrCat("is not a cpu id from 0 to ", kMaxCpuId));
      }
      last = first;
    } else {
      if (!ParseCpuId(item.substr(0, dash), first) || !ParseCpuId(item.substr(dash + 1), last)) {
        return bad(absl::StrCat("is not a range N-M of cpu ids from 0 to ", kMaxCpuId));
      }
      if (first > last) return bad("runs backwards");
    }
    ranges.emplace_back(first, last);
  }
  std::sort(ranges.begin(), ranges.end());
  int next = 0;  // lowest id not yet emitted
  for (auto [first, last] : ranges) {
    for (int cpu = std::max(first, next); cpu <= last; ++cpu) cpus.push_back(cpu);
    next = std::max(next, last + 1);
  }
  return cpus;
}

std::string FormatCpuList(std::span<const int> cpus) {
  std::vector<int> sorted;
  sorted.reserve(cpus.size());
  for (int cpu : cpus) {
    if (cpu >= 0) sorted.push_back(cpu);
  }
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    absl::StrAppend(&out, out.empty() ? "" : ",", sorted[i]);
    if (j > i) absl::StrAppend(&out, "-", sorted[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace gangway::gpu
