#include "coordinator/sweep_tuner_options.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/sweep_objectives.h"

namespace gangway::coordinator {
namespace {

constexpr std::array<std::string_view, 4> kTransforms = {"auto", "standardize", "copula",
                                                         "logshift"};
constexpr std::array<SettingRule, 1> kGridSettings = {{{"gridPointsPerDouble", 10'000}}};
constexpr std::array<SettingRule, 3> kBayesianSettings = {{
    {"initialPoints", 100'000},
    {"candidates", 1 << 20},
    {"transform", 0, kTransforms},
}};

constexpr std::array<SettingRule, 2> kHyperbandSettings = {{
    {"resourceParameter", 0, {}, 0, true},
    {"reductionFactor", 100, {}, 2},
}};

constexpr std::array<SettingRule, 1> kNsga2Settings = {{{"population", 10'000, {}, 2}}};

constexpr std::array<SettingRule, 4> kPbtSettings = {{
    {"checkpointRoot", 0, {}, 0, true},
    {"population", 1000, {}, 2},
    {"truncationPercent", 50, {}, 1},
    {"resamplePercent", 100, {}, 0},
}};

}  // namespace

std::span<const SettingRule> AlgorithmSettings(tuner::Algorithm algorithm) {
  switch (algorithm) {
    case tuner::Algorithm::kGrid:
      return kGridSettings;
    case tuner::Algorithm::kBayesian:
      return kBayesianSettings;
    case tuner::Algorithm::kHyperband:
      return kHyperbandSettings;
    case tuner::Algorithm::kNsga2:
      return kNsga2Settings;
    case tuner::Algorithm::kPbt:
      return kPbtSettings;
    case tuner::Algorithm::kRandom:
    case tuner::Algorithm::kSobol:
    case tuner::Algorithm::kTpe:
    case tuner::Algorithm::kMultivariateTpe:
    case tuner::Algorithm::kCmaEs:
      break;
  }
  return {};
}

std::optional<int64_t> ParseSettingInt(std::string_view text, int64_t max) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  if (text.size() > 1 && text.front() == '0') return std::nullopt;
  int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  if (v > max) return std::nullopt;
  return v;
}

absl::StatusOr<tuner::TunerOptions> TunerOptionsOf(const v1::SweepSpec& spec) {
  tuner::TunerOptions o;
  absl::StatusOr<tuner::Algorithm> algorithm =
      tuner::ParseAlgorithm(spec.algorithm().name().empty() ? "random" : spec.algorithm().name());
  if (!algorithm.ok()) return algorithm.status();
  o.algorithm = *algorithm;
  o.direction =
      spec.objective().maximize() ? tuner::Direction::kMaximize : tuner::Direction::kMinimize;
  o.seed = spec.algorithm().seed();
  if (IsMultiObjective(spec)) {
    for (const v1::ObjectiveSpec& objective : spec.objectives()) {
      o.objectives.push_back(objective.maximize() ? tuner::Direction::kMaximize
                                                  : tuner::Direction::kMinimize);
    }
  }
  for (const auto& [key, value] : spec.algorithm().settings()) {
    int n = 0;
    // Init-captures: clang before 16 cannot capture a structured binding.
    auto number = [&key = key, &value = value](int* out) -> absl::Status {
      if (!absl::SimpleAtoi(value, out) || *out < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "algorithm.settings.", key, ": must be a whole number >= 0, got \"", value, "\""));
      }
      return absl::OkStatus();
    };
    if (key == "gridPointsPerDouble") {
      if (auto s = number(&n); !s.ok()) return s;
      o.grid.points_per_double = n;
    } else if (key == "initialPoints") {
      if (auto s = number(&n); !s.ok()) return s;
      o.bayesian.initial_points = n;
    } else if (key == "candidates") {
      if (auto s = number(&n); !s.ok()) return s;
      o.bayesian.candidates = n;
    } else if (key == "resourceParameter") {
      o.hyperband.resource_parameter = value;
    } else if (key == "population") {
      if (auto s = number(&n); !s.ok()) return s;
      o.nsga2.population = n;
      o.pbt.population = n;
    } else if (key == "truncationPercent") {
      if (auto s = number(&n); !s.ok()) return s;
      o.pbt.truncation = n / 100.0;
    } else if (key == "resamplePercent") {
      if (auto s = number(&n); !s.ok()) return s;
      o.pbt.resample_probability = n / 100.0;
    } else if (key == "checkpointRoot") {
      // Used by the controller (SetCheckpointEnv), not the tuner.
    } else if (key == "reductionFactor") {
      if (auto s = number(&n); !s.ok()) return s;
      o.hyperband.reduction_factor = n;
    } else if (key == "transform") {
      if (value == "auto") {
        o.bayesian.transform = tuner::OutputTransform::kAuto;
      } else if (value == "standardize") {
        o.bayesian.transform = tuner::OutputTransform::kStandardize;
      } else if (value == "copula") {
        o.bayesian.transform = tuner::OutputTransform::kCopula;
      } else if (value == "logshift") {
        o.bayesian.transform = tuner::OutputTransform::kLogShift;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "algorithm.settings.transform: auto, standardize, copula or logshift, got \"", value,
            "\""));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("algorithm.settings.", key, ": unknown setting"));
    }
  }
  const auto& es = spec.early_stopping();
  if (es.rule() == "median") {
    tuner::MedianStoppingOptions m;
    if (es.min_trials() > 0) m.min_trials = es.min_trials();
    // startStep 0 is a valid choice (decide from the first step on), and
    // the spec already holds the default (4) when none was given: taking
    // only values > 0 turned an explicit 0 into 4.
    m.start_step = es.start_step();
    o.early_stopping = m;
  } else if (es.rule() == "asha") {
    tuner::AshaOptions a;
    if (es.min_resource() > 0) a.min_resource = es.min_resource();
    if (es.reduction_factor() > 0) a.reduction_factor = es.reduction_factor();
    a.max_resource = es.max_resource();
    o.early_stopping = a;
  } else if (!es.rule().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("earlyStopping.rule: median or asha, got \"", es.rule(), "\""));
  }
  return o;
}

absl::Status CheckAlgorithmAgainstSpace(const v1::SweepSpec& spec,
                                        const tuner::SearchSpace& space) {
  absl::StatusOr<tuner::TunerOptions> o = TunerOptionsOf(spec);
  if (!o.ok()) return absl::OkStatus();
  if (o->algorithm == tuner::Algorithm::kPbt) {
    const auto& settings = spec.algorithm().settings();
    auto root = settings.find("checkpointRoot");
    if (root == settings.end() || root->second.empty() || root->second.front() != '/') {
      return absl::InvalidArgumentError(
          "algorithm.settings.checkpointRoot: required for pbt: an absolute directory every "
          "node sees (shared storage), under which each trial gets its checkpoint directory");
    }
    return tuner::Tuner::Create(space, *o).status();
  }
  if (o->algorithm == tuner::Algorithm::kHyperband) {
    return tuner::HyperbandSchedule(space, o->hyperband).status();
  }
  // Which algorithms take several objectives, and without early stopping,
  // is the tuner's rule.
  // (A grid's own errors are reported by the grid checks.)
  if (IsMultiObjective(spec) && spec.objectives_size() <= int{tuner::kMaxObjectives} &&
      o->algorithm != tuner::Algorithm::kGrid) {
    return tuner::Tuner::Create(space, *o).status();
  }
  return absl::OkStatus();
}

void SetCheckpointEnv(const v1::Sweep& sweep, v1::Trial* trial, v1::JobSpec* job) {
  const auto& settings = sweep.spec().algorithm().settings();
  auto root = settings.find("checkpointRoot");
  if (sweep.spec().algorithm().name() != "pbt" || root == settings.end()) return;
  auto dir = [&](int64_t number) {
    std::string base = root->second;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    return absl::StrCat(base, "/", sweep.id(), "/", number);
  };
  trial->set_checkpoint_dir(dir(trial->number()));
  (*job->mutable_env())["GANGWAY_CHECKPOINT_DIR"] = trial->checkpoint_dir();
  if (trial->parent_trial() > 0) {
    (*job->mutable_env())["GANGWAY_PARENT_CHECKPOINT_DIR"] = dir(trial->parent_trial());
  }
}

}  // namespace gangway::coordinator
