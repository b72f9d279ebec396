// Durable state behind a narrow interface. The core writes what changed in
// one loop turn as one batch (one transaction), so throughput is not bound
// by one commit per event, and a job, its sweep and its metrics never
// disagree after a crash.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

// Deletes stored points of one series (metric_retention.h).
struct MetricTrim {
  std::string job;
  std::string name;
  // > 0: every point whose index is not a multiple of it goes, except
  // `keep` (at most 3) and points without an index (-1).
  int64_t stride = 0;
  std::vector<int64_t> keep;
  // And these indices go.
  std::vector<int64_t> drop;
};

struct WriteBatch {
  std::vector<const v1::Job*> jobs;
  std::vector<const v1::Sweep*> sweeps;
  std::vector<std::pair<std::string, v1::MetricPoint>> metrics;  // job id, point
  // Applied after the points above are stored.
  std::vector<MetricTrim> metric_trims;
  // Garbage-collected: the rows go, a job's metric points with it. Applied
  // last.
  std::vector<std::string> deleted_jobs;
  std::vector<std::string> deleted_sweeps;

  bool empty() const {
    return jobs.empty() && sweeps.empty() && metrics.empty() && metric_trims.empty() &&
           deleted_jobs.empty() && deleted_sweeps.empty();
  }
};

// One page of a job's stored points.
struct MetricPage {
  std::vector<v1::MetricPoint> points;
  // Where the next page starts (LoadMetricsPage's `after`); meaningful
  // only with `more`.
  int64_t next = 0;
  bool more = false;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual absl::StatusOr<std::vector<v1::Job>> LoadJobs() = 0;
  virtual absl::StatusOr<std::vector<v1::Sweep>> LoadSweeps() = 0;
  // In the order they were saved.
  virtual absl::StatusOr<std::vector<v1::MetricPoint>> LoadMetrics(const std::string& job_id) = 0;
  // At most `limit` points of the job (of metric `name`, or all for ""),
  // in the order they were saved, from cursor `after` (0: the first).
  // Cursors stay valid while points are added or trimmed.
  virtual absl::StatusOr<MetricPage> LoadMetricsPage(const std::string& job_id,
                                                     const std::string& name, int64_t after,
                                                     int64_t limit) = 0;
  // All or nothing.
  virtual absl::Status Save(const WriteBatch& batch) = 0;

  absl::Status SaveJobs(std::span<const v1::Job* const> jobs) {
    WriteBatch batch;
    batch.jobs.assign(jobs.begin(), jobs.end());
    return Save(batch);
  }
};

}  // namespace gangway::coordinator
