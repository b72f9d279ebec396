// Core::Gauges: apart from core.cc, which holds the decisions.
#include <algorithm>
#include <bit>

#include "coordinator/core.h"

namespace gangway::coordinator {

CoreGauges Core::Gauges() const {
  CoreGauges g;
  for (const auto& [id, job] : jobs_) ++g.jobs[job.state()];
  sweeps_.ForEachSweep([&g](const v1::Sweep& sweep) {
    for (const v1::Trial& trial : sweep.trials()) ++g.trials[trial.state()];
  });
  for (const auto& [name, rec] : nodes_) {
    ++g.nodes[rec.node.state()];
    g.gpus_total += rec.node.inventory().gpus_size();
    g.gpus_allocated += std::popcount(rec.used_gpus);
  }
  g.queue_length = static_cast<int64_t>(pending_.size());
  if (!pending_.empty()) {
    int64_t oldest = clock_->MonotonicMs();
    for (const auto& [id, since] : pending_) oldest = std::min(oldest, since);
    g.oldest_pending_ms = clock_->MonotonicMs() - oldest;
  }
  return g;
}

}  // namespace gangway::coordinator
