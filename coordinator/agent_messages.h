// Messages the core sends agents, and how it reads what they report:
// shared by the core's files (core.cc, core_agents.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "gangway/v1/gangway.pb.h"

namespace gangway::coordinator {

inline constexpr size_t kMaxNodeNameBytes = 253;

inline v1::CoordinatorMessage StopMessage(const std::string& job_id, int32_t attempt,
                                          int64_t grace_ms) {
  v1::CoordinatorMessage msg;
  auto* stop = msg.mutable_stop();
  stop->set_job_id(job_id);
  stop->set_attempt(attempt);
  stop->set_grace_ms(grace_ms);
  return msg;
}

inline v1::CoordinatorMessage ForgetMessage(const std::string& job_id, int32_t attempt) {
  v1::CoordinatorMessage msg;
  msg.mutable_forget()->set_job_id(job_id);
  msg.mutable_forget()->set_attempt(attempt);
  return msg;
}

// An exit code reported by an agent, as the restart policy reads it. Agents
// report 0-255 (128+N for signal N). Anything else is malformed and must
// never read as success (clamping -9 to 0 did), nor as -1, which means "node
// lost" here: it counts as 255, an unknown, signal-like failure.
inline int AgentExitCode(int32_t code) { return code >= 0 && code <= 255 ? code : 255; }

}  // namespace gangway::coordinator
