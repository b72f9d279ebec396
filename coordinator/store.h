// Durable state behind a narrow interface. The core writes what changed in
// one loop turn as one batch (one transaction), so throughput is not bound
// by one commit per event, and a job, its sweep and its metrics never
// disagree after a crash.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

struct WriteBatch {
  std::vector<const v1::Job*> jobs;
  std::vector<const v1::Sweep*> sweeps;
  std::vector<std::pair<std::string, v1::MetricPoint>> metrics;  // job id, point

  bool empty() const { return jobs.empty() && sweeps.empty() && metrics.empty(); }
};

class Store {
 public:
  virtual ~Store() = default;
  virtual absl::StatusOr<std::vector<v1::Job>> LoadJobs() = 0;
  virtual absl::StatusOr<std::vector<v1::Sweep>> LoadSweeps() = 0;
  // In the order they were saved.
  virtual absl::StatusOr<std::vector<v1::MetricPoint>> LoadMetrics(const std::string& job_id) = 0;
  // All or nothing.
  virtual absl::Status Save(const WriteBatch& batch) = 0;

  absl::Status SaveJobs(std::span<const v1::Job* const> jobs) {
    WriteBatch batch;
    batch.jobs.assign(jobs.begin(), jobs.end());
    return Save(batch);
  }
};

}  // namespace gangway::coordinator
