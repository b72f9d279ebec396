#include "coordinator/sweep_objectives.h"

#include <cmath>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "tuner/tuner.h"

namespace gangway::coordinator {

bool IsMultiObjective(const v1::SweepSpec& spec) { return spec.objectives_size() >= 2; }

std::vector<const v1::ObjectiveSpec*> ObjectivesOf(const v1::SweepSpec& spec) {
  std::vector<const v1::ObjectiveSpec*> out;
  if (IsMultiObjective(spec)) {
    for (const v1::ObjectiveSpec& o : spec.objectives()) out.push_back(&o);
  } else {
    out.push_back(&spec.objective());
  }
  return out;
}

void MirrorFirstObjective(v1::SweepSpec* spec) {
  if (spec->objectives_size() > 0 && !spec->has_objective()) {
    *spec->mutable_objective() = spec->objectives(0);
  }
}

std::optional<double> ReduceSeries(const v1::ObjectiveSpec& objective,
                                   const std::vector<double>& series) {
  std::optional<double> value;
  switch (objective.mode()) {
    case v1::ObjectiveSpec::MODE_UNSPECIFIED:
    case v1::ObjectiveSpec::MODE_LAST:
      if (!series.empty()) value = series.back();
      break;
    case v1::ObjectiveSpec::MODE_BEST:
    case v1::ObjectiveSpec::MODE_MIN:
    case v1::ObjectiveSpec::MODE_MAX: {
      const bool want_max =
          objective.mode() == v1::ObjectiveSpec::MODE_MAX ||
          (objective.mode() == v1::ObjectiveSpec::MODE_BEST && objective.maximize());
      for (double v : series) {
        if (!std::isfinite(v)) continue;
        if (!value || (want_max ? v > *value : v < *value)) value = v;
      }
      break;
    }
    case v1::ObjectiveSpec_Mode_ObjectiveSpec_Mode_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::ObjectiveSpec_Mode_ObjectiveSpec_Mode_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
  return value;
}

void CheckObjectiveList(const v1::SweepSpec& spec, common::spec_internal::Errors* errors) {
  const int n = spec.objectives_size();
  if (n == 0) return;
  if (n == 1) {
    errors->Add("objectives", "needs two or more objectives; use objective: for one");
    return;
  }
  if (n > static_cast<int>(tuner::kMaxObjectives)) {
    errors->Add("objectives",
                absl::StrCat("at most ", tuner::kMaxObjectives, " objectives, got ", n));
    return;
  }
  if (spec.has_objective() &&
      !google::protobuf::util::MessageDifferencer::Equals(spec.objective(), spec.objectives(0))) {
    errors->Add("objective", "give objective (one metric) or objectives (several), not both");
  }
  std::set<std::string> metrics;
  for (int i = 0; i < n; ++i) {
    const v1::ObjectiveSpec& o = spec.objectives(i);
    if (o.has_goal()) {
      errors->Add(absl::StrCat("objectives[", i, "].goal"),
                  "not supported with several objectives (a front has no single goal)");
    }
    if (!o.metric().empty() && !metrics.insert(o.metric()).second) {
      errors->Add(absl::StrCat("objectives[", i, "].metric"),
                  absl::StrCat("\"", o.metric(), "\" is listed twice"));
    }
  }
}

}  // namespace gangway::coordinator
