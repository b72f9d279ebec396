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
constexpr int kDefaultReplicas = 1;
constexpr int kDefaultProcsPerNode = 1;
constexpr int kDefaultBackoffLimit = 6;  // as Kubernetes Jobs

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

}  // namespace

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
