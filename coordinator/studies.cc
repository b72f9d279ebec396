#include "coordinator/studies.h"

#include <span>

#include "absl/strings/str_cat.h"
#include "coordinator/sweep_controller.h"
#include "coordinator/sweep_objectives.h"
#include "coordinator/sweep_spec.h"

namespace gangway::coordinator {
namespace {

google::protobuf::Map<std::string, std::string> ParamsText(const tuner::Tuner& t,
                                                           const tuner::Assignment& assignment) {
  google::protobuf::Map<std::string, std::string> out;
  const auto& params = t.space().parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    // ParamText, not FormatValue: 6 digits could leave the bounds.
    out[params[i].name] = ParamText(assignment[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<v1::Study> Studies::Create(const v1::CreateStudyRequest& request) {
  if (studies_.size() >= kMaxStudies) {
    return absl::ResourceExhaustedError(absl::StrCat("at most ", kMaxStudies, " studies"));
  }
  if (request.name().size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: at most ", kMaxNameBytes, " bytes, got ", request.name().size()));
  }
  // A study is a sweep without trials: the same validation applies.
  v1::SweepSpec spec;
  spec.set_name(request.name().empty() ? "study" : request.name());
  *spec.mutable_parameters() = request.parameters();
  if (request.objectives_size() > 0) {
    // Metrics name nothing here (the caller tells values), but a sweep's
    // rules want them distinct.
    *spec.mutable_objectives() = request.objectives();
    for (int i = 0; i < spec.objectives_size(); ++i) {
      v1::ObjectiveSpec* o = spec.mutable_objectives(i);
      if (o->metric().empty()) o->set_metric(absl::StrCat("objective", i));
    }
    if (request.has_objective()) *spec.mutable_objective() = request.objective();
  } else {
    *spec.mutable_objective() = request.objective();
    if (spec.objective().metric().empty()) spec.mutable_objective()->set_metric("objective");
  }
  *spec.mutable_algorithm() = request.algorithm();
  // Every rule of a sweep spec, with what a study has not (trial template,
  // counts) filled in: the algorithm's settings are bounded there
  // (`candidates: 1000000000` allocated until the coordinator died), and a
  // grid may have as many points as a study may have trials.
  {
    v1::SweepSpec full = spec;
    full.set_name("study");  // names are free-form here, not DNS labels
    full.set_max_trials(static_cast<int32_t>(kMaxTrials));
    full.mutable_trial_template()->add_command("study");
    // A study without an algorithm samples at random (TunerOptionsOf).
    if (full.algorithm().name().empty()) full.mutable_algorithm()->set_name("random");
    ApplySweepSpecDefaults(&full);
    if (absl::Status s = ValidateSweepSpec(full); !s.ok()) return s;
  }
  MirrorFirstObjective(&spec);
  absl::StatusOr<tuner::SearchSpace> space = SearchSpaceOf(spec);
  if (!space.ok()) return space.status();
  absl::StatusOr<tuner::TunerOptions> options = TunerOptionsOf(spec);
  if (!options.ok()) return options.status();
  absl::StatusOr<tuner::Tuner> t = tuner::Tuner::Create(*std::move(space), *options);
  if (!t.ok()) return t.status();
  v1::Study study;
  study.set_id(absl::StrCat(spec.name(), "-", next_++));
  studies_.emplace(study.id(), Entry{spec.name(), *std::move(t), 0, 0, AskPace{}});
  return study;
}

absl::StatusOr<Studies::Entry*> Studies::Find(const std::string& id) {
  auto it = studies_.find(id);
  if (it == studies_.end()) return absl::NotFoundError(absl::StrCat("no study named '", id, "'"));
  return &it->second;
}

absl::StatusOr<v1::AskResponse> Studies::Ask(const v1::AskRequest& request) {
  absl::StatusOr<Entry*> found = Find(request.study_id());
  if (!found.ok()) return found.status();
  if (request.count() < 1 || request.count() > kMaxAskCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("count: must be between 1 and ", kMaxAskCount, ", got ", request.count()));
  }
  Entry& entry = **found;
  if (entry.asked + request.count() > kMaxTrials) {
    return absl::ResourceExhaustedError(
        absl::StrCat("study '", request.study_id(), "' has handed out ", entry.asked,
                     " trials; a study may have at most ", kMaxTrials, " (create a new one)"));
  }
  const int count = now_ms_ ? entry.pace.Cap(request.count()) : request.count();
  const int64_t asked_ms = now_ms_ ? now_ms_() : 0;
  absl::StatusOr<std::vector<tuner::Proposal>> proposals = entry.tuner.Ask(count);
  if (!proposals.ok()) return proposals.status();
  if (now_ms_) entry.pace.Record(static_cast<int>(proposals->size()), now_ms_() - asked_ms);
  entry.asked += static_cast<int64_t>(proposals->size());
  v1::AskResponse out;
  for (const tuner::Proposal& p : *proposals) {
    v1::Proposal* o = out.add_proposals();
    o->set_trial(p.trial_id);
    *o->mutable_params() = ParamsText(entry.tuner, p.assignment);
  }
  return out;
}

absl::StatusOr<v1::TellResponse> Studies::Tell(const v1::TellRequest& request) {
  absl::StatusOr<Entry*> found = Find(request.study_id());
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  tuner::Tuner& t = entry.tuner;
  v1::TellResponse out;
  if (request.intermediate()) {
    if (request.step() < 0 || request.step() > kMaxStep) {
      return absl::InvalidArgumentError(absl::StrCat("step: must be between 0 and ", kMaxStep,
                                                     " for an intermediate value, got ",
                                                     request.step()));
    }
    if (entry.intermediate >= kMaxIntermediate) {
      return absl::ResourceExhaustedError(absl::StrCat("study '", request.study_id(), "' holds ",
                                                       kMaxIntermediate,
                                                       " intermediate values, the most it may"));
    }
    absl::StatusOr<tuner::Decision> d =
        t.ReportIntermediate(request.trial(), request.step(), request.value());
    if (!d.ok()) return d.status();
    ++entry.intermediate;
    out.set_stop(*d == tuner::Decision::kStop);
    return out;
  }
  if (request.failed()) {
    if (absl::Status s = t.TellFailed(request.trial()); !s.ok()) return s;
    return out;
  }
  const int n = t.objective_count();
  if (n >= 2 && request.values_size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "values: study '", request.study_id(), "' has ", n, " objectives, so Tell needs ", n,
        " values in their order, got ", request.values_size()));
  }
  if (n == 1 && request.values_size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("values: study '", request.study_id(),
                                                   "' has one objective; got ",
                                                   request.values_size(), " values"));
  }
  absl::Status s = request.values_size() > 0
                       ? t.Tell(request.trial(), std::span<const double>(request.values().data(),
                                                                         request.values_size()))
                       : t.Tell(request.trial(), request.value());
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::BestTrialsResponse> Studies::BestTrials(const v1::BestTrialsRequest& request) {
  absl::StatusOr<Entry*> found = Find(request.study_id());
  if (!found.ok()) return found.status();
  const tuner::Tuner& t = (*found)->tuner;
  v1::BestTrialsResponse out;
  for (const tuner::BestTrial& b : t.pareto_front()) {
    v1::StudyTrial* trial = out.add_trials();
    trial->set_trial(b.trial_id);
    *trial->mutable_params() = ParamsText(t, b.assignment);
    if (b.objectives.empty()) {
      trial->add_values(b.objective);
    } else {
      for (double v : b.objectives) trial->add_values(v);
    }
  }
  return out;
}

}  // namespace gangway::coordinator
