// What the agent tells an observer about its ranks: agent/telemetry.h
// counts them for /metrics. An interface, so the agent library itself does
// not depend on the metrics library (a static agent may be built without).
//
// Thread: called on the agent's loop thread; implementations must not block.
#pragma once

#include <cstdint>
#include <string>

#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

class RankEvents {
 public:
  virtual ~RankEvents() = default;
  // A rank of `launch` was started (`started`) or could not be.
  virtual void RankLaunched(const v1::LaunchGang& launch, const v1::RankLaunch& rank,
                            bool started) = 0;
  // A rank a previous agent process left running (or that ended meanwhile).
  virtual void RankAdopted(const std::string& job, int32_t attempt, int32_t rank, bool running) = 0;
  virtual void RankExited(const std::string& job, int32_t attempt, int32_t rank,
                          int32_t exit_code) = 0;
  // The coordinator recorded the exit; the agent no longer tracks the rank.
  virtual void RankForgotten(const std::string& job, int32_t attempt, int32_t rank) = 0;
};

}  // namespace gangway::agent
