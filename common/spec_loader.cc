// The pieces every spec loader shares (common/spec_loader.h): quoting user
// text in messages, "did you mean" suggestions, error collection with YAML
// lines, and FieldLoader's strict scalars.
#include "common/spec_loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gangway::common::spec_internal {
namespace {

constexpr int kMaxNameLength = 63;
// At most this many errors are listed; the rest are counted.
constexpr size_t kMaxErrors = 20;
// Values quoted in messages are cut to this many bytes.
constexpr size_t kMaxQuoted = 64;

// Case and '_'/'-' folded, so procs_per_node finds procsPerNode.
std::string Fold(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_' && c != '-') out += absl::ascii_tolower(c);
  }
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

// ---------------------------------------------------------------------------
// Text helpers.
// ---------------------------------------------------------------------------

// Messages quote user text escaped and cut, so a 1 MiB value or a control
// character cannot flood or garble a terminal.
std::string Quote(std::string_view text) {
  bool cut = text.size() > kMaxQuoted;
  std::string_view shown = cut ? text.substr(0, kMaxQuoted) : text;
  return absl::StrCat("\"", absl::CHexEscape(AV(shown)), cut ? "...\"" : "\"");
}

// Paths embed user map keys (env names); shown escaped for the same reason.
std::string ShowPath(std::string_view path) {
  std::string shown = absl::CHexEscape(AV(path.substr(0, 2 * kMaxQuoted)));
  if (path.size() > 2 * kMaxQuoted) shown += "...";
  return shown;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsDns1123Label(std::string_view s) {
  if (s.empty()) return false;
  auto alnum = [](char c) { return IsDigit(c) || (c >= 'a' && c <= 'z'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

std::optional<std::string_view> Suggest(std::string_view given,
                                        std::span<const std::string_view> known) {
  if (given.size() > 64) return std::nullopt;  // keeps the quadratic distance cheap
  std::string folded = Fold(given);
  std::optional<std::string_view> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : known) {
    std::string c = Fold(candidate);
    size_t d = EditDistance(folded, c);
    // A prefix of 3+ letters ("mem", "backoff") is as good as a small typo.
    if (folded.size() >= 3 && c.starts_with(folded)) d = std::min<size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  size_t allowed = std::max<size_t>(1, std::min<size_t>(3, folded.size() / 3));
  if (best && best_distance <= allowed) return best;
  return std::nullopt;
}

std::string DidYouMean(std::string_view given, std::span<const std::string_view> known) {
  auto suggestion = Suggest(given, known);
  if (!suggestion) return "";
  return absl::StrCat(" (did you mean \"", AV(*suggestion), "\"?)");
}

std::string JoinPath(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  return absl::StrCat(AV(prefix), ".", AV(name));
}

// ---------------------------------------------------------------------------
// Error collection.
// ---------------------------------------------------------------------------

void Errors::Add(const std::string& path, std::string_view message) {
  // The path, else its nearest recorded parent: "a.b[2].c" -> "a.b[2]" ->
  // "a.b" -> "a".
  std::string_view p = path;
  while (!p.empty()) {
    if (auto it = lines_->find(std::string(p)); it != lines_->end()) {
      AddAt(it->second, path, message);
      return;
    }
    size_t cut = p.find_last_of(".[");
    if (cut == std::string_view::npos) break;
    p = p.substr(0, cut);
  }
  AddAt(0, path, message);
}

void Errors::AddAt(int line, const std::string& path, std::string_view message) {
  if (!path.empty() && !paths_.insert(path).second) return;
  std::string text = line > 0 ? absl::StrCat("line ", line, ": ") : "";
  if (!path.empty()) absl::StrAppend(&text, ShowPath(path), ": ");
  absl::StrAppend(&text, AV(message));
  entries_.push_back({line, std::move(text)});
}

bool Errors::HasErrorUnder(std::string_view path) const {
  for (auto it = paths_.lower_bound(std::string(path)); it != paths_.end(); ++it) {
    std::string_view p = *it;
    if (!p.starts_with(path)) break;
    if (p.size() == path.size() || p[path.size()] == '.' || p[path.size()] == '[') return true;
  }
  return false;
}

absl::Status Errors::ToStatus() {
  if (entries_.empty()) return absl::OkStatus();
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.line < b.line; });
  std::vector<std::string> shown;
  for (size_t i = 0; i < entries_.size() && i < kMaxErrors; ++i) {
    shown.push_back(entries_[i].text);
  }
  if (entries_.size() > kMaxErrors) {
    shown.push_back(absl::StrCat("... and ", entries_.size() - kMaxErrors, " more errors"));
  }
  return absl::InvalidArgumentError(absl::StrJoin(shown, "\n"));
}

std::string RangeMessage(const IntRule& rule, std::string_view got) {
  return absl::StrCat("must be between ", rule.min, " and ", rule.max, ", got ", AV(got),
                      AV(rule.hint));
}

void CheckRange(const std::string& path, const IntRule& rule, int64_t value, Errors* errors) {
  if (value < rule.min || value > rule.max) {
    errors->Add(path, RangeMessage(rule, absl::StrCat(value)));
  }
}

// Strings end up in execve() arguments and in proto3 string fields: a NUL
// would truncate silently, invalid UTF-8 would fail serialization far away.
void CheckText(const std::string& path, std::string_view value, Errors* errors) {
  if (value.find('\0') != std::string_view::npos) {
    errors->Add(path, "must not contain a NUL character");
  } else if (!IsValidUtf8(value)) {
    errors->Add(path, "must be valid UTF-8");
  }
}

void CheckName(const std::string& path, std::string_view name, Errors* errors) {
  if (name.empty()) {
    errors->Add(path, "required: a DNS-1123 label such as \"resnet-50\"");
  } else if (name.size() > kMaxNameLength) {
    errors->Add(path,
                absl::StrCat("must be at most ", kMaxNameLength, " characters, got ", name.size()));
  } else if (!IsDns1123Label(name)) {
    errors->Add(path, absl::StrCat("must be a DNS-1123 label (lowercase letters, digits and "
                                   "'-', starting and ending with a letter or digit), got ",
                                   Quote(name)));
  }
}

// ---------------------------------------------------------------------------
// YAML documents.
// ---------------------------------------------------------------------------

int LineOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

// A quoted scalar carries the non-specific tag "!"; a plain one "?".
bool IsQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return IsQuoted(node) ? absl::StrCat("the string ", Quote(node.Scalar()))
                            : Quote(node.Scalar());
    default:
      return "nothing";
  }
}

// ---------------------------------------------------------------------------
// Strict scalars.
// ---------------------------------------------------------------------------

std::optional<std::string> FieldLoader::String(const std::string& path, int line,
                                               const YAML::Node& value) {
  // Any scalar is taken as its text, so `FOO: 1e-3` stays "1e-3" and
  // `DEBUG: yes` stays "yes"; null is refused, as it is more likely a
  // forgotten value than a wish for "".
  if (!value.IsScalar()) {
    Error(line, path, absl::StrCat("must be a string, got ", Describe(value)));
    return std::nullopt;
  }
  return value.Scalar();
}

std::optional<int64_t> FieldLoader::Int(const std::string& path, int line, const YAML::Node& value,
                                        const IntRule& rule) {
  const std::string not_int = absl::StrCat("must be an integer, got ", Describe(value));
  if (!value.IsScalar()) {
    Error(line, path, not_int);
    return std::nullopt;
  }
  if (value.Tag() != "?" && value.Tag() != "tag:yaml.org,2002:int") {
    Error(line, path, IsQuoted(value) ? absl::StrCat(not_int, " (remove the quotes)") : not_int);
    return std::nullopt;
  }
  std::string_view text = value.Scalar();
  std::string_view digits = text;
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) {
    digits.remove_prefix(1);
  }
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    Error(line, path, not_int);
    return std::nullopt;
  }
  if (digits.size() > 1 && digits.front() == '0') {
    Error(line, path, absl::StrCat(not_int, " (leading zeros are ambiguous)"));
    return std::nullopt;
  }
  if (text.front() == '+') text.remove_prefix(1);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < rule.min || v > rule.max) {
    Error(line, path, RangeMessage(rule, text.size() <= 24 ? std::string(text) : Quote(text)));
    return std::nullopt;
  }
  return v;
}

std::optional<double> FieldLoader::Double(const std::string& path, int line,
                                          const YAML::Node& value) {
  const std::string not_number = absl::StrCat("must be a number, got ", Describe(value));
  if (!value.IsScalar()) {
    Error(line, path, not_number);
    return std::nullopt;
  }
  const std::string& tag = value.Tag();
  if (tag != "?" && tag != "tag:yaml.org,2002:int" && tag != "tag:yaml.org,2002:float") {
    Error(line, path,
          IsQuoted(value) ? absl::StrCat(not_number, " (remove the quotes)") : not_number);
    return std::nullopt;
  }
  std::string_view text = value.Scalar();
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);  // from_chars refuses '+'
  // [-] (digits [. digits*] | . digits) [(e|E) [+-] digits]
  std::string_view rest = text;
  if (!rest.empty() && rest.front() == '-') rest.remove_prefix(1);
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < rest.size() && IsDigit(rest[i])) ++i;
    return i - start;
  };
  size_t whole = digits();
  size_t fraction = 0;
  if (i < rest.size() && rest[i] == '.') {
    ++i;
    fraction = digits();
  }
  bool ok = whole + fraction > 0;
  if (ok && i < rest.size() && (rest[i] == 'e' || rest[i] == 'E')) {
    ++i;
    if (i < rest.size() && (rest[i] == '+' || rest[i] == '-')) ++i;
    ok = digits() > 0;
  }
  ok = ok && i == rest.size();
  std::string lower = absl::AsciiStrToLower(AV(rest));
  if (!ok && (lower == ".inf" || lower == "inf" || lower == ".nan" || lower == "nan" ||
              lower == "infinity")) {
    Error(line, path, absl::StrCat("must be a finite number, got ", Quote(value.Scalar())));
    return std::nullopt;
  }
  if (!ok) {
    Error(line, path, not_number);
    return std::nullopt;
  }
  if (whole > 1 && rest.front() == '0') {
    Error(line, path, absl::StrCat(not_number, " (leading zeros are ambiguous)"));
    return std::nullopt;
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && !std::isfinite(v))) {
    Error(line, path, absl::StrCat("must be a finite number, got ", Quote(value.Scalar())));
    return std::nullopt;
  }
  if (ec != std::errc() || end != text.data() + text.size()) {
    Error(line, path, not_number);
    return std::nullopt;
  }
  return v;
}

std::optional<size_t> FieldLoader::OneOf(const std::string& path, int line, const YAML::Node& value,
                                         std::span<const std::string_view> names) {
  auto s = String(path, line, value);
  if (!s) return std::nullopt;
  for (size_t i = 0; i < names.size(); ++i) {
    if (*s == names[i]) return i;
  }
  std::vector<std::string> shown(names.begin(), names.end());
  Error(line, path,
        absl::StrCat("must be one of ", absl::StrJoin(shown, ", "), ", got ", Quote(*s),
                     DidYouMean(*s, names)));
  return std::nullopt;
}

bool FieldLoader::Strings(const std::string& path, int line, const YAML::Node& value,
                          google::protobuf::RepeatedPtrField<std::string>* out) {
  if (value.IsNull()) return true;  // every entry commented out
  if (!value.IsSequence()) {
    Error(line, path, absl::StrCat("must be a list of strings, got ", Describe(value)));
    return false;
  }
  int i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    std::string item_path = absl::StrCat(path, "[", i, "]");
    int item_line = LineOf(*it);
    lines_->emplace(item_path, item_line);
    auto s = String(item_path, item_line, *it);
    // A placeholder keeps later indexes matching the YAML.
    out->Add(s ? std::move(*s) : std::string());
  }
  return true;
}

bool FieldLoader::Mapping(const std::string& path, int line, const YAML::Node& value,
                          std::string_view what) {
  if (value.IsMap()) return true;
  if (!value.IsNull()) {
    Error(line, path, absl::StrCat("must be a mapping (", AV(what), "), got ", Describe(value)));
  }
  return false;
}

}  // namespace gangway::common::spec_internal
