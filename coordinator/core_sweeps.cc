// The core's side of sweeps and metrics: trial jobs for the sweep
// controller, sweep calls with their owners, and metric points with the
// attempt they belong to. Part of Core (core.h); split from core.cc to keep
// each file to one concern.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/spec.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"

namespace gangway::coordinator {

std::string Core::CreateTrialJob(v1::JobSpec spec, const std::string& sweep_id) {
  return AddJob(std::move(spec), sweep_id, sweeps_.Owner(sweep_id));
}

void Core::StopTrialJob(const std::string& job_id, const std::string& reason) {
  v1::Job* job = FindJob(job_id);
  if (!job) return;
  switch (job->state()) {
    case v1::JOB_STATE_PENDING:
      SetState(*job, v1::JOB_STATE_CANCELLED, reason);
      break;
    case v1::JOB_STATE_SCHEDULED:
    case v1::JOB_STATE_RUNNING:
    case v1::JOB_STATE_RESTARTING:
      BeginStop(*job, v1::JOB_STATE_STOPPING, v1::JOB_STATE_CANCELLED, reason);
      break;
    case v1::JOB_STATE_STOPPING:
    case v1::JOB_STATE_SUCCEEDED:
    case v1::JOB_STATE_FAILED:
    case v1::JOB_STATE_CANCELLED:
    case v1::JOB_STATE_UNSPECIFIED:
    case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
    case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
      break;
  }
}

bool Core::TrialJobLive(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && !IsTerminal(it->second.state());
}

absl::StatusOr<v1::Sweep> Core::CancelSweep(const std::string& id, const Principal& who) {
  absl::StatusOr<v1::Sweep> sweep = sweeps_.Get(id);
  if (!sweep.ok()) return sweep.status();
  if (absl::Status s = CheckOwner(who, sweep->owner(), absl::StrCat("sweep ", id)); !s.ok()) {
    return s;
  }
  return sweeps_.Cancel(id);
}

absl::StatusOr<v1::Sweep> Core::UpdateSweep(const v1::UpdateSweepRequest& request,
                                            const Principal& who) {
  const std::string owner = sweeps_.Owner(request.id());
  if (absl::Status s = CheckOwner(who, owner, absl::StrCat("sweep ", request.id()));
      !s.ok() && sweeps_.Get(request.id()).ok()) {
    return s;
  }
  return sweeps_.Update(request);
}

void Core::SubmitSweep(const v1::SubmitSweepRequest& request, SweepCallback done,
                       const Principal& who) {
  if (request.yaml().size() > common::kMaxSpecBytes) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "spec is ", request.yaml().size(), " bytes; the limit is ", common::kMaxSpecBytes)));
  }
  if (const size_t bytes = request.spec().ByteSizeLong(); bytes > common::kMaxSpecBytes) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "spec is ", bytes, " bytes serialized; the limit is ", common::kMaxSpecBytes)));
  }
  absl::StatusOr<v1::Sweep> sweep = sweeps_.Submit(request, who.ToString());
  if (!sweep.ok()) return done(sweep.status());
  if (absl::Status s = CheckCapacity(nullptr, sweep->spec().trial_template()); !s.ok()) {
    sweeps_.Forget(sweep->id());
    return done(absl::InvalidArgumentError(absl::StrCat("trialTemplate.", s.message())));
  }
  after_write_.push_back([this, id = sweep->id(), done = std::move(done)](bool stored) {
    if (stored) return done(sweeps_.Get(id));
    sweeps_.Forget(id);
    done(absl::UnavailableError("the store could not save the sweep; it was not accepted"));
  });
}

absl::StatusOr<int64_t> Core::WatchSweep(const std::string& id, SweepWatcher fn) {
  absl::StatusOr<v1::Sweep> sweep = sweeps_.Get(id);
  if (!sweep.ok()) return sweep.status();
  const int64_t watch_id = next_watch_++;
  fn(*sweep);
  sweep_watchers_[id].emplace(watch_id, std::move(fn));
  watch_jobs_.emplace(watch_id, id);
  return watch_id;
}

absl::StatusOr<std::vector<v1::MetricPoint>> Core::GetMetrics(const std::string& job_id,
                                                              const std::string& name) {
  if (!FindJob(job_id)) return absl::NotFoundError(absl::StrCat("no job named '", job_id, "'"));
  absl::StatusOr<std::vector<v1::MetricPoint>> points = store_->LoadMetrics(job_id);
  if (!points.ok()) return points.status();
  std::vector<v1::MetricPoint> out;
  for (auto& p : *points) {
    if (name.empty() || p.name() == name) out.push_back(std::move(p));
  }
  // Points of this turn are not written yet.
  for (const auto& [job, p] : metric_writes_) {
    if (job == job_id && (name.empty() || p.name() == name)) out.push_back(p);
  }
  return out;
}

absl::Status Core::CheckLiveAttempt(const std::string& job_id, int32_t attempt) const {
  auto it = jobs_.find(job_id);
  if (it != jobs_.end() && it->second.attempt() == attempt) {
    switch (it->second.state()) {
      case v1::JOB_STATE_SCHEDULED:
      case v1::JOB_STATE_RUNNING:
      case v1::JOB_STATE_STOPPING:
        return absl::OkStatus();
      case v1::JOB_STATE_UNSPECIFIED:
      case v1::JOB_STATE_PENDING:
      case v1::JOB_STATE_RESTARTING:
      case v1::JOB_STATE_SUCCEEDED:
      case v1::JOB_STATE_FAILED:
      case v1::JOB_STATE_CANCELLED:
      case v1::JobState_INT_MIN_SENTINEL_DO_NOT_USE_:
      case v1::JobState_INT_MAX_SENTINEL_DO_NOT_USE_:
        break;
    }
  }
  return absl::PermissionDeniedError(absl::StrCat("attempt ", attempt, " of job ", job_id,
                                                  " is not running (finished or superseded)"));
}

void Core::DropSeenMetrics(const std::string& job_id, int32_t attempt,
                           std::vector<v1::MetricPoint>* points) {
  auto it = metric_seq_.find(job_id);
  if (it == metric_seq_.end() || it->second.attempt != attempt) {
    // What the store holds (downsampling keeps each series' latest point,
    // so the highest seq survives it) and what this turn has not written.
    SeenSeq seen{attempt, 0};
    absl::StatusOr<std::vector<v1::MetricPoint>> stored = store_->LoadMetrics(job_id);
    if (stored.ok()) {
      for (const v1::MetricPoint& p : *stored) {
        if (p.attempt() == attempt) seen.seq = std::max(seen.seq, p.seq());
      }
    } else {
      GW_LOG_WARN("job={} metrics: {}; resent points may be stored twice", job_id,
                  std::string(stored.status().message()));
    }
    for (const auto& [id, p] : metric_writes_) {
      if (id == job_id && p.attempt() == attempt) seen.seq = std::max(seen.seq, p.seq());
    }
    it = metric_seq_.insert_or_assign(job_id, seen).first;
  }
  int64_t& top = it->second.seq;
  std::erase_if(*points, [&](const v1::MetricPoint& p) {
    if (p.seq() <= 0) return false;
    if (p.seq() <= top) return true;
    top = p.seq();
    return false;
  });
}

bool Core::OnMetrics(const std::string& job_id, int32_t attempt, int32_t rank,
                     const std::vector<v1::MetricPoint>& points, bool from_agent) {
  v1::Job* job = FindJob(job_id);
  // Points of an older attempt describe a run that was thrown away.
  if (!job || job->attempt() != attempt || points.empty()) return false;
  std::vector<v1::MetricPoint> tagged = points;
  for (v1::MetricPoint& p : tagged) {
    p.set_attempt(attempt);
    if (!from_agent) p.clear_seq();
  }
  if (from_agent) {
    DropSeenMetrics(job_id, attempt, &tagged);
    if (tagged.empty()) return false;
  }
  KeepMetrics(job_id, tagged);
  if (rank != 0 || job->sweep().empty()) return false;
  return sweeps_.OnMetrics(*job, tagged);
}

absl::StatusOr<std::vector<v1::MetricPoint>> Core::CurrentRunMetrics(const std::string& job_id) {
  absl::StatusOr<std::vector<v1::MetricPoint>> points = store_->LoadMetrics(job_id);
  const v1::Job* job = FindJob(job_id);
  if (!points.ok() || job == nullptr) return points;
  // Waiting for a relaunch: the last attempt's run was thrown away.
  if (job->state() == v1::JOB_STATE_PENDING || job->state() == v1::JOB_STATE_RESTARTING) {
    return std::vector<v1::MetricPoint>{};
  }
  std::erase_if(*points, [&](const v1::MetricPoint& p) {
    return p.attempt() != 0 && p.attempt() != job->attempt();
  });
  return points;
}

}  // namespace gangway::coordinator
