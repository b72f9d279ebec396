#include "coordinator/sweep_controller.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "coordinator/ask_pace.h"
#include "coordinator/job_state.h"
#include "coordinator/sweep_objectives.h"
#include "coordinator/sweep_tuner_options.h"

namespace gangway::coordinator {
namespace {

bool IsTrialTerminal(v1::TrialState s) {
  switch (s) {
    case v1::TRIAL_STATE_SUCCEEDED:
    case v1::TRIAL_STATE_FAILED:
    case v1::TRIAL_STATE_EARLY_STOPPED:
    case v1::TRIAL_STATE_METRICS_UNAVAILABLE:
    case v1::TRIAL_STATE_CANCELLED:
      return true;
    case v1::TRIAL_STATE_UNSPECIFIED:
    case v1::TRIAL_STATE_PENDING:
    case v1::TRIAL_STATE_RUNNING:
    case v1::TrialState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::TrialState_INT_MAX_SENTINEL_DO_NOT_USE_:
      return false;
  }
  return false;
}

bool CountsAsFailed(v1::TrialState s) {
  return s == v1::TRIAL_STATE_FAILED || s == v1::TRIAL_STATE_METRICS_UNAVAILABLE;
}

// Marks a trial the early-stopping rule stopped; stored with the trial so the
// verdict survives a coordinator restart while its job is being stopped.
constexpr char kEarlyStopPrefix[] = "early stopped";

bool WasEarlyStopped(const v1::Trial& t) { return t.reason().rfind(kEarlyStopPrefix, 0) == 0; }

std::set<std::string> ObjectiveMetrics(const v1::SweepSpec& spec) {
  std::set<std::string> out;
  for (const v1::ObjectiveSpec* o : ObjectivesOf(spec)) out.insert(o->metric());
  return out;
}

std::string EarlyStoppingMetric(const v1::SweepSpec& spec) {
  return spec.early_stopping().metric().empty() ? spec.objective().metric()
                                                : spec.early_stopping().metric();
}

}  // namespace

struct SweepController::Rec {
  v1::Sweep sweep;
  std::optional<tuner::Tuner> tuner;
  std::map<std::string, int> trial_of_job;  // job id -> index in sweep.trials
  // Per job, each objective metric's finite and non-finite values, in
  // report order.
  std::map<std::string, std::map<std::string, std::vector<double>>> objective_series;
  AskPace pace;
};

SweepController::SweepController(TrialHost* host) : host_(host) {}
SweepController::~SweepController() = default;

std::string ParamText(const tuner::ParameterValue& value) {
  // tuner::FormatValue prints doubles with 6 significant digits: a value of
  // a parameter whose bounds need more (min 100.0001, max 100.0009) came out
  // as "100.001", outside its bounds; trials showed and ran with a value the
  // tuner never proposed, and Recover() refused the stored sweep (DATA_LOSS)
  // when it replayed it. 15 digits keep every value inside bounds written
  // with up to 15 (rounding is monotonic) and still print 0.1 + 0.2 as 0.3.
  if (const double* d = std::get_if<double>(&value)) return absl::StrFormat("%.15g", *d);
  return tuner::FormatValue(value);
}

absl::StatusOr<tuner::Assignment> AssignmentOf(
    const tuner::SearchSpace& space,
    const google::protobuf::Map<std::string, std::string>& params) {
  tuner::Assignment out;
  for (const tuner::ParameterSpec& p : space.parameters()) {
    auto it = params.find(p.name);
    if (it == params.end()) {
      return absl::InvalidArgumentError(absl::StrCat("params: no value for ", p.name));
    }
    const std::string& text = it->second;
    bool ok = true;
    if (std::holds_alternative<tuner::DoubleDomain>(p.domain) ||
        std::holds_alternative<tuner::DiscreteDomain>(p.domain)) {
      double v;
      ok = absl::SimpleAtod(text, &v);
      out.emplace_back(v);
    } else if (std::holds_alternative<tuner::IntDomain>(p.domain)) {
      int64_t v;
      ok = absl::SimpleAtoi(text, &v);
      out.emplace_back(v);
    } else {
      out.emplace_back(text);
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("params.", p.name, ": \"", text, "\" is not a number"));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<SweepController::Rec>> SweepController::MakeRec(v1::Sweep sweep) {
  absl::StatusOr<tuner::SearchSpace> space = SearchSpaceOf(sweep.spec());
  if (!space.ok()) return space.status();
  absl::StatusOr<tuner::TunerOptions> options = TunerOptionsOf(sweep.spec());
  if (!options.ok()) return options.status();
  absl::StatusOr<tuner::Tuner> t = tuner::Tuner::Create(*std::move(space), *options);
  if (!t.ok()) return t.status();
  auto rec = std::make_unique<Rec>();
  rec->sweep = std::move(sweep);
  rec->tuner.emplace(*std::move(t));
  return rec;
}

SweepController::Rec* SweepController::Find(const std::string& id) {
  auto it = sweeps_.find(id);
  return it == sweeps_.end() ? nullptr : it->second.get();
}

void SweepController::MarkChanged(Rec& rec) { changed_.insert(rec.sweep.id()); }

std::vector<const v1::Sweep*> SweepController::Changed() {
  std::vector<const v1::Sweep*> out;
  for (const std::string& id : changed_) {
    if (Rec* rec = Find(id)) out.push_back(&rec->sweep);
  }
  return out;
}

void SweepController::Forget(const std::string& id) {
  Rec* rec = Find(id);
  if (!rec) return;
  for (const v1::Trial& t : rec->sweep.trials()) job_to_sweep_.erase(t.job_id());
  changed_.erase(id);
  sweeps_.erase(id);
}

// ---------------------------------------------------------------------------
// Recovery

absl::Status SweepController::Recover(
    std::vector<v1::Sweep> sweeps,
    const std::function<absl::StatusOr<std::vector<v1::MetricPoint>>(const std::string&)>&
        metrics_of) {
  for (v1::Sweep& stored : sweeps) {
    const std::string id = stored.id();
    absl::StatusOr<std::unique_ptr<Rec>> made = MakeRec(std::move(stored));
    if (!made.ok()) {
      return absl::DataLossError(
          absl::StrCat("sweep ", id, " in the store: ", made.status().message()));
    }
    Rec& rec = **made;
    std::vector<int> order(rec.sweep.trials_size());
    for (int i = 0; i < rec.sweep.trials_size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      return rec.sweep.trials(a).number() < rec.sweep.trials(b).number();
    });
    for (int i : order) {
      const v1::Trial& t = rec.sweep.trials(i);
      const int64_t tid = t.number() - 1;
      absl::StatusOr<tuner::Assignment> a = AssignmentOf(rec.tuner->space(), t.params());
      if (!a.ok())
        return absl::DataLossError(absl::StrCat("sweep ", id, ": ", a.status().message()));
      if (absl::Status s = rec.tuner->Register(tid, *a); !s.ok()) {
        return absl::DataLossError(
            absl::StrCat("sweep ", id, " trial ", t.number(), ": ", s.message()));
      }
      rec.trial_of_job[t.job_id()] = i;
      job_to_sweep_[t.job_id()] = id;
      if (IsTrialTerminal(t.state())) {
        const bool has_value = (t.state() == v1::TRIAL_STATE_SUCCEEDED ||
                                t.state() == v1::TRIAL_STATE_EARLY_STOPPED) &&
                               t.has_objective() && std::isfinite(t.objective());
        std::vector<double> values = {t.objective()};
        if (IsMultiObjective(rec.sweep.spec())) {
          values.assign(t.objective_values().begin(), t.objective_values().end());
        }
        // A value count that does not fit (a damaged record) is told failed
        // by the tuner's refusal below.
        if (!has_value || !rec.tuner->Tell(tid, values).ok()) (void)rec.tuner->TellFailed(tid);
        continue;
      }
      // A running trial: its series come back from the stored points.
      absl::StatusOr<std::vector<v1::MetricPoint>> points = metrics_of(t.job_id());
      if (!points.ok()) return points.status();
      const std::set<std::string> objectives = ObjectiveMetrics(rec.sweep.spec());
      const std::string es = EarlyStoppingMetric(rec.sweep.spec());
      const bool stopping = !rec.sweep.spec().early_stopping().rule().empty();
      for (const v1::MetricPoint& p : *points) {
        if (objectives.count(p.name()) > 0) {
          rec.objective_series[t.job_id()][p.name()].push_back(p.value());
        }
        if (stopping && p.name() == es && p.step() >= 0 && std::isfinite(p.value())) {
          (void)rec.tuner->ReportIntermediate(tid, p.step(), p.value());
        }
      }
    }
    // The front (or best trial) as the replayed history has it.
    UpdateBest(rec);
    sweeps_.emplace(id, std::move(*made));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Control

absl::StatusOr<v1::Sweep> SweepController::Submit(const v1::SubmitSweepRequest& request,
                                                  const std::string& owner) {
  v1::SweepSpec spec;
  if (!request.yaml().empty()) {
    absl::StatusOr<ParsedSweepSpec> parsed = ParseSweepSpec(request.yaml());
    if (!parsed.ok()) return parsed.status();
    spec = std::move(parsed->spec);
  } else {
    spec = request.spec();
    ApplySweepSpecDefaults(&spec);
    if (absl::Status s = ValidateSweepSpec(spec); !s.ok()) return s;
  }
  v1::Sweep sweep;
  const int64_t seq = host_->NextSeq();
  sweep.set_id(absl::StrCat(spec.name(), "-", seq));
  sweep.set_seq(seq);
  sweep.set_create_time_ms(host_->NowMs());
  sweep.set_state(v1::SWEEP_STATE_RUNNING);
  sweep.set_reason("starting trials");
  sweep.set_owner(owner);
  *sweep.mutable_spec() = std::move(spec);
  absl::StatusOr<std::unique_ptr<Rec>> rec = MakeRec(std::move(sweep));
  if (!rec.ok()) return rec.status();
  const std::string id = (*rec)->sweep.id();
  Rec& r = *sweeps_.emplace(id, std::move(*rec)).first->second;
  MarkChanged(r);
  GW_LOG_INFO("sweep={} submitted algorithm={} maxTrials={}", id, r.sweep.spec().algorithm().name(),
              r.sweep.spec().max_trials());
  return r.sweep;
}

std::string SweepController::Owner(const std::string& id) const {
  auto it = sweeps_.find(id);
  return it == sweeps_.end() ? std::string() : it->second->sweep.owner();
}

absl::StatusOr<v1::Sweep> SweepController::Get(const std::string& id) const {
  auto it = sweeps_.find(id);
  if (it == sweeps_.end()) return absl::NotFoundError(absl::StrCat("no sweep named '", id, "'"));
  return it->second->sweep;
}

std::vector<v1::Sweep> SweepController::List(bool all) const {
  std::vector<v1::Sweep> out;
  for (const auto& [id, rec] : sweeps_) {
    if (all || rec->sweep.state() == v1::SWEEP_STATE_RUNNING) out.push_back(rec->sweep);
  }
  std::sort(out.begin(), out.end(),
            [](const v1::Sweep& a, const v1::Sweep& b) { return a.seq() < b.seq(); });
  return out;
}

void SweepController::ForEachSweep(const std::function<void(const v1::Sweep&)>& fn) const {
  for (const auto& [id, rec] : sweeps_) fn(rec->sweep);
}

absl::StatusOr<v1::Sweep> SweepController::Cancel(const std::string& id) {
  Rec* rec = Find(id);
  if (!rec) return absl::NotFoundError(absl::StrCat("no sweep named '", id, "'"));
  if (rec->sweep.state() != v1::SWEEP_STATE_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("sweep '", id, "' has already ended"));
  }
  Finish(*rec, v1::SWEEP_STATE_CANCELLED, "cancelled");
  return rec->sweep;
}

absl::StatusOr<v1::Sweep> SweepController::Update(const v1::UpdateSweepRequest& request) {
  Rec* rec = Find(request.id());
  if (!rec) return absl::NotFoundError(absl::StrCat("no sweep named '", request.id(), "'"));
  v1::SweepSpec& spec = *rec->sweep.mutable_spec();
  if (request.parallel_trials() < 0 || request.max_trials() < 0 ||
      request.max_failed_trials() < 0) {
    return absl::InvalidArgumentError("parallelTrials, maxTrials and maxFailedTrials must be >= 0");
  }
  if (absl::Status s = ValidateTrialCounts(request.parallel_trials(), request.max_trials(),
                                           request.max_failed_trials());
      !s.ok()) {
    return s;
  }
  if (request.max_trials() > 0 && request.max_trials() < rec->sweep.trials_size()) {
    return absl::InvalidArgumentError(absl::StrCat("maxTrials: ", rec->sweep.trials_size(),
                                                   " trials exist already; got ",
                                                   request.max_trials()));
  }
  if (rec->sweep.state() == v1::SWEEP_STATE_CANCELLED) {
    return absl::FailedPreconditionError(
        absl::StrCat("sweep '", request.id(), "' was cancelled; submit a new one"));
  }
  if (request.parallel_trials() > 0) spec.set_parallel_trials(request.parallel_trials());
  if (request.max_trials() > 0) spec.set_max_trials(request.max_trials());
  if (request.max_failed_trials() > 0) spec.set_max_failed_trials(request.max_failed_trials());
  // Only more trials (or, for a sweep that failed, more room for failures)
  // reopen a finished sweep; a new parallelTrials alone leaves it finished.
  const bool extends =
      (request.max_trials() > rec->sweep.trials_size()) ||
      (rec->sweep.state() == v1::SWEEP_STATE_FAILED && request.max_failed_trials() > 0);
  if (rec->sweep.state() != v1::SWEEP_STATE_RUNNING && extends) {
    // Extending a finished sweep: its history stays in the tuner.
    rec->sweep.set_state(v1::SWEEP_STATE_RUNNING);
    rec->sweep.set_reason("extended");
    rec->sweep.set_end_time_ms(0);
  }
  MarkChanged(*rec);
  return rec->sweep;
}

std::optional<v1::MetricsCollector> SweepController::CollectorFor(
    const std::string& sweep_id) const {
  auto it = sweeps_.find(sweep_id);
  if (it == sweeps_.end()) return std::nullopt;
  const v1::SweepSpec& spec = it->second->sweep.spec();
  v1::MetricsCollector c = spec.metrics_collector();
  if (c.kind().empty()) c.set_kind("stdout");
  c.clear_names();
  std::set<std::string> names = ObjectiveMetrics(spec);
  for (const v1::ObjectiveSpec* o : ObjectivesOf(spec)) {
    for (const auto& m : o->additional_metrics()) names.insert(m);
  }
  if (!spec.early_stopping().rule().empty()) names.insert(EarlyStoppingMetric(spec));
  for (const auto& n : names) c.add_names(n);
  return c;
}

// ---------------------------------------------------------------------------
// Trials

void SweepController::StartTrial(Rec& rec, const tuner::Proposal& proposal) {
  const v1::SweepSpec& spec = rec.sweep.spec();
  v1::Trial* trial = rec.sweep.add_trials();
  trial->set_number(proposal.trial_id + 1);
  trial->set_state(v1::TRIAL_STATE_PENDING);
  trial->set_create_time_ms(host_->NowMs());
  const auto& params = rec.tuner->space().parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    (*trial->mutable_params())[params[i].name] = ParamText(proposal.assignment[i]);
  }
  // The tuner goes on from the values as stored (15 digits), as a replay
  // after a restart would.
  if (absl::StatusOr<tuner::Assignment> stored = AssignmentOf(rec.tuner->space(), trial->params());
      stored.ok()) {
    (void)rec.tuner->Amend(proposal.trial_id, *stored);
  }
  v1::JobSpec job = spec.trial_template();
  if (job.name().empty()) job.set_name(spec.name());
  job.set_trial(absl::StrCat(rec.sweep.id(), "-", trial->number()));
  *job.mutable_params() = trial->params();
  // The trial's job shows its real command line, not the template's holes.
  for (auto& c : *job.mutable_command()) c = ExpandTrialParams(c, trial->params());
  for (auto& a : *job.mutable_args()) a = ExpandTrialParams(a, trial->params());
  for (auto& [k, v] : *job.mutable_env()) v = ExpandTrialParams(v, trial->params());
  job.set_working_dir(ExpandTrialParams(job.working_dir(), trial->params()));
  if (proposal.parent) trial->set_parent_trial(*proposal.parent + 1);
  SetCheckpointEnv(rec.sweep, trial, &job);
  const std::string job_id = host_->CreateTrialJob(std::move(job), rec.sweep.id());
  trial->set_job_id(job_id);
  rec.trial_of_job[job_id] = rec.sweep.trials_size() - 1;
  job_to_sweep_[job_id] = rec.sweep.id();
}

void SweepController::Fill(Rec& rec) {
  const v1::SweepSpec& spec = rec.sweep.spec();
  int active = 0, failed = 0;
  for (const v1::Trial& t : rec.sweep.trials()) {
    // A trial cancelled as its sweep ended is over before its job has
    // stopped; until then the job still runs. A sweep extended meanwhile
    // started parallelTrials new jobs beside the stopping ones.
    active += !IsTrialTerminal(t.state()) || host_->TrialJobLive(t.job_id());
    failed += CountsAsFailed(t.state());
  }
  if (failed > spec.max_failed_trials()) {
    Finish(rec, v1::SWEEP_STATE_FAILED,
           absl::StrCat(failed, " trials failed, more than maxFailedTrials ",
                        spec.max_failed_trials()));
    return;
  }
  const int created = rec.sweep.trials_size();
  const bool done_creating = created >= spec.max_trials() || rec.tuner->exhausted();
  if (done_creating) {
    if (active == 0) {
      Finish(rec, v1::SWEEP_STATE_SUCCEEDED,
             rec.tuner->exhausted() && created < spec.max_trials()
                 ? absl::StrCat("the grid is done (", created, " trials)")
                 : absl::StrCat("maxTrials (", spec.max_trials(), ") ran"));
    }
    return;
  }
  const int n = std::min(spec.parallel_trials() - active, spec.max_trials() - created);
  if (n <= 0) return;
  const int64_t asked_ms = host_->NowMs();
  absl::StatusOr<std::vector<tuner::Proposal>> proposals = rec.tuner->Ask(rec.pace.Cap(n));
  if (proposals.ok()) {
    rec.pace.Record(static_cast<int>(proposals->size()), host_->NowMs() - asked_ms);
  }
  if (!proposals.ok()) {
    Finish(rec, v1::SWEEP_STATE_FAILED,
           absl::StrCat("the tuner failed: ", proposals.status().message()));
    return;
  }
  for (const tuner::Proposal& p : *proposals) StartTrial(rec, p);
  if (!proposals->empty()) {
    rec.sweep.set_reason(
        absl::StrCat(rec.sweep.trials_size(), " of ", spec.max_trials(), " trials created"));
    MarkChanged(rec);
  } else if (active == 0) {
    Finish(rec, v1::SWEEP_STATE_SUCCEEDED, absl::StrCat("the grid is done (", created, " trials)"));
  }
}

void SweepController::Reconcile() {
  for (auto& [id, rec] : sweeps_) {
    if (rec->sweep.state() == v1::SWEEP_STATE_RUNNING) Fill(*rec);
  }
}

void SweepController::Finish(Rec& rec, v1::SweepState state, std::string reason) {
  GW_LOG_INFO("sweep={} ends: {}", rec.sweep.id(), reason);
  rec.sweep.set_state(state);
  rec.sweep.set_reason(std::move(reason));
  rec.sweep.set_end_time_ms(host_->NowMs());
  MarkChanged(rec);
  // Trials still going end with the sweep, so what a watcher sees last is
  // final; their jobs are stopped (and their results, if any, not used).
  const std::string why = absl::StrCat("sweep ", rec.sweep.id(), " ended");
  for (v1::Trial& t : *rec.sweep.mutable_trials()) {
    if (IsTrialTerminal(t.state())) continue;
    t.set_state(v1::TRIAL_STATE_CANCELLED);
    t.set_reason(why);
    t.set_end_time_ms(host_->NowMs());
    (void)rec.tuner->TellFailed(t.number() - 1);
    host_->StopTrialJob(t.job_id(), why);
  }
}

bool SweepController::OnMetrics(const v1::Job& job, const std::vector<v1::MetricPoint>& points) {
  auto s = job_to_sweep_.find(job.id());
  if (s == job_to_sweep_.end()) return false;
  Rec& rec = *sweeps_.at(s->second);
  v1::Trial& trial = *rec.sweep.mutable_trials(rec.trial_of_job.at(job.id()));
  if (IsTrialTerminal(trial.state())) return false;
  const v1::SweepSpec& spec = rec.sweep.spec();
  const std::set<std::string> objectives = ObjectiveMetrics(spec);
  const std::string es = EarlyStoppingMetric(spec);
  const bool stopping = !spec.early_stopping().rule().empty();
  bool stop = WasEarlyStopped(trial);
  for (const v1::MetricPoint& p : points) {
    if (objectives.count(p.name()) > 0) {
      rec.objective_series[job.id()][p.name()].push_back(p.value());
    }
    (*trial.mutable_metrics())[p.name()] = p.value();
    if (stop || !stopping || p.name() != es || p.step() < 0 || !std::isfinite(p.value())) continue;
    absl::StatusOr<tuner::Decision> d =
        rec.tuner->ReportIntermediate(trial.number() - 1, p.step(), p.value());
    if (d.ok() && *d == tuner::Decision::kStop) {
      stop = true;
      trial.set_reason(absl::StrCat(kEarlyStopPrefix, " at step ", p.step(), " (", es, " ",
                                    p.value(), ", rule ", spec.early_stopping().rule(), ")"));
      GW_LOG_INFO("sweep={} trial={} job={} {}", rec.sweep.id(), trial.number(), job.id(),
                  trial.reason());
      host_->StopTrialJob(job.id(), trial.reason());
    }
  }
  MarkChanged(rec);
  return stop;
}

void SweepController::OnTrialJobEnded(const v1::Job& job) {
  auto s = job_to_sweep_.find(job.id());
  if (s == job_to_sweep_.end()) return;
  Rec& rec = *sweeps_.at(s->second);
  v1::Trial& trial = *rec.sweep.mutable_trials(rec.trial_of_job.at(job.id()));
  if (IsTrialTerminal(trial.state())) return;
  if (!IsTerminal(job.state())) {
    if (job.state() == v1::JOB_STATE_RUNNING && trial.state() == v1::TRIAL_STATE_PENDING) {
      trial.set_state(v1::TRIAL_STATE_RUNNING);
      MarkChanged(rec);
    }
    // Back to Pending: the job restarts and runs from the beginning. The
    // series of the attempt thrown away must not make the objective (with
    // value min/max/best its values outlived the restart), nor the early
    // stopping verdict (its best value so far could be the old run's).
    if (job.state() == v1::JOB_STATE_PENDING) {
      rec.objective_series.erase(job.id());
      (void)rec.tuner->RestartTrial(trial.number() - 1);
    }
    return;
  }
  TrialDone(rec, trial, job);
}

void SweepController::TrialDone(Rec& rec, v1::Trial& trial, const v1::Job& job) {
  const v1::ObjectiveSpec& objective = rec.sweep.spec().objective();
  auto& series = rec.objective_series[job.id()];
  // Every objective's value; `value` is the first's, and `missing` the
  // first objective without a finite one (named in the reason).
  std::vector<double> values;
  std::optional<double> value;
  const v1::ObjectiveSpec* missing = nullptr;
  std::optional<double> missing_value;
  for (const v1::ObjectiveSpec* o : ObjectivesOf(rec.sweep.spec())) {
    std::optional<double> v = ReduceSeries(*o, series[o->metric()]);
    if (values.empty() && !missing) value = v;
    if ((!v || !std::isfinite(*v)) && !missing) {
      missing = o;
      missing_value = v;
    }
    values.push_back(v.value_or(0));
  }
  const int64_t tid = trial.number() - 1;
  const bool finite = missing == nullptr;
  if (value) {
    trial.set_has_objective(true);
    trial.set_objective(*value);
  }
  if (IsMultiObjective(rec.sweep.spec()) && finite) {
    trial.mutable_objective_values()->Assign(values.begin(), values.end());
  }
  if (WasEarlyStopped(trial)) {
    trial.set_state(v1::TRIAL_STATE_EARLY_STOPPED);
  } else if (job.state() == v1::JOB_STATE_SUCCEEDED) {
    if (finite) {
      trial.set_state(v1::TRIAL_STATE_SUCCEEDED);
    } else {
      trial.set_state(v1::TRIAL_STATE_METRICS_UNAVAILABLE);
      trial.set_reason(missing_value ? absl::StrCat(missing->metric(), " was ", *missing_value)
                                     : absl::StrCat("ended without reporting ", missing->metric()));
    }
  } else if (job.state() == v1::JOB_STATE_CANCELLED) {
    trial.set_state(v1::TRIAL_STATE_CANCELLED);
    trial.set_reason(job.reason());
  } else {
    trial.set_state(v1::TRIAL_STATE_FAILED);
    trial.set_reason(job.reason());
  }
  trial.set_end_time_ms(host_->NowMs());
  const bool told_value = finite && (trial.state() == v1::TRIAL_STATE_SUCCEEDED ||
                                     trial.state() == v1::TRIAL_STATE_EARLY_STOPPED);
  absl::Status told = told_value ? rec.tuner->Tell(tid, values) : rec.tuner->TellFailed(tid);
  if (!told.ok()) {
    GW_LOG_WARN("sweep={} trial={}: {}", rec.sweep.id(), trial.number(),
                std::string(told.message()));
  }
  rec.objective_series.erase(job.id());
  GW_LOG_INFO("sweep={} trial={} job={} ended {}", rec.sweep.id(), trial.number(), job.id(),
              finite ? absl::StrCat(objective.metric(), "=", values[0]) : trial.reason());
  UpdateBest(rec);
  MarkChanged(rec);
  if (rec.sweep.state() == v1::SWEEP_STATE_RUNNING && objective.has_goal() &&
      trial.state() == v1::TRIAL_STATE_SUCCEEDED &&
      (objective.maximize() ? *value >= objective.goal() : *value <= objective.goal())) {
    Finish(rec, v1::SWEEP_STATE_SUCCEEDED,
           absl::StrCat("goal reached by trial ", trial.number(), " (", objective.metric(), " ",
                        *value, ")"));
  }
}

void SweepController::UpdateBest(Rec& rec) {
  std::optional<tuner::BestTrial> best = rec.tuner->best();
  rec.sweep.set_best_trial(best ? best->trial_id + 1 : 0);
  rec.sweep.clear_pareto_front();
  if (IsMultiObjective(rec.sweep.spec())) {
    for (const tuner::BestTrial& t : rec.tuner->pareto_front()) {
      rec.sweep.add_pareto_front(t.trial_id + 1);
    }
  }
}

}  // namespace gangway::coordinator
