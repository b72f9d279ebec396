// What the core holds at one moment, counted for /metrics
// (coordinator/telemetry.h). Computed on the core's thread by
// Core::Gauges() when Prometheus scrapes, so no counter has to be kept in
// step with every transition.
#pragma once

#include <cstdint>
#include <map>

#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

struct CoreGauges {
  std::map<v1::JobState, int64_t> jobs;  // every job the core holds, by state
  std::map<v1::TrialState, int64_t> trials;
  std::map<v1::NodeState, int64_t> nodes;
  // Jobs waiting to be placed (Pending, backing-off restarts included) and
  // how long the oldest of them has waited (0 when none does).
  int64_t queue_length = 0;
  int64_t oldest_pending_ms = 0;
  int64_t gpus_total = 0;      // of nodes that registered an inventory
  int64_t gpus_allocated = 0;  // held by placed gangs
};

}  // namespace gangway::coordinator
