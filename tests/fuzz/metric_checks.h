// The promises SanitizeMetricPoint makes (common/metric_limits.h), checked
// on every point a metric fuzz target parsed.
#pragma once

#include <vector>

#include "common/metric_limits.h"
#include "common/utf8.h"
#include "gangway/v1/gangway.pb.h"
#include "tests/fuzz/fuzz_check.h"

inline void CheckSanitized(std::vector<gangway::v1::MetricPoint>* points) {
  namespace common = gangway::common;
  for (auto& p : *points) {
    if (!common::SanitizeMetricPoint(&p)) continue;
    FUZZ_CHECK(!p.name().empty() && p.name().size() <= common::kMaxMetricNameBytes,
               "a kept name is 1..kMaxMetricNameBytes bytes");
    FUZZ_CHECK(common::IsValidUtf8(p.name()), "a kept name is UTF-8");
    FUZZ_CHECK(p.raw().size() <= common::kMaxMetricRawBytes, "raw text is cut");
    FUZZ_CHECK(common::IsValidUtf8(p.raw()), "a kept raw text is UTF-8");
    FUZZ_CHECK(p.step() == -1 || (p.step() >= 0 && p.step() <= common::kMaxMetricStep),
               "a step is -1 or 0..2^53");
    FUZZ_CHECK(common::CheckMetricPoint(p, "point").ok(),
               "a sanitized point passes the Report RPC's check");
    std::string wire;
    FUZZ_CHECK(p.SerializeToString(&wire), "a sanitized point serializes");
  }
}
