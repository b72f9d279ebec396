#include "common/spec.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/spec_loader.h"
#include "re2/re2.h"

namespace gangway::common {
namespace {

using spec_internal::AV;
using spec_internal::IsDigit;
using spec_internal::Quote;

// ---------------------------------------------------------------------------
// Quantity parsing.
// ---------------------------------------------------------------------------

// "123", "1.5", ".5": the integer part and the fraction digits (trailing zeros
// dropped). False when the text is not such a number.
struct Decimal {
  std::string_view whole;
  std::string_view fraction;
};

bool SplitDecimal(std::string_view text, Decimal* out) {
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? "" : text.substr(dot + 1);
  if (dot != std::string_view::npos && fraction.empty()) return false;  // "1."
  if (whole.empty() && fraction.empty()) return false;
  auto digits = [](std::string_view s) { return std::all_of(s.begin(), s.end(), IsDigit); };
  if (!digits(whole) || !digits(fraction)) return false;
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  out->whole = whole;
  out->fraction = fraction;
  return true;
}

// Digits to a non-negative value <= limit; false on overflow.
bool DigitsToInt(std::string_view digits, unsigned __int128 limit, unsigned __int128* out) {
  unsigned __int128 v = 0;
  for (char c : digits) {
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > limit) return false;
  }
  *out = v;
  return true;
}

constexpr unsigned __int128 kInt64Max = std::numeric_limits<int64_t>::max();

struct Unit {
  std::string_view suffix;
  int64_t multiplier;
};
constexpr std::array<Unit, 14> kByteUnits = {{
    {"", 1},
    {"Ki", int64_t{1} << 10},
    {"Mi", int64_t{1} << 20},
    {"Gi", int64_t{1} << 30},
    {"Ti", int64_t{1} << 40},
    {"Pi", int64_t{1} << 50},
    {"Ei", int64_t{1} << 60},
    {"k", 1'000},
    {"K", 1'000},  // not Kubernetes, but common and unambiguous
    {"M", 1'000'000},
    {"G", 1'000'000'000},
    {"T", 1'000'000'000'000},
    {"P", 1'000'000'000'000'000},
    {"E", 1'000'000'000'000'000'000},
}};

}  // namespace

namespace spec_internal {
namespace {

// ---------------------------------------------------------------------------
// Limits. Per-process resource caps are far above any real node; they exist so
// that totals over a whole job (replicas x procsPerNode x per-process amount)
// always fit in int64 for the scheduler.
// ---------------------------------------------------------------------------

constexpr int64_t kMaxMilliCpus = int64_t{1'000'000} * 1000;  // one million cpus
constexpr int64_t kMaxMemoryBytes = int64_t{16} << 40;        // 16Ti
constexpr int kMaxNameLength = 63;
constexpr int kDefaultReplicas = 1;
constexpr int kDefaultProcsPerNode = 1;
constexpr int kDefaultBackoffLimit = 6;  // as Kubernetes Jobs
// At most this many errors are listed; the rest are counted.
constexpr size_t kMaxErrors = 20;
// Values quoted in messages are cut to this many bytes.
constexpr size_t kMaxQuoted = 64;

// The range rules, shared by the YAML loader (checked on the parsed int64
// before narrowing, so 4294967297 cannot wrap into range) and ValidateJobSpec.
constexpr IntRule kReplicasRule{"replicas", 1, 1024};
constexpr IntRule kProcsPerNodeRule{"procsPerNode", 1, 256};
constexpr IntRule kGpusRule{"resources.gpus", 0, 64};
constexpr IntRule kBackoffLimitRule{"backoffLimit", 0, 10000};
constexpr IntRule kPriorityRule{"priority", -1000, 1000};
// Ten years: converting to nanoseconds cannot overflow. A deadline of 0 means
// none in the proto; in YAML the field is simply left out.
constexpr IntRule kDeadlineRule{"activeDeadlineSeconds", 1, 315'360'000,
                                " (seconds; leave the field out for no deadline)"};
// As Kubernetes Jobs: 0 deletes the job as soon as it ends; left out, the
// coordinator's --ttl-after-finished decides.
constexpr IntRule kTtlRule{"ttlSecondsAfterFinished", 0, 315'360'000,
                           " (seconds; leave the field out for the coordinator's default)"};

constexpr std::array<std::string_view, 16> kTopFields = {"kind",
                                                         "apiVersion",
                                                         "name",
                                                         "replicas",
                                                         "procsPerNode",
                                                         "resources",
                                                         "command",
                                                         "args",
                                                         "env",
                                                         "workingDir",
                                                         "restartPolicy",
                                                         "backoffLimit",
                                                         "activeDeadlineSeconds",
                                                         "priority",
                                                         "user",
                                                         "ttlSecondsAfterFinished"};
constexpr std::array<std::string_view, 3> kResourceFields = {"cpus", "memory", "gpus"};

constexpr std::array<std::pair<std::string_view, v1::RestartPolicy>, 3> kRestartPolicies = {{
    {"Never", v1::RESTART_POLICY_NEVER},
    {"OnFailure", v1::RESTART_POLICY_ON_FAILURE},
    {"ExitCode", v1::RESTART_POLICY_EXIT_CODE},
}};
constexpr std::array<std::string_view, 3> kRestartPolicyNames = {"Never", "OnFailure", "ExitCode"};

bool IsEnvName(std::string_view s) {
  if (s.empty() || IsDigit(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

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

// A node's ranks are launched in one message; past gRPC's limit it never
// arrives and the node's session fails on every retry, so refuse at submit.
static void CheckLaunchSize(const v1::JobSpec& spec, std::string_view prefix, Errors* errors) {
  const size_t bytes = EstimateLaunchBytes(spec);
  if (bytes <= kMaxLaunchBytes) return;
  // The command line and env go once per node, so the biggest of them is
  // what to shrink.
  size_t command = 0, args = 0, env = 0;
  for (const std::string& s : spec.command()) command += s.size();
  for (const std::string& s : spec.args()) args += s.size();
  for (const auto& [k, v] : spec.env()) env += k.size() + v.size();
  std::string_view path = args >= command && args >= env ? "args"
                          : command >= env               ? "command"
                                                         : "env";
  errors->Add(
      JoinPath(prefix, path),
      absl::StrFormat("one node's launch would be about %.1f MB (%.1f KB of command, "
                      "args and env), over gRPC's %d MiB message limit; pass large "
                      "data in a file instead",
                      static_cast<double>(bytes) / 1e6,
                      static_cast<double>(command + args + env) / 1e3, kMaxLaunchBytes >> 20));
}

// Every rule on field values, written once for both entry points.
void CheckJobSpec(const v1::JobSpec& spec, std::string_view prefix, Errors* errors) {
  auto at = [&](std::string_view path) { return JoinPath(prefix, path); };
  auto range = [&](const IntRule& rule, int64_t value) {
    CheckRange(at(rule.path), rule, value, errors);
  };
  CheckName(at("name"), spec.name(), errors);

  range(kReplicasRule, spec.replicas());
  range(kProcsPerNodeRule, spec.procs_per_node());
  range(kGpusRule, spec.resources().gpus());
  range(kBackoffLimitRule, spec.backoff_limit());
  range(kPriorityRule, spec.priority());
  if (spec.active_deadline_seconds() != 0) range(kDeadlineRule, spec.active_deadline_seconds());
  if (spec.has_ttl_seconds_after_finished()) range(kTtlRule, spec.ttl_seconds_after_finished());

  int64_t milli = spec.resources().milli_cpus();
  if (milli < 0) {
    errors->Add(at("resources.cpus"), absl::StrCat("must not be negative, got ", milli, "m"));
  } else if (milli > kMaxMilliCpus) {
    errors->Add(at("resources.cpus"), absl::StrCat("must be at most ", kMaxMilliCpus / 1000,
                                                   " cpus per process, got ", milli, "m"));
  }
  int64_t bytes = spec.resources().memory_bytes();
  if (bytes < 0) {
    errors->Add(at("resources.memory"), absl::StrCat("must not be negative, got ", bytes));
  } else if (bytes > kMaxMemoryBytes) {
    errors->Add(at("resources.memory"),
                absl::StrCat("must be at most 16Ti per process, got ", bytes, " bytes"));
  }

  if (spec.command().empty()) {
    errors->Add(at("command"), "must be a non-empty list of strings, e.g. [python, train.py]");
  } else if (spec.command(0).empty()) {
    errors->Add(at("command[0]"), "must not be empty: it is the program to run");
  }
  for (int i = 0; i < spec.command_size(); ++i) {
    CheckText(at(absl::StrCat("command[", i, "]")), spec.command(i), errors);
  }
  for (int i = 0; i < spec.args_size(); ++i) {
    CheckText(at(absl::StrCat("args[", i, "]")), spec.args(i), errors);
  }
  // Sorted: proto map order is unspecified and messages should be stable.
  std::vector<std::pair<std::string, std::string>> env(spec.env().begin(), spec.env().end());
  std::sort(env.begin(), env.end());
  for (const auto& [key, value] : env) {
    std::string path = at(absl::StrCat("env.", key));
    if (!IsEnvName(key)) {
      errors->Add(path, "not a valid environment variable name: must match [A-Za-z_][A-Za-z0-9_]*");
    } else {
      CheckText(path, value, errors);
    }
  }
  CheckText(at("workingDir"), spec.working_dir(), errors);
  // A POSIX user name (useradd's default rule); the node's agent decides
  // whether it may run it.
  static const RE2 kUserName("[a-z_][a-z0-9_-]{0,31}");
  if (!spec.user().empty() && !RE2::FullMatch(spec.user(), kUserName)) {
    errors->Add(at("user"), "not a user name: must match [a-z_][a-z0-9_-]*, at most 32 characters");
  }

  bool known_policy = std::any_of(kRestartPolicies.begin(), kRestartPolicies.end(),
                                  [&](const auto& p) { return p.second == spec.restart_policy(); });
  if (!known_policy) {
    errors->Add(at("restartPolicy"), absl::StrCat("must be Never, OnFailure or ExitCode, got ",
                                                  static_cast<int>(spec.restart_policy())));
  }
  CheckLaunchSize(spec, prefix, errors);
}

void ApplyYamlJobDefaults(v1::JobSpec* spec) {
  // Overwritten by an explicit `cpus:` (0 included).
  spec->mutable_resources()->set_milli_cpus(kDefaultMilliCpus);
  spec->set_replicas(kDefaultReplicas);
  spec->set_procs_per_node(kDefaultProcsPerNode);
  spec->set_backoff_limit(kDefaultBackoffLimit);
  spec->set_restart_policy(v1::RESTART_POLICY_NEVER);
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

// ---------------------------------------------------------------------------
// Job specs.
// ---------------------------------------------------------------------------

namespace {

class JobLoader : public FieldLoader {
 public:
  JobLoader(v1::JobSpec* spec, std::string_view prefix, std::map<std::string, int>* lines,
            Errors* errors)
      : FieldLoader(lines, errors), spec_(spec), prefix_(prefix) {}

  void LoadRoot(const YAML::Node& root) {
    ForEachField(
        root, prefix_, kTopFields,
        [&](std::string_view field, const std::string& path, int line, const YAML::Node& value) {
          if (field == "kind") {
            ExpectConstant(path, line, value, "Job");
          } else if (field == "apiVersion") {
            ExpectConstant(path, line, value, "gangway/v1");
          } else if (field == "name") {
            if (auto s = String(path, line, value)) spec_->set_name(*s);
          } else if (field == "replicas") {
            if (auto v = Int(path, line, value, kReplicasRule)) {
              spec_->set_replicas(static_cast<int32_t>(*v));
            }
          } else if (field == "procsPerNode") {
            if (auto v = Int(path, line, value, kProcsPerNodeRule)) {
              spec_->set_procs_per_node(static_cast<int32_t>(*v));
            }
          } else if (field == "resources") {
            LoadResources(path, line, value);
          } else if (field == "command") {
            LoadCommand(path, line, value);
          } else if (field == "args") {
            Strings(path, line, value, spec_->mutable_args());
          } else if (field == "env") {
            LoadEnv(path, line, value);
          } else if (field == "workingDir") {
            if (auto s = String(path, line, value)) spec_->set_working_dir(*s);
          } else if (field == "user") {
            if (auto s = String(path, line, value)) spec_->set_user(*s);
          } else if (field == "restartPolicy") {
            if (auto i = OneOf(path, line, value, kRestartPolicyNames)) {
              spec_->set_restart_policy(kRestartPolicies[*i].second);
            }
          } else if (field == "backoffLimit") {
            if (auto v = Int(path, line, value, kBackoffLimitRule)) {
              spec_->set_backoff_limit(static_cast<int32_t>(*v));
            }
          } else if (field == "activeDeadlineSeconds") {
            if (auto v = Int(path, line, value, kDeadlineRule)) {
              spec_->set_active_deadline_seconds(*v);
            }
          } else if (field == "priority") {
            if (auto v = Int(path, line, value, kPriorityRule)) {
              spec_->set_priority(static_cast<int32_t>(*v));
            }
          } else if (field == "ttlSecondsAfterFinished") {
            if (auto v = Int(path, line, value, kTtlRule)) {
              spec_->set_ttl_seconds_after_finished(*v);
            }
          }
        });
  }

 private:
  void ExpectConstant(const std::string& path, int line, const YAML::Node& value,
                      std::string_view expected) {
    auto s = String(path, line, value);
    if (s && *s != expected) {
      Error(line, path, absl::StrCat("must be \"", AV(expected), "\", got ", Quote(*s)));
    }
  }

  void LoadResources(const std::string& path, int line, const YAML::Node& value) {
    // Null: every field commented out, all defaults.
    if (!Mapping(path, line, value, "cpus, memory, gpus")) return;
    v1::Resources* r = spec_->mutable_resources();
    ForEachField(
        value, path, kResourceFields,
        [&](std::string_view field, const std::string& fpath, int fline, const YAML::Node& v) {
          if (field == "gpus") {
            if (auto n = Int(fpath, fline, v, kGpusRule)) r->set_gpus(static_cast<int32_t>(*n));
            return;
          }
          bool cpus = field == "cpus";
          if (!v.IsScalar()) {
            Error(fline, fpath,
                  absl::StrCat("must be a quantity such as ",
                               cpus ? "2, 0.5 or \"500m\"" : "\"512Mi\"", ", got ", Describe(v)));
            return;
          }
          auto q = cpus ? ParseMilliCpus(v.Scalar()) : ParseBytes(v.Scalar());
          if (!q.ok()) {
            Error(fline, fpath, std::string(q.status().message()));
          } else if (cpus) {
            r->set_milli_cpus(*q);
          } else {
            r->set_memory_bytes(*q);
          }
        });
  }

  void LoadCommand(const std::string& path, int line, const YAML::Node& value) {
    if (value.IsScalar()) {
      // The one-string form names a program; "python train.py" would be
      // looked up as a file of that name and fail only at launch.
      std::string s = value.Scalar();
      if (s.find_first_of(" \t\n") != std::string::npos) {
        Error(line, path,
              absl::StrCat("a single string is one program name, but ", Quote(s),
                           " has spaces: write a list such as [python, train.py] or "
                           "[sh, -c, \"...\"]"));
        return;
      }
      RecordLine(path + "[0]", line);
      spec_->add_command(std::move(s));
      return;
    }
    if (!value.IsSequence()) {
      Error(line, path,
            absl::StrCat("must be a non-empty list of strings, e.g. [python, train.py], got ",
                         Describe(value)));
      return;
    }
    Strings(path, line, value, spec_->mutable_command());
  }

  void LoadEnv(const std::string& path, int line, const YAML::Node& value) {
    if (value.IsNull()) return;
    if (!value.IsMap()) {
      std::string message = absl::StrCat("must be a mapping of NAME: value, got ", Describe(value));
      if (value.IsSequence()) absl::StrAppend(&message, " (write FOO: bar, not - name: FOO)");
      Error(line, path, message);
      return;
    }
    auto* env = spec_->mutable_env();
    std::map<std::string, int> seen;
    for (auto it = value.begin(); it != value.end(); ++it) {
      int key_line = LineOf(it->first);
      if (!it->first.IsScalar()) {
        Error(key_line, path,
              absl::StrCat("variable names must be strings, got ", Describe(it->first)));
        continue;
      }
      const std::string& name = it->first.Scalar();
      std::string var_path = absl::StrCat(path, ".", name);
      auto [first, inserted] = seen.emplace(name, key_line);
      if (!inserted) {
        Error(key_line, "",
              absl::StrCat(ShowPath(var_path), ": duplicate variable (first set on line ",
                           first->second, ")"));
        continue;
      }
      RecordLine(var_path, key_line);
      if (it->second.IsNull()) {
        Error(key_line, var_path, "must be a string, got null (write \"\" for an empty value)");
        continue;
      }
      if (auto s = String(var_path, key_line, it->second)) (*env)[name] = std::move(*s);
    }
  }

  v1::JobSpec* spec_;
  std::string prefix_;
};

}  // namespace

void LoadJobSpecNode(const YAML::Node& map, std::string_view path_prefix, v1::JobSpec* spec,
                     std::map<std::string, int>* lines, Errors* errors) {
  JobLoader(spec, path_prefix, lines, errors).LoadRoot(map);
}

}  // namespace spec_internal

namespace {

absl::StatusOr<ParsedJobSpec> ParseJobSpecOrThrow(std::string_view yaml) {
  using spec_internal::Describe;
  using spec_internal::LineOf;
  auto root = spec_internal::LoadDocument(yaml, "job");
  if (!root.ok()) return root.status();
  if (!root->IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", LineOf(*root),
                     ": a job spec must be a mapping of fields (name: ..., command: ...), got ",
                     Describe(*root)));
  }

  ParsedJobSpec parsed;
  spec_internal::ApplyYamlJobDefaults(&parsed.spec);
  spec_internal::Errors errors(&parsed.lines);
  spec_internal::LoadJobSpecNode(*root, "", &parsed.spec, &parsed.lines, &errors);
  spec_internal::CheckJobSpec(parsed.spec, "", &errors);
  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return parsed;
}

absl::StatusOr<std::string> SpecKindOrThrow(std::string_view yaml) {
  using spec_internal::Describe;
  using spec_internal::LineOf;
  using spec_internal::Quote;
  auto root = spec_internal::LoadDocument(yaml, "job or sweep");
  if (!root.ok()) return root.status();
  if (!root->IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line ", LineOf(*root), ": a spec must be a mapping of fields, got ", Describe(*root)));
  }
  std::optional<std::string> kind;
  int kind_line = 0;
  for (auto it = root->begin(); it != root->end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar() != "kind") continue;
    int line = LineOf(it->first);
    if (kind) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line, ": kind: duplicate field (first set on line ", kind_line, ")"));
    }
    kind_line = line;
    // A copy: `it->second` lives in a proxy destroyed at the end of the
    // statement, so a reference to it dangles (ASan: stack-use-after-scope).
    const YAML::Node value = it->second;
    if (!value.IsScalar() || (value.Scalar() != "Job" && value.Scalar() != "Sweep")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line, ": kind: must be \"Job\" or \"Sweep\", got ", Describe(value)));
    }
    kind = value.Scalar();
  }
  return kind.value_or("Job");
}

// yaml-cpp reports through exceptions, some outside parsing (conversions,
// bad iterators); none may escape to the caller.
template <typename T, typename Fn>
absl::StatusOr<T> NoThrow(Fn fn) {
  try {
    return fn();
  } catch (const YAML::Exception& e) {
    return spec_internal::MalformedError(e);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("could not load spec: ", e.what()));
  }
}

}  // namespace

std::string ParsedJobSpec::Where(const std::string& path) const {
  auto it = lines.find(path);
  if (it == lines.end()) return path;
  return absl::StrCat("line ", it->second, ": ", path);
}

absl::StatusOr<ParsedJobSpec> ParseJobSpec(std::string_view yaml) {
  return NoThrow<ParsedJobSpec>([&] { return ParseJobSpecOrThrow(yaml); });
}

absl::StatusOr<std::string> SpecKind(std::string_view yaml) {
  return NoThrow<std::string>([&] { return SpecKindOrThrow(yaml); });
}

void ApplyJobSpecDefaults(v1::JobSpec* spec) {
  if (spec->replicas() == 0) spec->set_replicas(spec_internal::kDefaultReplicas);
  if (spec->procs_per_node() == 0) spec->set_procs_per_node(spec_internal::kDefaultProcsPerNode);
  if (spec->restart_policy() == v1::RESTART_POLICY_UNSPECIFIED) {
    spec->set_restart_policy(v1::RESTART_POLICY_NEVER);
  }
  if (!spec->has_resources()) spec->mutable_resources()->set_milli_cpus(kDefaultMilliCpus);
}

size_t EstimateLaunchBytes(const v1::JobSpec& spec) {
  // Once per node (LaunchGang.argv and env): the spec's command line and
  // env, the trial's parameters (GANGWAY_PARAM_*), gangway's variables.
  size_t gang = kGangEnvAllowance + spec.working_dir().size() + spec.user().size();
  for (const std::string& s : spec.command()) gang += s.size() + kPerStringOverhead;
  for (const std::string& s : spec.args()) gang += s.size() + kPerStringOverhead;
  for (const auto& [k, v] : spec.env()) gang += k.size() + v.size() + 2 * kPerStringOverhead;
  for (const auto& [k, v] : spec.params()) {
    gang += 2 * (k.size() + v.size()) + 2 * kPerStringOverhead + 16;  // "GANGWAY_PARAM_"
  }
  // Per rank only its own variables. Capped so the product cannot overflow
  // (procsPerNode is unchecked here).
  const size_t procs = static_cast<size_t>(std::clamp(spec.procs_per_node(), 1, 1 << 20));
  return gang + procs * kRankEnvAllowance;
}

absl::Status ValidateJobSpec(const v1::JobSpec& spec) {
  const std::map<std::string, int> no_lines;
  spec_internal::Errors errors(&no_lines);
  spec_internal::CheckJobSpec(spec, "", &errors);
  return errors.ToStatus();
}

absl::StatusOr<int64_t> ParseMilliCpus(std::string_view text) {
  const std::string hint = " (use cpus such as 2 or 0.5, or millicpus such as \"500m\")";
  if (text.empty()) return absl::InvalidArgumentError("empty CPU quantity" + hint);
  if (text.front() == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("CPU quantity ", Quote(text), " must not be negative"));
  }
  bool milli = text.back() == 'm';
  Decimal d;
  if (!SplitDecimal(milli ? text.substr(0, text.size() - 1) : text, &d)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid CPU quantity ", Quote(text), hint));
  }
  if (milli ? !d.fraction.empty() : d.fraction.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("CPU quantity ", Quote(text), " is finer than one millicpu (1m = 0.001)"));
  }
  unsigned __int128 whole = 0, fraction = 0;
  const char* too_large = " is too large";
  if (!DigitsToInt(d.whole, kInt64Max, &whole) || !DigitsToInt(d.fraction, 999, &fraction)) {
    return absl::InvalidArgumentError(absl::StrCat("CPU quantity ", Quote(text), too_large));
  }
  if (milli) return static_cast<int64_t>(whole);
  for (size_t i = d.fraction.size(); i < 3; ++i) fraction *= 10;
  unsigned __int128 total = whole * 1000 + fraction;
  if (total > kInt64Max) {
    return absl::InvalidArgumentError(absl::StrCat("CPU quantity ", Quote(text), too_large));
  }
  return static_cast<int64_t>(total);
}

absl::StatusOr<int64_t> ParseBytes(std::string_view text) {
  const std::string units =
      "Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) or k, M, G, T, P, E (powers of 1000)";
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty memory quantity (use a size such as "
                     "\"512Mi\" or \"2G\")"));
  }
  if (text.front() == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("memory quantity ", Quote(text), " must not be negative"));
  }
  size_t unit_start = text.size();
  while (unit_start > 0 && !IsDigit(text[unit_start - 1]) && text[unit_start - 1] != '.') {
    --unit_start;
  }
  std::string_view number = text.substr(0, unit_start);
  std::string_view suffix = text.substr(unit_start);
  auto unit = std::find_if(kByteUnits.begin(), kByteUnits.end(),
                           [&](const Unit& u) { return u.suffix == suffix; });
  if (unit == kByteUnits.end()) {
    std::string message = absl::StrCat("memory quantity ", Quote(text), " has unknown unit ",
                                       Quote(suffix), "; use ", units);
    // In Kubernetes "m" is milli: "512m" would be half a byte, never meant.
    if (suffix == "m") {
      absl::StrAppend(&message, " (\"m\" means milli; did you mean \"", AV(number), "Mi\"?)");
    }
    return absl::InvalidArgumentError(message);
  }
  Decimal d;
  if (number.empty() || !SplitDecimal(number, &d)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid memory quantity ", Quote(text),
                                                   " (use a size such as \"512Mi\" or \"2G\")"));
  }
  const std::string too_large = absl::StrCat("memory quantity ", Quote(text), " is too large");
  // More than 18 fraction digits cannot name a whole byte with any unit here.
  if (d.fraction.size() > 18) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory quantity ", Quote(text), " is not a whole number of bytes"));
  }
  unsigned __int128 whole = 0, fraction = 0;
  if (!DigitsToInt(d.whole, kInt64Max, &whole)) return absl::InvalidArgumentError(too_large);
  DigitsToInt(d.fraction, std::numeric_limits<int64_t>::max(), &fraction);
  unsigned __int128 scale = 1;
  for (size_t i = 0; i < d.fraction.size(); ++i) scale *= 10;
  // Exact arithmetic: whole * unit + fraction * unit / 10^digits, in 128 bits
  // (every factor is below 2^64, so no product overflows).
  unsigned __int128 multiplier = static_cast<unsigned __int128>(unit->multiplier);
  unsigned __int128 fraction_bytes = fraction * multiplier;
  if (fraction_bytes % scale != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory quantity ", Quote(text), " is not a whole number of bytes"));
  }
  unsigned __int128 total = whole * multiplier + fraction_bytes / scale;
  if (total > kInt64Max) return absl::InvalidArgumentError(too_large);
  return static_cast<int64_t>(total);
}

}  // namespace gangway::common
