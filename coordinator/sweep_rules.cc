// The rules on a sweep spec's values, shared by the YAML loader
// (sweep_spec.cc) and the checks on specs that arrive as protos
// (ValidateSweepSpec, UpdateSweep, the Studies service).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
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
#include "coordinator/sweep_spec.h"
#include "coordinator/sweep_spec_internal.h"
#include "coordinator/sweep_tuner_options.h"
#include "tuner/early_stopping.h"
#include "tuner/tuner.h"

namespace gangway::coordinator::sweep_internal {

bool IsMetricName(std::string_view s) {
  if (s.empty() || s.size() > kMaxMetricName) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '/' || c == '.';
  });
}

namespace {

bool IsParameterName(std::string_view s) {
  if (s.empty() || s.size() > kMaxParameterName || IsDigit(s.front())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace gangway::coordinator::sweep_internal

namespace gangway::coordinator {

using common::spec_internal::CheckRange;
using sweep_internal::CheckParameters;
using sweep_internal::CheckSweepSpec;
using sweep_internal::Errors;
using sweep_internal::kMaxFailedTrialsRule;
using sweep_internal::kMaxTrialsRule;
using sweep_internal::kParallelTrialsRule;
using sweep_internal::kPlaceholderOpen;

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