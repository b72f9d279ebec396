#include "coordinator/sweep_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/metrics.h"
#include "common/spec.h"
#include "common/spec_loader.h"
#include "coordinator/sweep_objectives.h"
#include "coordinator/sweep_tuner_options.h"
#include "tuner/early_stopping.h"
#include "tuner/tuner.h"

namespace gangway::coordinator {
namespace {

using common::spec_internal::AV;
using common::spec_internal::CheckName;
using common::spec_internal::CheckRange;
using common::spec_internal::CheckText;
using common::spec_internal::Describe;
using common::spec_internal::DidYouMean;
using common::spec_internal::Errors;
using common::spec_internal::FieldLoader;
using common::spec_internal::IntRule;
using common::spec_internal::IsDigit;
using common::spec_internal::LineOf;
using common::spec_internal::Quote;
using common::spec_internal::ShowPath;

// ---------------------------------------------------------------------------
// Fields, names and limits.
// ---------------------------------------------------------------------------

constexpr std::array<std::string_view, 14> kSweepFields = {
    "kind",          "apiVersion",
    "name",          "objective",
    "objectives",    "parameters",
    "algorithm",     "parallelTrials",
    "maxTrials",     "maxFailedTrials",
    "earlyStopping", "metricsCollector",
    "trialTemplate", "ttlSecondsAfterFinished"};
constexpr std::array<std::string_view, 5> kObjectiveFields = {"metric", "type", "goal", "value",
                                                              "additionalMetrics"};
constexpr std::array<std::string_view, 7> kParameterFields = {"name", "type",  "min",   "max",
                                                              "step", "scale", "values"};
constexpr std::array<std::string_view, 3> kAlgorithmFields = {"name", "seed", "settings"};
constexpr std::array<std::string_view, 7> kEarlyStoppingFields = {
    "rule", "metric", "minTrials", "startStep", "minResource", "reductionFactor", "maxResource"};
constexpr std::array<std::string_view, 2> kCollectorFields = {"kind", "regex"};

constexpr std::array<std::string_view, 2> kObjectiveTypes = {"minimize", "maximize"};
// Index + 1 is the ObjectiveSpec::Mode.
constexpr std::array<std::string_view, 4> kValueModes = {"last", "best", "min", "max"};
// Index + 1 is the ParameterSpec::Type.
constexpr std::array<std::string_view, 4> kParameterTypes = {"double", "int", "categorical",
                                                             "discrete"};
constexpr std::array<std::string_view, 2> kScales = {"linear", "log"};
constexpr std::array<std::string_view, 10> kAlgorithms = {
    "grid",  "random",    "sobol", "bayesian", "tpe", "multivariate-tpe",
    "cmaes", "hyperband", "nsga2", "pbt"};
constexpr std::array<std::string_view, 2> kRules = {"median", "asha"};
constexpr std::array<std::string_view, 3> kCollectorKinds = {"stdout", "file", "push"};

constexpr int64_t kMaxExactInt = int64_t{1} << 53;  // every int64 up to here is a double
constexpr IntRule kParallelTrialsRule{"parallelTrials", 1, 1000};
constexpr IntRule kMaxTrialsRule{"maxTrials", 1, 100'000};
constexpr IntRule kMaxFailedTrialsRule{"maxFailedTrials", 0, 100'000};
// As a job's (common/spec.cc): ten years at most; 0 deletes the sweep as
// soon as it ends.
constexpr IntRule kTtlRule{"ttlSecondsAfterFinished", 0, 315'360'000};
constexpr IntRule kSeedRule{"algorithm.seed", 0, std::numeric_limits<int64_t>::max()};
constexpr IntRule kMinTrialsRule{"earlyStopping.minTrials", 1, 100'000};
constexpr IntRule kStartStepRule{"earlyStopping.startStep", 0, kMaxExactInt};
constexpr IntRule kResourceRule{"earlyStopping.minResource", 1, kMaxExactInt};

constexpr size_t kMaxListValues = 1000;  // per categorical or discrete parameter
constexpr size_t kMaxParameterName = 64;
constexpr size_t kMaxMetricName = 128;
constexpr int kMaxPlaceholderNamesShown = 10;

constexpr int kDefaultMinTrials = 3;
constexpr int64_t kDefaultStartStep = 4;
constexpr int64_t kDefaultMinResource = 1;
constexpr double kDefaultReductionFactor = 3;

bool IsParameterName(std::string_view s) {
  if (s.empty() || s.size() > kMaxParameterName || IsDigit(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// What the metric collectors can report (common/metrics.cc's name chars).
bool IsMetricName(std::string_view s) {
  if (s.empty() || s.size() > kMaxMetricName) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '/' || c == '.';
  });
}

void CheckMetricName(const std::string& path, std::string_view name, Errors* errors) {
  if (!IsMetricName(name)) {
    errors->Add(path, absl::StrCat("must be a metric name (letters, digits, '_', '-', '.', '/'; "
                                   "at most ",
                                   kMaxMetricName, " characters), got ", Quote(name)));
  } else if (name == "step" || name == "epoch") {
    errors->Add(path, absl::StrCat("\"", AV(name),
                                   "\" gives the step of the other values on its line; it is "
                                   "not a metric"));
  }
}

std::string OneOfMessage(std::span<const std::string_view> names, std::string_view got) {
  std::vector<std::string> shown(names.begin(), names.end());
  return absl::StrCat("must be one of ", absl::StrJoin(shown, ", "), ", got ", Quote(got),
                      DidYouMean(got, names));
}

bool Contains(std::span<const std::string_view> names, std::string_view s) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

// "path: message" from the tuner, split; the whole text as the message when
// it has no path.
std::pair<std::string, std::string> SplitPath(absl::string_view status_message) {
  std::string_view text = SV(status_message);
  size_t colon = text.find(": ");
  if (colon == std::string_view::npos) return {"", std::string(text)};
  return {std::string(text.substr(0, colon)), std::string(text.substr(colon + 2))};
}

// ---------------------------------------------------------------------------
// Placeholders.
// ---------------------------------------------------------------------------

constexpr std::string_view kPlaceholderOpen = "${trial.";

// Calls fn(name) for every `${trial.NAME}` of `text`, in order. False, after
// the complete ones before it, for an unterminated one.
template <typename Fn>
bool ForEachPlaceholder(std::string_view text, Fn fn) {
  size_t pos = 0;
  while ((pos = text.find(kPlaceholderOpen, pos)) != std::string_view::npos) {
    size_t start = pos + kPlaceholderOpen.size();
    size_t end = text.find('}', start);
    if (end == std::string_view::npos) return false;
    fn(text.substr(start, end - start));
    pos = end + 1;
  }
  return true;
}

std::string ShowPlaceholder(std::string_view name) {
  return absl::StrCat(AV(kPlaceholderOpen), ShowPath(name), "}");
}

void CheckPlaceholders(const std::string& path, std::string_view text,
                       std::span<const std::string_view> names, Errors* errors) {
  std::optional<std::string> error;
  bool terminated = ForEachPlaceholder(text, [&](std::string_view name) {
    if (error || Contains(names, name)) return;
    if (name.empty()) {
      error = "${trial.} names no parameter";
      return;
    }
    error = absl::StrCat(ShowPlaceholder(name), " is not a parameter");
    if (auto suggestion = common::spec_internal::Suggest(name, names)) {
      absl::StrAppend(&*error, " (did you mean ", AV(*suggestion), "?)");
    } else if (!names.empty()) {
      std::vector<std::string> shown;
      for (size_t i = 0; i < names.size() && i < kMaxPlaceholderNamesShown; ++i) {
        shown.emplace_back(ShowPath(names[i]));
      }
      absl::StrAppend(&*error, " (parameters: ", absl::StrJoin(shown, ", "),
                      names.size() > shown.size() ? ", ..." : "", ")");
    }
  });
  if (!error && !terminated) error = "unterminated ${trial.NAME} placeholder (no closing '}')";
  if (error) errors->Add(path, *error);
}

// ---------------------------------------------------------------------------
// Value rules, shared by ParseSweepSpec and ValidateSweepSpec.
// ---------------------------------------------------------------------------

std::string_view TypeName(v1::ParameterSpec::Type type) {
  int i = static_cast<int>(type) - 1;
  return i >= 0 && i < static_cast<int>(kParameterTypes.size()) ? kParameterTypes[i] : "unknown";
}

bool IsExactInt(double x) { return std::floor(x) == x && std::abs(x) <= kMaxExactInt; }

// Maps an error of SearchSpace::Create for one parameter onto the field it
// is about: "parameters.lr: log scale needs min > 0, got 0" becomes
// parameters[1].min: log scale needs min > 0, got 0.
void AddSpaceError(const absl::Status& status, const v1::ParameterSpec& p, const std::string& path,
                   Errors* errors) {
  std::string_view message = SV(status.message());
  std::string prefix = absl::StrCat("parameters.", p.name(), ": ");
  if (message.starts_with(prefix)) message.remove_prefix(prefix.size());
  std::string field;
  if (message.starts_with("min and max must be finite")) {
    field = std::isfinite(p.min()) ? ".max" : ".min";
  } else if (message.starts_with("min > max") || message.starts_with("empty range") ||
             message.starts_with("log scale")) {
    field = ".min";
  } else if (message.starts_with("step")) {
    field = ".step";
  } else if (message.starts_with("duplicate value") || message.starts_with("discrete values")) {
    field = ".values";
    // The second of two equal values, or the non-finite one.
    if (p.type() == v1::ParameterSpec::TYPE_CATEGORICAL) {
      std::set<std::string_view> seen;
      for (int j = 0; j < p.values_size(); ++j) {
        if (!seen.insert(p.values(j)).second) {
          field = absl::StrCat(".values[", j, "]");
          break;
        }
      }
    } else {
      std::set<double> seen;
      for (int j = 0; j < p.discrete_size(); ++j) {
        if (!std::isfinite(p.discrete(j)) || !seen.insert(p.discrete(j)).second) {
          field = absl::StrCat(".values[", j, "]");
          break;
        }
      }
    }
  } else if (message.find("value") != std::string_view::npos) {
    field = ".values";
  }
  errors->Add(path + field, message);
}

// Checks parameter i; its tuner spec when it passes.
std::optional<tuner::ParameterSpec> CheckParameter(const v1::ParameterSpec& p,
                                                   const std::string& path, Errors* errors) {
  bool ok = true;
  auto fail = [&](const std::string& field, std::string_view message) {
    errors->Add(path + field, message);
    ok = false;
  };
  if (p.name().empty()) {
    fail(".name", "required: a name such as lr ([A-Za-z_][A-Za-z0-9_]*)");
  } else if (!IsParameterName(p.name())) {
    fail(".name", absl::StrCat("must match [A-Za-z_][A-Za-z0-9_]* (at most ", kMaxParameterName,
                               " characters), got ", Quote(p.name())));
  }
  if (p.type() == v1::ParameterSpec::TYPE_UNSPECIFIED) {
    fail(".type", "required: double, int, categorical or discrete");
    return std::nullopt;
  }
  if (!v1::ParameterSpec::Type_IsValid(p.type())) {
    fail(".type", absl::StrCat("must be double, int, categorical or discrete, got ",
                               static_cast<int>(p.type())));
    return std::nullopt;
  }
  const std::string_view type = TypeName(p.type());
  const bool numeric =
      p.type() == v1::ParameterSpec::TYPE_DOUBLE || p.type() == v1::ParameterSpec::TYPE_INT;
  const bool categorical = p.type() == v1::ParameterSpec::TYPE_CATEGORICAL;
  if (numeric) {
    if (p.values_size() > 0 || p.discrete_size() > 0) {
      fail(".values", absl::StrCat("not a field of ", AV(type),
                                   " parameters (they take min, max, step "
                                   "and scale)"));
    }
  } else {
    const std::string takes =
        absl::StrCat("not a field of ", AV(type), " parameters (they take values)");
    if (p.min() != 0) fail(".min", takes);
    if (p.max() != 0) fail(".max", takes);
    if (p.step() != 0) fail(".step", takes);
    if (p.log()) fail(".scale", takes);
    if (categorical && p.discrete_size() > 0) {
      fail(".values", "categorical values are strings (values), not numbers (discrete)");
    }
    if (!categorical && p.values_size() > 0) {
      fail(".values", "discrete values are numbers (discrete), not strings (values)");
    }
    size_t count = categorical ? p.values_size() : p.discrete_size();
    if (count > kMaxListValues) {
      fail(".values", absl::StrCat("must have at most ", kMaxListValues, " values, got ", count));
    }
    for (int j = 0; j < p.values_size(); ++j) {
      CheckText(absl::StrCat(path, ".values[", j, "]"), p.values(j), errors);
      if (!common::spec_internal::IsValidUtf8(p.values(j)) ||
          p.values(j).find('\0') != std::string::npos) {
        ok = false;
      }
    }
  }
  if (p.type() == v1::ParameterSpec::TYPE_INT) {
    const std::string not_int = absl::StrCat("must be an integer between ", -kMaxExactInt, " and ",
                                             kMaxExactInt, " for an int parameter, got ");
    if (!IsExactInt(p.min())) fail(".min", absl::StrCat(not_int, p.min()));
    if (!IsExactInt(p.max())) fail(".max", absl::StrCat(not_int, p.max()));
    if (!IsExactInt(p.step())) fail(".step", absl::StrCat(not_int, p.step()));
  }
  if (!ok || errors->HasErrorUnder(path)) return std::nullopt;

  tuner::ParameterSpec spec;
  const tuner::Scale scale = p.log() ? tuner::Scale::kLog : tuner::Scale::kLinear;
  switch (p.type()) {
    case v1::ParameterSpec::TYPE_DOUBLE:
      spec = tuner::ParameterSpec::Double(
          p.name(), p.min(), p.max(), scale,
          p.step() != 0 ? std::optional<double>(p.step()) : std::nullopt);
      break;
    case v1::ParameterSpec::TYPE_INT:
      spec = tuner::ParameterSpec::Int(
          p.name(), static_cast<int64_t>(p.min()), static_cast<int64_t>(p.max()), scale,
          p.step() != 0 ? std::optional<int64_t>(static_cast<int64_t>(p.step())) : std::nullopt);
      break;
    case v1::ParameterSpec::TYPE_CATEGORICAL:
      spec = tuner::ParameterSpec::Categorical(
          p.name(), std::vector<std::string>(p.values().begin(), p.values().end()));
      break;
    default:
      spec = tuner::ParameterSpec::Discrete(
          p.name(), std::vector<double>(p.discrete().begin(), p.discrete().end()));
      break;
  }
  // The tuner's own rules (range, scale, step, list values), one parameter
  // at a time so each error lands on its parameter.
  if (auto space = tuner::SearchSpace::Create({spec}); !space.ok()) {
    AddSpaceError(space.status(), p, path, errors);
    return std::nullopt;
  }
  return spec;
}

// Every parameter; the search space when all pass.
std::optional<tuner::SearchSpace> CheckParameters(const v1::SweepSpec& spec, Errors* errors) {
  if (spec.parameters().empty()) {
    errors->Add("parameters", "required: at least one parameter");
    return std::nullopt;
  }
  if (spec.parameters_size() > kMaxSweepParameters) {
    errors->Add("parameters", absl::StrCat("must have at most ", kMaxSweepParameters,
                                           " parameters, got ", spec.parameters_size()));
    return std::nullopt;
  }
  std::vector<tuner::ParameterSpec> specs;
  std::map<std::string, int> names;
  bool ok = true;
  for (int i = 0; i < spec.parameters_size(); ++i) {
    const v1::ParameterSpec& p = spec.parameters(i);
    std::string path = absl::StrCat("parameters[", i, "]");
    if (!p.name().empty()) {
      auto [first, inserted] = names.emplace(p.name(), i);
      if (!inserted) {
        errors->Add(path + ".name", absl::StrCat("duplicate parameter name ", Quote(p.name()),
                                                 " (also parameters[", first->second, "])"));
        ok = false;
      }
    }
    auto checked = CheckParameter(p, path, errors);
    if (checked) {
      specs.push_back(*std::move(checked));
    } else {
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  auto space = tuner::SearchSpace::Create(std::move(specs));
  if (!space.ok()) {
    auto [path, message] = SplitPath(space.status().message());
    errors->Add("parameters", absl::StrCat(AV(path), path.empty() ? "" : ": ", AV(message)));
    return std::nullopt;
  }
  return *std::move(space);
}

void CheckOneObjective(const v1::ObjectiveSpec& o, const std::string& at, Errors* errors) {
  if (o.metric().empty()) {
    errors->Add(at + ".metric", "required: the metric to optimize, e.g. loss");
  } else {
    CheckMetricName(at + ".metric", o.metric(), errors);
  }
  if (o.has_goal() && !std::isfinite(o.goal())) {
    errors->Add(at + ".goal", absl::StrCat("must be finite, got ", o.goal()));
  } else if (!o.has_goal() && o.goal() != 0) {
    errors->Add(at + ".goal", "is set but has_goal is false");
  }
  if (!v1::ObjectiveSpec::Mode_IsValid(o.mode())) {
    errors->Add(at + ".value",
                absl::StrCat("must be last, best, min or max, got ", static_cast<int>(o.mode())));
  }
  std::set<std::string_view> seen = {o.metric()};
  for (int j = 0; j < o.additional_metrics_size(); ++j) {
    const std::string& m = o.additional_metrics(j);
    std::string path = absl::StrCat(at, ".additionalMetrics[", j, "]");
    CheckMetricName(path, m, errors);
    if (!seen.insert(m).second) {
      errors->Add(path, absl::StrCat(Quote(m), " is listed twice (or is the objective metric)"));
    }
  }
}

void CheckObjective(const v1::SweepSpec& spec, Errors* errors) {
  if (!spec.has_objective() && spec.objectives_size() == 0) {
    errors->Add("objective",
                "required: the metric to optimize and its type, e.g. "
                "{metric: loss, type: minimize}");
    return;
  }
  if (spec.objectives_size() == 0) {
    CheckOneObjective(spec.objective(), "objective", errors);
    return;
  }
  for (int i = 0; i < spec.objectives_size(); ++i) {
    CheckOneObjective(spec.objectives(i), absl::StrCat("objectives[", i, "]"), errors);
  }
  CheckObjectiveList(spec, errors);
}

// The algorithm, when its name is known; settings checked against it.
std::optional<tuner::Algorithm> CheckAlgorithm(const v1::SweepSpec& spec, Errors* errors) {
  if (!spec.has_algorithm()) {
    errors->Add("algorithm",
                "required: {name: grid, random, sobol, bayesian, tpe, multivariate-tpe, cmaes, "
                "hyperband, nsga2 or pbt}");
    return std::nullopt;
  }
  const v1::AlgorithmSpec& a = spec.algorithm();
  if (a.name().empty()) {
    errors->Add("algorithm.name",
                "required: grid, random, sobol, bayesian, tpe, multivariate-tpe, cmaes, hyperband, "
                "nsga2 or pbt");
    return std::nullopt;
  }
  auto algorithm = tuner::ParseAlgorithm(a.name());
  if (!algorithm.ok()) {
    errors->Add("algorithm.name", OneOfMessage(kAlgorithms, a.name()));
    return std::nullopt;
  }
  std::span<const SettingRule> rules = AlgorithmSettings(*algorithm);
  std::vector<std::string_view> keys;
  for (const SettingRule& rule : rules) keys.push_back(rule.key);
  std::string_view name = tuner::AlgorithmName(*algorithm);
  // Sorted: proto map order is unspecified and messages should be stable.
  std::vector<std::pair<std::string, std::string>> settings(a.settings().begin(),
                                                            a.settings().end());
  std::sort(settings.begin(), settings.end());
  for (const auto& [key, value] : settings) {
    std::string path = absl::StrCat("algorithm.settings.", key);
    // An init-capture: clang before 16 cannot capture a structured binding.
    auto rule = std::find_if(rules.begin(), rules.end(),
                             [&k = key](const SettingRule& r) { return r.key == k; });
    if (rule == rules.end()) {
      std::string known =
          keys.empty()
              ? absl::StrCat(AV(name), " takes no settings")
              : absl::StrCat(
                    AV(name), " takes ",
                    absl::StrJoin(keys, ", ", [](std::string* out, auto k) { out->append(k); }));
      errors->Add(path, absl::StrCat("unknown setting (", known, ")", DidYouMean(key, keys)));
      continue;
    }
    if (rule->text) {
      if (value.empty()) errors->Add(path, "must not be empty");
    } else if (!rule->names.empty()) {
      if (!Contains(rule->names, value)) errors->Add(path, OneOfMessage(rule->names, value));
    } else if (auto v = ParseSettingInt(value, rule->max); !v || *v < rule->min) {
      errors->Add(path, absl::StrCat("must be an integer between ", rule->min, " and ", rule->max,
                                     ", got ", Quote(value)));
    }
  }
  return *algorithm;
}

void CheckTrials(const v1::SweepSpec& spec, Errors* errors) {
  CheckRange("parallelTrials", kParallelTrialsRule, spec.parallel_trials(), errors);
  CheckRange("maxTrials", kMaxTrialsRule, spec.max_trials(), errors);
  if (spec.has_ttl_seconds_after_finished()) {
    CheckRange("ttlSecondsAfterFinished", kTtlRule, spec.ttl_seconds_after_finished(), errors);
  }
  if (spec.max_failed_trials() < 0) {
    CheckRange("maxFailedTrials", kMaxFailedTrialsRule, spec.max_failed_trials(), errors);
  } else if (spec.max_failed_trials() > spec.max_trials() && spec.max_trials() > 0) {
    errors->Add("maxFailedTrials", absl::StrCat("must be at most maxTrials (", spec.max_trials(),
                                                "), got ", spec.max_failed_trials()));
  }
}

void CheckGrid(const v1::SweepSpec& spec, const tuner::SearchSpace& space, Errors* errors) {
  tuner::GridOptions options;
  if (auto it = spec.algorithm().settings().find("gridPointsPerDouble");
      it != spec.algorithm().settings().end()) {
    auto points = ParseSettingInt(it->second, AlgorithmSettings(tuner::Algorithm::kGrid)[0].max);
    if (!points) return;  // reported with the settings
    options.points_per_double = static_cast<int>(*points);
  }
  auto size = space.GridSize(options);
  if (!size.ok()) {
    // "parameters.NAME: grid search needs a step ..." onto parameters[i].
    auto [path, message] = SplitPath(size.status().message());
    for (int i = 0; i < spec.parameters_size(); ++i) {
      if (path == "parameters." + spec.parameters(i).name()) {
        errors->Add(absl::StrCat("parameters[", i, "]"),
                    absl::StrCat(AV(message),
                                 " (set step, or algorithm.settings."
                                 "gridPointsPerDouble)"));
        return;
      }
    }
    errors->Add("algorithm.name", SV(size.status().message()));
    return;
  }
  if (spec.max_trials() > 0 && *size > static_cast<uint64_t>(spec.max_trials())) {
    std::string points = *size == std::numeric_limits<uint64_t>::max()
                             ? absl::StrCat("more than ", *size)
                             : absl::StrCat(*size);
    errors->Add("algorithm.name",
                absl::StrCat("grid has ", points, " points but maxTrials is ", spec.max_trials(),
                             " (raise maxTrials or coarsen the grid)"));
  }
}

void CheckEarlyStopping(const v1::SweepSpec& spec, Errors* errors) {
  if (!spec.has_early_stopping()) return;
  const v1::EarlyStoppingSpec& e = spec.early_stopping();
  const bool median_fields = e.min_trials() != 0 || e.start_step() != 0;
  const bool asha_fields =
      e.min_resource() != 0 || e.reduction_factor() != 0 || e.max_resource() != 0;
  if (e.rule().empty()) {
    if (median_fields || asha_fields || !e.metric().empty()) {
      errors->Add("earlyStopping.rule", "required: median or asha");
    }
    return;
  }
  if (!Contains(kRules, e.rule())) {
    errors->Add("earlyStopping.rule", OneOfMessage(kRules, e.rule()));
    return;
  }
  if (!e.metric().empty()) CheckMetricName("earlyStopping.metric", e.metric(), errors);
  absl::Status status;
  if (e.rule() == "median") {
    const char* only = "only for rule asha";
    if (e.min_resource() != 0) errors->Add("earlyStopping.minResource", only);
    if (e.reduction_factor() != 0) errors->Add("earlyStopping.reductionFactor", only);
    if (e.max_resource() != 0) errors->Add("earlyStopping.maxResource", only);
    status = tuner::Validate(
        tuner::MedianStoppingOptions{.min_trials = e.min_trials(), .start_step = e.start_step()});
  } else {
    const char* only = "only for rule median";
    if (e.min_trials() != 0) errors->Add("earlyStopping.minTrials", only);
    if (e.start_step() != 0) errors->Add("earlyStopping.startStep", only);
    status = tuner::Validate(tuner::AshaOptions{.min_resource = e.min_resource(),
                                                .reduction_factor = e.reduction_factor(),
                                                .max_resource = e.max_resource()});
  }
  if (!status.ok()) {
    auto [path, message] = SplitPath(status.message());
    errors->Add(path.empty() ? "earlyStopping" : path, message);
  }
}

void CheckCollector(const v1::SweepSpec& spec, Errors* errors) {
  const v1::MetricsCollector& c = spec.metrics_collector();
  const bool stdout_kind = c.kind().empty() || c.kind() == "stdout";
  if (!c.kind().empty() && !Contains(kCollectorKinds, c.kind())) {
    errors->Add("metricsCollector.kind", OneOfMessage(kCollectorKinds, c.kind()));
  }
  if (!c.regex().empty()) {
    CheckText("metricsCollector.regex", c.regex(), errors);
    if (!stdout_kind) {
      errors->Add("metricsCollector.regex", "only for kind stdout");
    } else if (auto parser = common::MetricParser::Create(c.regex()); !parser.ok()) {
      auto [path, message] = SplitPath(parser.status().message());
      errors->Add("metricsCollector.regex", message);
    }
  }
  for (int j = 0; j < c.names_size(); ++j) {
    CheckMetricName(absl::StrCat("metricsCollector.names[", j, "]"), c.names(j), errors);
  }
}

void CheckTemplate(const v1::SweepSpec& spec, Errors* errors) {
  if (!spec.has_trial_template()) {
    errors->Add("trialTemplate",
                "required: the job spec each trial runs, e.g. {command: [python, train.py]}");
    return;
  }
  v1::JobSpec job = spec.trial_template();
  if (job.name().empty()) job.set_name(spec.name());  // the default
  if (!job.trial().empty()) {
    errors->Add("trialTemplate.trial", "is set by the sweep for each trial; leave it empty");
  }
  if (!job.params().empty()) {
    errors->Add("trialTemplate.params", "are set by the sweep for each trial; leave them empty");
  }
  common::spec_internal::CheckJobSpec(job, "trialTemplate", errors);

  std::vector<std::string_view> names;
  for (const auto& p : spec.parameters()) names.push_back(p.name());
  for (int i = 0; i < job.command_size(); ++i) {
    CheckPlaceholders(absl::StrCat("trialTemplate.command[", i, "]"), job.command(i), names,
                      errors);
  }
  for (int i = 0; i < job.args_size(); ++i) {
    CheckPlaceholders(absl::StrCat("trialTemplate.args[", i, "]"), job.args(i), names, errors);
  }
  std::vector<std::pair<std::string, std::string>> env(job.env().begin(), job.env().end());
  std::sort(env.begin(), env.end());
  for (const auto& [key, value] : env) {
    CheckPlaceholders(absl::StrCat("trialTemplate.env.", key), value, names, errors);
  }
  CheckPlaceholders("trialTemplate.workingDir", job.working_dir(), names, errors);
}

// Every rule on a sweep spec's values, written once for both entry points.
void CheckSweepSpec(const v1::SweepSpec& spec, Errors* errors) {
  CheckName("name", spec.name(), errors);
  CheckObjective(spec, errors);
  std::optional<tuner::SearchSpace> space = CheckParameters(spec, errors);
  std::optional<tuner::Algorithm> algorithm = CheckAlgorithm(spec, errors);
  CheckTrials(spec, errors);
  if (space && algorithm == tuner::Algorithm::kGrid) CheckGrid(spec, *space, errors);
  if (space && algorithm) {
    if (absl::Status s = CheckAlgorithmAgainstSpace(spec, *space); !s.ok()) {
      auto [path, message] = SplitPath(s.message());
      errors->Add(path.empty() ? "algorithm" : path, message);
    }
  }
  CheckEarlyStopping(spec, errors);
  CheckCollector(spec, errors);
  CheckTemplate(spec, errors);
}

// ---------------------------------------------------------------------------
// YAML loading.
// ---------------------------------------------------------------------------

class SweepLoader : public FieldLoader {
 public:
  SweepLoader(ParsedSweepSpec* out, Errors* errors)
      : FieldLoader(&out->lines, errors), spec_(&out->spec) {}

  void LoadRoot(const YAML::Node& root) {
    bool kind = false;
    bool max_failed = false;
    ForEachField(
        root, "", kSweepFields,
        [&](std::string_view field, const std::string& path, int line, const YAML::Node& value) {
          if (field == "kind") {
            kind = true;
            if (auto s = String(path, line, value); s && *s != "Sweep") {
              std::string message = absl::StrCat("must be \"Sweep\", got ", Quote(*s));
              if (*s == "Job") absl::StrAppend(&message, " (submit a job spec as a job)");
              Error(line, path, message);
            }
          } else if (field == "apiVersion") {
            if (auto s = String(path, line, value); s && *s != "gangway/v1") {
              Error(line, path, absl::StrCat("must be \"gangway/v1\", got ", Quote(*s)));
            }
          } else if (field == "name") {
            if (auto s = String(path, line, value)) spec_->set_name(*s);
          } else if (field == "objective") {
            LoadObjective(path, line, value, nullptr);
          } else if (field == "objectives") {
            LoadObjectives(path, line, value);
          } else if (field == "parameters") {
            LoadParameters(path, line, value);
          } else if (field == "algorithm") {
            LoadAlgorithm(path, line, value);
          } else if (field == "parallelTrials") {
            if (auto v = Int(path, line, value, kParallelTrialsRule)) {
              spec_->set_parallel_trials(static_cast<int32_t>(*v));
            }
          } else if (field == "maxTrials") {
            if (auto v = Int(path, line, value, kMaxTrialsRule)) {
              spec_->set_max_trials(static_cast<int32_t>(*v));
            }
          } else if (field == "maxFailedTrials") {
            max_failed = true;
            if (auto v = Int(path, line, value, kMaxFailedTrialsRule)) {
              spec_->set_max_failed_trials(static_cast<int32_t>(*v));
            }
          } else if (field == "ttlSecondsAfterFinished") {
            if (auto v = Int(path, line, value, kTtlRule)) {
              spec_->set_ttl_seconds_after_finished(*v);
            }
          } else if (field == "earlyStopping") {
            LoadEarlyStopping(path, line, value);
          } else if (field == "metricsCollector") {
            LoadCollector(path, line, value);
          } else if (field == "trialTemplate") {
            if (Mapping(path, line, value, "a job spec")) {
              v1::JobSpec* job = spec_->mutable_trial_template();
              common::spec_internal::ApplyYamlJobDefaults(job);
              common::spec_internal::LoadJobSpecNode(value, path, job, lines_, errors_);
            }
          }
        });
    if (!kind) {
      errors_->Add("kind", "required: \"Sweep\" (a spec without kind is a job spec)");
    }
    // Defaults that depend on other fields.
    MirrorFirstObjective(spec_);
    if (!max_failed) {
      spec_->set_max_failed_trials(std::min(kDefaultMaxFailedTrials, spec_->max_trials()));
    }
    if (spec_->has_trial_template() && spec_->trial_template().name().empty()) {
      spec_->mutable_trial_template()->set_name(spec_->name());
    }
    if (spec_->has_early_stopping() && !spec_->early_stopping().rule().empty() &&
        spec_->early_stopping().metric().empty() && IsMetricName(spec_->objective().metric())) {
      spec_->mutable_early_stopping()->set_metric(spec_->objective().metric());
    }
  }

 private:
  void LoadObjectives(const std::string& path, int line, const YAML::Node& value) {
    if (!value.IsSequence()) {
      Error(line, path,
            absl::StrCat("must be a list such as - {metric: loss, type: minimize}, got ",
                         Describe(value)));
      return;
    }
    int i = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++i) {
      std::string item_path = absl::StrCat(path, "[", i, "]");
      RecordLine(item_path, LineOf(*it));
      // More than the tuner takes is refused by the checks; stop loading
      // far past it.
      if (i > 64) break;
      LoadObjective(item_path, LineOf(*it), *it, spec_->add_objectives());
    }
  }

  // Into `o`, or the spec's `objective` when null (created only for a
  // mapping, so `objective:` alone still reads as missing).
  void LoadObjective(const std::string& path, int line, const YAML::Node& value,
                     v1::ObjectiveSpec* o) {
    if (!Mapping(path, line, value, "metric, type, goal, value, additionalMetrics")) return;
    if (o == nullptr) o = spec_->mutable_objective();
    o->set_mode(v1::ObjectiveSpec::MODE_LAST);
    bool type = false;
    ForEachField(
        value, path, kObjectiveFields,
        [&](std::string_view field, const std::string& fpath, int fline, const YAML::Node& v) {
          if (field == "metric") {
            if (auto s = String(fpath, fline, v)) o->set_metric(*s);
          } else if (field == "type") {
            type = true;
            if (auto i = OneOf(fpath, fline, v, kObjectiveTypes)) {
              o->set_maximize(*i == 1);
            }
          } else if (field == "goal") {
            if (auto d = Double(fpath, fline, v)) {
              o->set_has_goal(true);
              o->set_goal(*d);
            }
          } else if (field == "value") {
            if (auto i = OneOf(fpath, fline, v, kValueModes)) {
              o->set_mode(static_cast<v1::ObjectiveSpec::Mode>(*i + 1));
            }
          } else if (field == "additionalMetrics") {
            Strings(fpath, fline, v, o->mutable_additional_metrics());
          }
        });
    if (!type) errors_->Add(path + ".type", "required: minimize or maximize");
  }

  void LoadParameters(const std::string& path, int line, const YAML::Node& value) {
    if (value.IsNull()) return;  // "required" from the checks
    if (!value.IsSequence()) {
      Error(line, path,
            absl::StrCat("must be a list of parameters such as "
                         "- {name: lr, type: double, min: 0.001, max: 0.1}, got ",
                         Describe(value)));
      return;
    }
    if (value.size() > static_cast<size_t>(kMaxSweepParameters)) {
      Error(line, path,
            absl::StrCat("must have at most ", kMaxSweepParameters, " parameters, got ",
                         value.size()));
      return;
    }
    int i = 0;
    for (auto it = value.begin(); it != value.end(); ++it, ++i) {
      std::string item_path = absl::StrCat(path, "[", i, "]");
      RecordLine(item_path, LineOf(*it));
      LoadParameter(item_path, *it, spec_->add_parameters());
    }
  }

  struct Field {
    std::string path;
    int line = 0;
    YAML::Node value;
  };

  void LoadParameter(const std::string& path, const YAML::Node& node, v1::ParameterSpec* p) {
    if (!node.IsMap()) {
      Error(LineOf(node), path,
            absl::StrCat("must be a mapping (name, type, min, max, step, scale, values), got ",
                         Describe(node)));
      return;
    }
    std::map<std::string_view, Field> fields;
    ForEachField(
        node, path, kParameterFields,
        [&](std::string_view field, const std::string& fpath, int fline, const YAML::Node& v) {
          fields[field] = Field{fpath, fline, v};
        });
    auto get = [&](std::string_view name) -> const Field* {
      auto it = fields.find(name);
      return it == fields.end() ? nullptr : &it->second;
    };
    if (const Field* f = get("name")) {
      if (auto s = String(f->path, f->line, f->value)) p->set_name(*s);
    }
    const Field* type_field = get("type");
    if (!type_field) return;  // "required" from the checks
    auto type = OneOf(type_field->path, type_field->line, type_field->value, kParameterTypes);
    if (!type) return;  // the fields below depend on it
    p->set_type(static_cast<v1::ParameterSpec::Type>(*type + 1));
    const std::string_view type_name = kParameterTypes[*type];
    const bool is_int = p->type() == v1::ParameterSpec::TYPE_INT;
    if (p->type() == v1::ParameterSpec::TYPE_DOUBLE || is_int) {
      if (const Field* f = get("values")) {
        Error(f->line, f->path,
              absl::StrCat("not a field of ", AV(type_name),
                           " parameters (they take min, max, step and scale)"));
      }
      for (std::string_view bound : {"min", "max"}) {
        const Field* f = get(bound);
        if (!f) {
          errors_->Add(absl::StrCat(path, ".", AV(bound)),
                       absl::StrCat("required for ", AV(type_name), " parameters"));
        } else if (auto d = Double(f->path, f->line, f->value)) {
          bound == "min" ? p->set_min(*d) : p->set_max(*d);
        }
      }
      if (const Field* f = get("step")) {
        if (auto d = Double(f->path, f->line, f->value)) {
          if (*d <= 0) {
            Error(f->line, f->path,
                  absl::StrCat("must be > 0, got ", *d,
                               is_int ? "" : " (leave step out for a continuous parameter)"));
          } else {
            p->set_step(*d);
          }
        }
      }
      if (const Field* f = get("scale")) {
        if (auto i = OneOf(f->path, f->line, f->value, kScales)) p->set_log(*i == 1);
      }
      return;
    }
    for (std::string_view numeric : {"min", "max", "step", "scale"}) {
      if (const Field* f = get(numeric)) {
        Error(f->line, f->path,
              absl::StrCat("not a field of ", AV(type_name), " parameters (they take values)"));
      }
    }
    const Field* f = get("values");
    if (!f) {
      errors_->Add(
          path + ".values",
          absl::StrCat("required for ", AV(type_name), " parameters: a list of ",
                       p->type() == v1::ParameterSpec::TYPE_CATEGORICAL ? "strings" : "numbers"));
      return;
    }
    if (f->value.IsSequence() && f->value.size() > kMaxListValues) {
      Error(f->line, f->path,
            absl::StrCat("must have at most ", kMaxListValues, " values, got ", f->value.size()));
      return;
    }
    if (p->type() == v1::ParameterSpec::TYPE_CATEGORICAL) {
      Strings(f->path, f->line, f->value, p->mutable_values());
      return;
    }
    if (f->value.IsNull()) return;  // "needs at least one value" from the checks
    if (!f->value.IsSequence()) {
      Error(f->line, f->path, absl::StrCat("must be a list of numbers, got ", Describe(f->value)));
      return;
    }
    int j = 0;
    for (auto it = f->value.begin(); it != f->value.end(); ++it, ++j) {
      std::string item_path = absl::StrCat(f->path, "[", j, "]");
      int item_line = LineOf(*it);
      RecordLine(item_path, item_line);
      // NaN keeps later indexes matching the YAML; the checks then map it
      // onto this item, which already has its error.
      p->add_discrete(
          Double(item_path, item_line, *it).value_or(std::numeric_limits<double>::quiet_NaN()));
    }
  }

  void LoadAlgorithm(const std::string& path, int line, const YAML::Node& value) {
    if (!Mapping(path, line, value, "name, seed, settings")) return;
    v1::AlgorithmSpec* a = spec_->mutable_algorithm();
    ForEachField(
        value, path, kAlgorithmFields,
        [&](std::string_view field, const std::string& fpath, int fline, const YAML::Node& v) {
          if (field == "name") {
            auto s = String(fpath, fline, v);
            if (!s) return;
            // Katib's spelling ("bayesianoptimization") and any case
            // are accepted and stored under the tuner's name.
            auto algorithm = tuner::ParseAlgorithm(*s);
            a->set_name(algorithm.ok() ? std::string(tuner::AlgorithmName(*algorithm)) : *s);
          } else if (field == "seed") {
            if (auto n = Int(fpath, fline, v, kSeedRule)) {
              a->set_seed(static_cast<uint64_t>(*n));
            }
          } else if (field == "settings") {
            LoadSettings(fpath, fline, v, a);
          }
        });
  }

  void LoadSettings(const std::string& path, int line, const YAML::Node& value,
                    v1::AlgorithmSpec* a) {
    if (!Mapping(path, line, value, "setting: value")) return;
    std::map<std::string, int> seen;
    for (auto it = value.begin(); it != value.end(); ++it) {
      int key_line = LineOf(it->first);
      if (!it->first.IsScalar()) {
        Error(key_line, path,
              absl::StrCat("setting names must be strings, got ", Describe(it->first)));
        continue;
      }
      const std::string& key = it->first.Scalar();
      std::string key_path = absl::StrCat(path, ".", key);
      auto [first, inserted] = seen.emplace(key, key_line);
      if (!inserted) {
        Error(key_line, "",
              absl::StrCat(ShowPath(key_path), ": duplicate setting (first set on line ",
                           first->second, ")"));
        continue;
      }
      RecordLine(key_path, key_line);
      if (!it->second.IsScalar()) {
        Error(key_line, key_path,
              absl::StrCat("must be a number or a string, got ", Describe(it->second)));
        continue;
      }
      (*a->mutable_settings())[key] = it->second.Scalar();
    }
  }

  void LoadEarlyStopping(const std::string& path, int line, const YAML::Node& value) {
    if (!Mapping(path, line, value, "rule, metric, ...")) return;
    std::map<std::string_view, Field> fields;
    ForEachField(
        value, path, kEarlyStoppingFields,
        [&](std::string_view field, const std::string& fpath, int fline, const YAML::Node& v) {
          fields[field] = Field{fpath, fline, v};
        });
    v1::EarlyStoppingSpec* e = spec_->mutable_early_stopping();
    auto rule_field = fields.find("rule");
    if (rule_field == fields.end()) {
      errors_->Add(path + ".rule", "required: median or asha");
      return;
    }
    const Field& r = rule_field->second;
    // Katib's name for the median rule is accepted and stored as ours.
    std::optional<size_t> rule = r.value.IsScalar() && r.value.Scalar() == "medianstop"
                                     ? std::optional<size_t>(0)
                                     : OneOf(r.path, r.line, r.value, kRules);
    if (!rule) return;
    const bool median = *rule == 0;
    e->set_rule(std::string(kRules[*rule]));
    if (median) {
      e->set_min_trials(kDefaultMinTrials);
      e->set_start_step(kDefaultStartStep);
    } else {
      e->set_min_resource(kDefaultMinResource);
      e->set_reduction_factor(kDefaultReductionFactor);
    }
    for (const auto& [field, f] : fields) {
      const bool median_field = field == "minTrials" || field == "startStep";
      const bool asha_field =
          field == "minResource" || field == "reductionFactor" || field == "maxResource";
      if ((median && asha_field) || (!median && median_field)) {
        Error(f.line, f.path, median ? "only for rule asha" : "only for rule median");
        continue;
      }
      if (field == "metric") {
        if (auto s = String(f.path, f.line, f.value)) e->set_metric(*s);
      } else if (field == "minTrials") {
        if (auto n = Int(f.path, f.line, f.value, kMinTrialsRule)) {
          e->set_min_trials(static_cast<int32_t>(*n));
        }
      } else if (field == "startStep") {
        if (auto n = Int(f.path, f.line, f.value, kStartStepRule)) e->set_start_step(*n);
      } else if (field == "minResource") {
        if (auto n = Int(f.path, f.line, f.value, kResourceRule)) e->set_min_resource(*n);
      } else if (field == "maxResource") {
        if (auto n = Int(f.path, f.line, f.value, kResourceRule)) e->set_max_resource(*n);
      } else if (field == "reductionFactor") {
        if (auto d = Double(f.path, f.line, f.value)) e->set_reduction_factor(*d);
      }
    }
  }

  void LoadCollector(const std::string& path, int line, const YAML::Node& value) {
    if (!Mapping(path, line, value, "kind, regex")) return;
    v1::MetricsCollector* c = spec_->mutable_metrics_collector();
    ForEachField(
        value, path, kCollectorFields,
        [&](std::string_view field, const std::string& fpath, int fline, const YAML::Node& v) {
          if (field == "kind") {
            if (auto i = OneOf(fpath, fline, v, kCollectorKinds)) {
              c->set_kind(std::string(kCollectorKinds[*i]));
            }
          } else if (field == "regex") {
            if (auto s = String(fpath, fline, v)) c->set_regex(*s);
          }
        });
  }

  v1::SweepSpec* spec_;
};

absl::StatusOr<ParsedSweepSpec> ParseSweepSpecOrThrow(std::string_view yaml) {
  auto root = common::spec_internal::LoadDocument(yaml, "sweep");
  if (!root.ok()) return root.status();
  if (!root->IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", LineOf(*root),
                     ": a sweep spec must be a mapping of fields (kind: Sweep, name: ..., "
                     "objective: ..., parameters: ..., trialTemplate: ...), got ",
                     Describe(*root)));
  }
  ParsedSweepSpec parsed;
  v1::SweepSpec& spec = parsed.spec;
  spec.set_parallel_trials(kDefaultParallelTrials);
  spec.set_max_trials(kDefaultMaxTrials);
  spec.mutable_metrics_collector()->set_kind("stdout");
  Errors errors(&parsed.lines);
  SweepLoader(&parsed, &errors).LoadRoot(*root);
  CheckSweepSpec(spec, &errors);
  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return parsed;
}

}  // namespace

std::string ParsedSweepSpec::Where(const std::string& path) const {
  auto it = lines.find(path);
  if (it == lines.end()) return path;
  return absl::StrCat("line ", it->second, ": ", path);
}

absl::StatusOr<ParsedSweepSpec> ParseSweepSpec(std::string_view yaml) {
  // yaml-cpp reports through exceptions, some outside parsing (conversions,
  // bad iterators); none may escape to the caller.
  try {
    return ParseSweepSpecOrThrow(yaml);
  } catch (const YAML::Exception& e) {
    return common::spec_internal::MalformedError(e);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("could not load spec: ", e.what()));
  }
}

void ApplySweepSpecDefaults(v1::SweepSpec* spec) {
  if (spec->parallel_trials() == 0) spec->set_parallel_trials(kDefaultParallelTrials);
  if (spec->max_trials() == 0) spec->set_max_trials(kDefaultMaxTrials);
  for (v1::ObjectiveSpec& o : *spec->mutable_objectives()) {
    if (o.mode() == v1::ObjectiveSpec::MODE_UNSPECIFIED) o.set_mode(v1::ObjectiveSpec::MODE_LAST);
  }
  MirrorFirstObjective(spec);
  if (spec->has_objective() && spec->objective().mode() == v1::ObjectiveSpec::MODE_UNSPECIFIED) {
    spec->mutable_objective()->set_mode(v1::ObjectiveSpec::MODE_LAST);
  }
  if (spec->metrics_collector().kind().empty()) {
    spec->mutable_metrics_collector()->set_kind("stdout");
  }
  if (spec->has_early_stopping()) {
    v1::EarlyStoppingSpec* e = spec->mutable_early_stopping();
    if (e->rule() == "median" && e->min_trials() == 0) e->set_min_trials(kDefaultMinTrials);
    if (e->rule() == "asha") {
      if (e->min_resource() == 0) e->set_min_resource(kDefaultMinResource);
      if (e->reduction_factor() == 0) e->set_reduction_factor(kDefaultReductionFactor);
    }
  }
  if (spec->has_trial_template()) {
    v1::JobSpec* job = spec->mutable_trial_template();
    if (job->name().empty()) job->set_name(spec->name());
    common::ApplyJobSpecDefaults(job);
  }
}

absl::Status ValidateSweepSpec(const v1::SweepSpec& spec) {
  const std::map<std::string, int> no_lines;
  Errors errors(&no_lines);
  CheckSweepSpec(spec, &errors);
  return errors.ToStatus();
}

absl::Status ValidateTrialCounts(int64_t parallel_trials, int64_t max_trials,
                                 int64_t max_failed_trials) {
  const std::map<std::string, int> no_lines;
  Errors errors(&no_lines);
  if (parallel_trials != 0) {
    CheckRange("parallelTrials", kParallelTrialsRule, parallel_trials, &errors);
  }
  if (max_trials != 0) CheckRange("maxTrials", kMaxTrialsRule, max_trials, &errors);
  if (max_failed_trials != 0) {
    CheckRange("maxFailedTrials", kMaxFailedTrialsRule, max_failed_trials, &errors);
  }
  return errors.ToStatus();
}

absl::StatusOr<tuner::SearchSpace> SearchSpaceOf(const v1::SweepSpec& spec) {
  const std::map<std::string, int> no_lines;
  Errors errors(&no_lines);
  std::optional<tuner::SearchSpace> space = CheckParameters(spec, &errors);
  if (!space) {
    absl::Status status = errors.ToStatus();
    return status.ok() ? absl::InvalidArgumentError("parameters: invalid") : status;
  }
  return *std::move(space);
}

std::string ExpandTrialParams(std::string_view text,
                              const google::protobuf::Map<std::string, std::string>& params) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find(kPlaceholderOpen, pos);
    size_t start = open == std::string_view::npos ? open : open + kPlaceholderOpen.size();
    size_t end = open == std::string_view::npos ? open : text.find('}', start);
    if (end == std::string_view::npos) break;
    auto it = params.find(std::string(text.substr(start, end - start)));
    if (it == params.end()) {
      out.append(text.substr(pos, end + 1 - pos));
    } else {
      out.append(text.substr(pos, open - pos));
      out.append(it->second);
    }
    pos = end + 1;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace gangway::coordinator
