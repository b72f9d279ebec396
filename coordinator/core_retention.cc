// What the core keeps, and for how long: metric points downsampled past a
// cap per series, metrics read a page at a time, and finished jobs and
// sweeps deleted after their ttlSecondsAfterFinished. Part of Core (core.h);
// split from core.cc to keep each file to one concern.
#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "coordinator/core.h"
#include "coordinator/job_state.h"

namespace gangway::coordinator {

// ---------------------------------------------------------------------------
// Metric points

void Core::KeepMetrics(const std::string& job_id, std::vector<v1::MetricPoint> points) {
  const v1::Job* job = FindJob(job_id);
  if (!job) return;
  if (!retention_.Has(job_id)) {
    // First points since a restart (or since the job last ended): the
    // series continues where the store left it, with this turn's unwritten
    // points after it.
    absl::StatusOr<std::vector<v1::MetricPoint>> stored = store_->LoadMetrics(job_id);
    if (!stored.ok()) {
      GW_LOG_WARN("job={} metrics: {}; positions restart at 0", job_id,
                  std::string(stored.status().message()));
      stored = std::vector<v1::MetricPoint>();
    }
    for (const auto& [id, p] : metric_writes_) {
      if (id == job_id) stored->push_back(p);
    }
    std::vector<MetricTrim> trims = retention_.Load(job_id, job->attempt(), *stored);
    metric_trims_.insert(metric_trims_.end(), std::make_move_iterator(trims.begin()),
                         std::make_move_iterator(trims.end()));
  }
  std::vector<v1::MetricPoint> keep;
  std::vector<MetricTrim> trims = retention_.Add(job_id, std::move(points), &keep);
  for (v1::MetricPoint& p : keep) metric_writes_.emplace_back(job_id, std::move(p));
  metric_trims_.insert(metric_trims_.end(), std::make_move_iterator(trims.begin()),
                       std::make_move_iterator(trims.end()));
}

absl::StatusOr<v1::GetMetricsResponse> Core::GetMetricsPage(const v1::GetMetricsRequest& request) {
  const std::string& job_id = request.job_id();
  if (!FindJob(job_id)) return absl::NotFoundError(absl::StrCat("no job named '", job_id, "'"));
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must not be negative, got ", request.page_size()));
  }
  int64_t after = 0;
  if (!request.page_token().empty() &&
      (!absl::SimpleAtoi(request.page_token(), &after) || after < 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: not a token from a GetMetrics answer: '", request.page_token(), "'"));
  }
  const int64_t limit = request.page_size() == 0
                            ? kMaxMetricsPage
                            : std::min<int64_t>(request.page_size(), kMaxMetricsPage);
  absl::StatusOr<MetricPage> page = store_->LoadMetricsPage(job_id, request.name(), after, limit);
  if (!page.ok()) return page.status();
  v1::GetMetricsResponse out;
  for (v1::MetricPoint& p : page->points) *out.add_points() = std::move(p);
  if (page->more) {
    out.set_next_page_token(absl::StrCat(page->next));
    return out;
  }
  // The last page: with this turn's points, which are not written yet.
  for (const auto& [job, p] : metric_writes_) {
    if (job == job_id && (request.name().empty() || p.name() == request.name())) {
      *out.add_points() = p;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Garbage collection

namespace {

// The spec's ttlSecondsAfterFinished, else the coordinator's default; -1:
// never. At most ten years (as the spec check), so milliseconds cannot
// overflow.
template <typename Spec>
int64_t TtlSeconds(const Spec& spec, int64_t fallback) {
  const int64_t ttl =
      spec.has_ttl_seconds_after_finished() ? spec.ttl_seconds_after_finished() : fallback;
  return ttl < 0 ? -1 : std::min<int64_t>(ttl, 315'360'000);
}

}  // namespace

void Core::ScheduleExpiry(const v1::Job& job) {
  if (!job.sweep().empty() || !IsTerminal(job.state())) return;
  const int64_t ttl = TtlSeconds(job.spec(), options_.ttl_after_finished_s);
  if (ttl < 0) return;
  const int64_t at = MonoAt(job.end_time_ms() + ttl * 1000);
  auto [it, added] = expiry_.try_emplace(job.id(), at);
  if (!added) return;  // already set when it ended
  expiries_.emplace(at, job.id());
}

void Core::ScheduleExpiry(const v1::Sweep& sweep) {
  if (sweep.state() == v1::SWEEP_STATE_RUNNING) {
    // Raised maxTrials ran it again: no longer finished.
    expiry_.erase(sweep.id());
    return;
  }
  const int64_t ttl = TtlSeconds(sweep.spec(), options_.ttl_after_finished_s);
  if (ttl < 0) return;
  const int64_t at = MonoAt(sweep.end_time_ms() + ttl * 1000);
  auto it = expiry_.find(sweep.id());
  if (it != expiry_.end() && it->second == at) return;
  expiry_[sweep.id()] = at;
  expiries_.emplace(at, sweep.id());
}

void Core::DropJob(const std::string& id) {
  jobs_.erase(id);
  pending_.erase(id);
  relaunch_at_.erase(id);
  dirty_.erase(id);
  watchers_.erase(id);
  retention_.Forget(id);
  metric_seq_.erase(id);
  std::erase_if(metric_writes_, [&](const auto& w) { return w.first == id; });
  std::erase_if(metric_trims_, [&](const MetricTrim& t) { return t.job == id; });
  expiry_.erase(id);
  deleted_jobs_.push_back(id);
}

void Core::CollectGarbage() {
  const int64_t now = clock_->MonotonicMs();
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    auto [at, id] = *expiries_.begin();
    expiries_.erase(expiries_.begin());
    auto current = expiry_.find(id);
    if (current == expiry_.end() || current->second != at) continue;  // superseded
    if (absl::StatusOr<v1::Sweep> sweep = sweeps_.Get(id); sweep.ok()) {
      // Its trials' jobs go with it, once none of them still runs (a
      // cancelled sweep's trials may be stopping).
      const bool live = std::any_of(
          sweep->trials().begin(), sweep->trials().end(),
          [&](const v1::Trial& t) { return !t.job_id().empty() && TrialJobLive(t.job_id()); });
      if (live) {
        current->second = now + 1000;
        expiries_.emplace(now + 1000, id);
        continue;
      }
      for (const v1::Trial& t : sweep->trials()) {
        if (!t.job_id().empty() && FindJob(t.job_id())) DropJob(t.job_id());
      }
      sweeps_.Forget(id);
      sweep_watchers_.erase(id);
      expiry_.erase(id);
      deleted_sweeps_.push_back(id);
      GW_LOG_INFO("sweep={} deleted: ttlSecondsAfterFinished passed ({} trials)", id,
                  sweep->trials_size());
      continue;
    }
    const v1::Job* job = FindJob(id);
    if (!job || !IsTerminal(job->state())) {
      expiry_.erase(id);
      continue;
    }
    GW_LOG_INFO("job={} deleted: ttlSecondsAfterFinished passed", id);
    DropJob(id);
  }
}

}  // namespace gangway::coordinator
