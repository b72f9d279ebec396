#include "tuner/early_stopping.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"

namespace gangway::tuner {
namespace {

// The value a series recorded at a rung: the first report at or past it.
std::optional<double> ValueAtRung(const Series& s, int64_t rung) {
  for (const auto& [step, v] : s) {
    if (step >= rung) return v;
  }
  return std::nullopt;
}

}  // namespace

absl::Status Validate(const MedianStoppingOptions& o) {
  if (o.min_trials < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("earlyStopping.minTrials: must be >= 1, got ", o.min_trials));
  }
  if (o.start_step < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("earlyStopping.startStep: must be >= 0, got ", o.start_step));
  }
  return absl::OkStatus();
}

absl::Status Validate(const AshaOptions& o) {
  if (o.min_resource < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("earlyStopping.minResource: must be >= 1, got ", o.min_resource));
  }
  if (!(o.reduction_factor >= 2) || !std::isfinite(o.reduction_factor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("earlyStopping.reductionFactor: must be >= 2, got ", o.reduction_factor));
  }
  if (o.max_resource != 0 && o.max_resource < o.min_resource) {
    return absl::InvalidArgumentError(
        absl::StrCat("earlyStopping.maxResource: must be >= minResource (", o.min_resource,
                     "), got ", o.max_resource));
  }
  return absl::OkStatus();
}

std::vector<int64_t> AshaRungs(const AshaOptions& o, int64_t up_to_step) {
  std::vector<int64_t> rungs;
  double r = static_cast<double>(o.min_resource);
  while (r <= static_cast<double>(up_to_step) && r < 9e18) {
    const auto rung = static_cast<int64_t>(std::llround(r));
    if (o.max_resource != 0 && rung >= o.max_resource) break;
    if (rungs.empty() || rung > rungs.back()) rungs.push_back(rung);
    r *= o.reduction_factor;
  }
  return rungs;
}

Decision MedianStoppingDecision(const MedianStoppingOptions& o, const Series& trial,
                                std::span<const Series* const> completed) {
  if (trial.empty()) return Decision::kContinue;
  const int64_t s = trial.back().first;
  if (s < o.start_step) return Decision::kContinue;
  std::vector<double> averages;
  for (const Series* c : completed) {
    double sum = 0;
    int n = 0;
    for (const auto& [step, v] : *c) {
      if (step <= s) {
        sum += v;
        ++n;
      }
    }
    if (n > 0) averages.push_back(sum / n);
  }
  if (static_cast<int>(averages.size()) < o.min_trials) return Decision::kContinue;
  std::sort(averages.begin(), averages.end());
  const size_t m = averages.size();
  const double median =
      m % 2 == 1 ? averages[m / 2] : 0.5 * (averages[m / 2 - 1] + averages[m / 2]);
  double best = std::numeric_limits<double>::infinity();
  for (const auto& [step, v] : trial) {
    if (step <= s) best = std::min(best, v);
  }
  return best > median ? Decision::kStop : Decision::kContinue;
}

Decision AshaDecision(const AshaOptions& o, const Series& trial,
                      std::span<const Series* const> others) {
  if (trial.empty()) return Decision::kContinue;
  int64_t previous = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i + 1 < trial.size(); ++i) previous = std::max(previous, trial[i].first);
  const int64_t step = trial.back().first;
  // Only rungs this report crosses are decided on; between rungs a trial
  // runs on.
  for (int64_t rung : AshaRungs(o, step)) {
    if (rung <= previous) continue;
    const double v = trial.back().second;
    std::vector<double> values{v};
    for (const Series* s : others) {
      if (auto w = ValueAtRung(*s, rung)) values.push_back(*w);
    }
    const size_t keep = std::max<size_t>(
        1,
        static_cast<size_t>(std::floor(static_cast<double>(values.size()) / o.reduction_factor)));
    std::nth_element(values.begin(), values.begin() + (keep - 1), values.end());
    if (v > values[keep - 1]) return Decision::kStop;
  }
  return Decision::kContinue;
}

}  // namespace gangway::tuner
