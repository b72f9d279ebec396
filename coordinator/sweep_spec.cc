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
#include "coordinator/sweep_spec_internal.h"
#include "coordinator/sweep_tuner_options.h"
#include "tuner/early_stopping.h"
#include "tuner/tuner.h"

namespace gangway::coordinator::sweep_internal {
namespace {

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
      e->set_min_trials(sweep_internal::kDefaultMinTrials);
      e->set_start_step(kDefaultStartStep);
    } else {
      e->set_min_resource(sweep_internal::kDefaultMinResource);
      e->set_reduction_factor(sweep_internal::kDefaultReductionFactor);
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
}  // namespace gangway::coordinator::sweep_internal

namespace gangway::coordinator {

std::string ParsedSweepSpec::Where(const std::string& path) const {
  auto it = lines.find(path);
  if (it == lines.end()) return path;
  return absl::StrCat("line ", it->second, ": ", path);
}

absl::StatusOr<ParsedSweepSpec> ParseSweepSpec(std::string_view yaml) {
  // yaml-cpp reports through exceptions, some outside parsing (conversions,
  // bad iterators); none may escape to the caller.
  try {
    return sweep_internal::ParseSweepSpecOrThrow(yaml);
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
    if (e->rule() == "median" && e->min_trials() == 0)
      e->set_min_trials(sweep_internal::kDefaultMinTrials);
    if (e->rule() == "asha") {
      if (e->min_resource() == 0) e->set_min_resource(sweep_internal::kDefaultMinResource);
      if (e->reduction_factor() == 0)
        e->set_reduction_factor(sweep_internal::kDefaultReductionFactor);
    }
  }
  if (spec->has_trial_template()) {
    v1::JobSpec* job = spec->mutable_trial_template();
    if (job->name().empty()) job->set_name(spec->name());
    common::ApplyJobSpecDefaults(job);
  }
}

}  // namespace gangway::coordinator
