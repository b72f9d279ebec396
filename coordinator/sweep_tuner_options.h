// What a sweep spec asks of the tuner: its options, and the checks of
// algorithm settings that need the search space.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"
#include "tuner/search_space.h"
#include "tuner/tuner.h"

namespace gangway::coordinator {

// An algorithm setting (text in AlgorithmSpec.settings): an integer in
// [min, max], one of `names`, or any text (`text`; checked against the
// parameters by CheckAlgorithmAgainstSpace).
struct SettingRule {
  std::string_view key;
  int64_t max = 0;
  std::span<const std::string_view> names = {};
  int64_t min = 0;
  bool text = false;
};

// The settings an algorithm takes (none: empty).
std::span<const SettingRule> AlgorithmSettings(tuner::Algorithm algorithm);

// Plain decimal, no sign or leading zeros, at most `max`.
std::optional<int64_t> ParseSettingInt(std::string_view text, int64_t max);

// Tuner options from a sweep spec (algorithm, direction, seed, settings,
// early stopping). INVALID_ARGUMENT naming the field for settings that do
// not parse.
absl::StatusOr<tuner::TunerOptions> TunerOptionsOf(const v1::SweepSpec& spec);

// pbt: the trial's checkpoint directory (CHECKPOINT_ROOT/SWEEP/NUMBER),
// recorded on the trial and handed to its job as GANGWAY_CHECKPOINT_DIR,
// and its parent's as GANGWAY_PARENT_CHECKPOINT_DIR. Nothing for other
// algorithms.
void SetCheckpointEnv(const v1::Sweep& sweep, v1::Trial* trial, v1::JobSpec* job);

// Settings that only make sense against the parameters (hyperband's
// resource parameter). OK when the options do not parse: those errors are
// reported on their own. The message starts with the field path.
absl::Status CheckAlgorithmAgainstSpace(const v1::SweepSpec& spec, const tuner::SearchSpace& space);

}  // namespace gangway::coordinator
