// Durable state behind a narrow interface. The core writes every changed job
// once per loop turn in one call (one transaction), so throughput is not
// bound by one commit per event.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

class Store {
 public:
  virtual ~Store() = default;
  virtual absl::StatusOr<std::vector<v1::Job>> LoadJobs() = 0;
  // All or nothing.
  virtual absl::Status SaveJobs(std::span<const v1::Job* const> jobs) = 0;
};

}  // namespace gangway::coordinator
