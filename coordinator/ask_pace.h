// How many proposals to ask a tuner for at once on the coordinator's loop.
#pragma once

#include <algorithm>
#include <cstdint>

namespace gangway::coordinator {

// The coordinator runs every tuner on its event loop, where heartbeats and
// calls wait while it proposes. A model-based proposal costs up to ~0.1 s
// (ParEGO fits a GP for each one; 200 results and a batch of 100 measured
// 9.9 s in one ask), so an ask is capped at about kBudgetMs from the cost
// per proposal of the ask before it, and the caller asks again for the
// rest: a sweep on the next tick (every 100 ms), a study's client with
// another Ask. Cheap samplers (and any first ask) get the whole batch.
class AskPace {
 public:
  static constexpr double kBudgetMs = 50;

  // How many of `wanted` (>= 1) to ask for now: at least one.
  int Cap(int wanted) const {
    if (ms_per_proposal_ <= 0) return wanted;
    return std::clamp(static_cast<int>(kBudgetMs / ms_per_proposal_), 1, wanted);
  }
  // An ask that made `proposals` in `ms` (a clock that went back counts 0).
  void Record(int proposals, int64_t ms) {
    if (proposals > 0) ms_per_proposal_ = static_cast<double>(std::max<int64_t>(ms, 0)) / proposals;
  }

 private:
  double ms_per_proposal_ = 0;
};

}  // namespace gangway::coordinator
