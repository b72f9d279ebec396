// Bounds on a metric point, shared by the two ways points reach the
// coordinator: the agent's tail of a rank's output (agent/metrics_tail.h),
// which repairs what a program printed, and the Metrics.Report RPC
// (coordinator/server.cc), which refuses what a client sent.
//
// Why: proto3 string fields must be UTF-8, so one point with an invalid byte
// (`printf 'loss=\377\n'`) failed to serialize and dropped the agent's whole
// session, every time it was printed; a step of 1e300 converted to int64 is
// undefined behaviour; names and raw text without bound grow every message
// and the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "gangway/v1/gangway.pb.h"

namespace gangway::common {

// A metric name: as long as a sweep's objective metric may be
// (coordinator/sweep_spec.cc), so no point that could be an objective is lost.
inline constexpr size_t kMaxMetricNameBytes = 128;
// The raw text kept of a value that is not a number.
inline constexpr size_t kMaxMetricRawBytes = 256;
// Steps are -1 (none) or 0..2^53 (every integer up to here is exact as the
// double it is parsed from).
inline constexpr int64_t kMaxMetricStep = int64_t{1} << 53;

// Makes a point from a program's output safe to send: name and raw made
// valid UTF-8 (each invalid byte becomes U+FFFD), raw cut to
// kMaxMetricRawBytes, a step outside the range -> -1 (none). False when the
// point should be dropped: its name is empty or longer than
// kMaxMetricNameBytes (no sweep can ask for it, and a cut name would be
// another metric's).
bool SanitizeMetricPoint(v1::MetricPoint* point);

// The same bounds for a point sent by a client: INVALID_ARGUMENT naming
// `path` ("points[3].step: ..."). Strings in a parsed proto are UTF-8
// already. Values may be any double (inf and NaN included: NaN is how a
// value that is not a number is kept).
absl::Status CheckMetricPoint(const v1::MetricPoint& point, std::string_view path);

}  // namespace gangway::common
