#include "coordinator/studies.h"

#include "absl/strings/str_cat.h"
#include "coordinator/sweep_controller.h"
#include "coordinator/sweep_spec.h"

namespace gangway::coordinator {

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
  *spec.mutable_objective() = request.objective();
  if (spec.objective().metric().empty()) spec.mutable_objective()->set_metric("objective");
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
  absl::StatusOr<tuner::SearchSpace> space = SearchSpaceOf(spec);
  if (!space.ok()) return space.status();
  absl::StatusOr<tuner::TunerOptions> options = TunerOptionsOf(spec);
  if (!options.ok()) return options.status();
  absl::StatusOr<tuner::Tuner> t = tuner::Tuner::Create(*std::move(space), *options);
  if (!t.ok()) return t.status();
  v1::Study study;
  study.set_id(absl::StrCat(spec.name(), "-", next_++));
  studies_.emplace(study.id(), Entry{spec.name(), *std::move(t)});
  return study;
}

absl::StatusOr<v1::AskResponse> Studies::Ask(const v1::AskRequest& request) {
  auto it = studies_.find(request.study_id());
  if (it == studies_.end()) {
    return absl::NotFoundError(absl::StrCat("no study named '", request.study_id(), "'"));
  }
  if (request.count() < 1 || request.count() > kMaxAskCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("count: must be between 1 and ", kMaxAskCount, ", got ", request.count()));
  }
  Entry& entry = it->second;
  if (entry.asked + request.count() > kMaxTrials) {
    return absl::ResourceExhaustedError(
        absl::StrCat("study '", request.study_id(), "' has handed out ", entry.asked,
                     " trials; a study may have at most ", kMaxTrials, " (create a new one)"));
  }
  absl::StatusOr<std::vector<tuner::Proposal>> proposals = entry.tuner.Ask(request.count());
  if (!proposals.ok()) return proposals.status();
  entry.asked += static_cast<int64_t>(proposals->size());
  v1::AskResponse out;
  const auto& params = it->second.tuner.space().parameters();
  for (const tuner::Proposal& p : *proposals) {
    v1::Proposal* o = out.add_proposals();
    o->set_trial(p.trial_id);
    for (size_t i = 0; i < params.size(); ++i) {
      // ParamText, not FormatValue: 6 digits could leave the bounds.
      (*o->mutable_params())[params[i].name] = ParamText(p.assignment[i]);
    }
  }
  return out;
}

absl::StatusOr<v1::TellResponse> Studies::Tell(const v1::TellRequest& request) {
  auto it = studies_.find(request.study_id());
  if (it == studies_.end()) {
    return absl::NotFoundError(absl::StrCat("no study named '", request.study_id(), "'"));
  }
  tuner::Tuner& t = it->second.tuner;
  v1::TellResponse out;
  if (request.intermediate()) {
    if (request.step() < 0 || request.step() > kMaxStep) {
      return absl::InvalidArgumentError(absl::StrCat("step: must be between 0 and ", kMaxStep,
                                                     " for an intermediate value, got ",
                                                     request.step()));
    }
    if (it->second.intermediate >= kMaxIntermediate) {
      return absl::ResourceExhaustedError(absl::StrCat("study '", request.study_id(), "' holds ",
                                                       kMaxIntermediate,
                                                       " intermediate values, the most it may"));
    }
    absl::StatusOr<tuner::Decision> d =
        t.ReportIntermediate(request.trial(), request.step(), request.value());
    if (!d.ok()) return d.status();
    ++it->second.intermediate;
    out.set_stop(*d == tuner::Decision::kStop);
    return out;
  }
  absl::Status s =
      request.failed() ? t.TellFailed(request.trial()) : t.Tell(request.trial(), request.value());
  if (!s.ok()) return s;
  return out;
}

}  // namespace gangway::coordinator
