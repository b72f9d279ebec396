// A rank's metric points as AgentMessages small enough to send: one
// RankMetrics message holding a burst of points (a rank printing a million
// lines) could pass gRPC's 4 MiB limit, and a refused message lost the
// trial's objective with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gangway/v1/gangway.pb.h"

namespace gangway::agent {

// Most bytes of one metrics message, serialized: a quarter of gRPC's
// default limit, so a batch never comes near it.
inline constexpr size_t kMaxMetricsMessageBytes = 1 << 20;

// `points` in order, split into RankMetrics messages of at most `max_bytes`
// each (a point larger than that alone in its message). Empty for no points.
std::vector<v1::AgentMessage> MetricsMessages(const std::string& job_id, int32_t attempt,
                                              int32_t rank, std::vector<v1::MetricPoint> points,
                                              size_t max_bytes = kMaxMetricsMessageBytes);

}  // namespace gangway::agent
