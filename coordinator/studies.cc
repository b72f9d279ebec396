#include "coordinator/studies.h"

#include "absl/strings/str_cat.h"
#include "coordinator/sweep_controller.h"
#include "coordinator/sweep_spec.h"

namespace gangway::coordinator {

absl::StatusOr<v1::Study> Studies::Create(const v1::CreateStudyRequest& request) {
  if (studies_.size() >= kMaxStudies) {
    return absl::ResourceExhaustedError(absl::StrCat("at most ", kMaxStudies, " studies"));
  }
  // A study is a sweep without trials: the same validation applies.
  v1::SweepSpec spec;
  spec.set_name(request.name().empty() ? "study" : request.name());
  *spec.mutable_parameters() = request.parameters();
  *spec.mutable_objective() = request.objective();
  if (spec.objective().metric().empty()) spec.mutable_objective()->set_metric("objective");
  *spec.mutable_algorithm() = request.algorithm();
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
  if (request.count() < 1 || request.count() > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("count: 1-1000, got ", request.count()));
  }
  absl::StatusOr<std::vector<tuner::Proposal>> proposals = it->second.tuner.Ask(request.count());
  if (!proposals.ok()) return proposals.status();
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
    absl::StatusOr<tuner::Decision> d =
        t.ReportIntermediate(request.trial(), request.step(), request.value());
    if (!d.ok()) return d.status();
    out.set_stop(*d == tuner::Decision::kStop);
    return out;
  }
  absl::Status s =
      request.failed() ? t.TellFailed(request.trial()) : t.Tell(request.trial(), request.value());
  if (!s.ok()) return s;
  return out;
}

}  // namespace gangway::coordinator
