// Serving rank logs to the coordinator (`gangway logs`): one page per
// ReadLog, from the rotated log its keeper writes (rank_log.h).
#pragma once

#include <string>

#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

// Most bytes of one LogData page: well under gRPC's message limit.
inline constexpr int64_t kMaxLogPageBytes = 1 << 20;

// The answer to `req` for the log under `state_dir` (Agent::LogPath), on
// node `node`. Offsets count every byte the rank wrote: asked for bytes
// that were rotated away, the page starts at the oldest byte kept, and its
// offset says so.
v1::AgentMessage ReadLogPage(const std::string& state_dir, const std::string& node,
                             const v1::ReadLog& req);

}  // namespace gangway::agent
