#include "common/metric_limits.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/utf8.h"

namespace gangway::common {
namespace {

bool StepInRange(int64_t step) { return step == -1 || (step >= 0 && step <= kMaxMetricStep); }

}  // namespace

bool SanitizeMetricPoint(v1::MetricPoint* point) {
  if (point->name().empty() || point->name().size() > kMaxMetricNameBytes) return false;
  if (!IsValidUtf8(point->name())) point->set_name(ToValidUtf8(point->name(), kMaxMetricNameBytes));
  if (point->raw().size() > kMaxMetricRawBytes || !IsValidUtf8(point->raw())) {
    point->set_raw(ToValidUtf8(point->raw(), kMaxMetricRawBytes));
  }
  if (!StepInRange(point->step())) point->set_step(-1);
  return true;
}

absl::Status CheckMetricPoint(const v1::MetricPoint& point, std::string_view path) {
  const absl::string_view at(path.data(), path.size());
  if (point.name().empty())
    return absl::InvalidArgumentError(absl::StrCat(at, ".name: must not be empty"));
  if (point.name().size() > kMaxMetricNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat(at, ".name: at most ", kMaxMetricNameBytes,
                                                   " bytes, got ", point.name().size()));
  }
  if (point.raw().size() > kMaxMetricRawBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".raw: at most ", kMaxMetricRawBytes, " bytes, got ", point.raw().size()));
  }
  if (!StepInRange(point.step())) {
    return absl::InvalidArgumentError(absl::StrCat(at, ".step: must be -1 (none) or between 0 and ",
                                                   kMaxMetricStep, ", got ", point.step()));
  }
  if (point.time_ms() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".time_ms: must not be negative, got ", point.time_ms()));
  }
  return absl::OkStatus();
}

}  // namespace gangway::common
