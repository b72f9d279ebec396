// Internals shared by the sweep spec's YAML loader (sweep_spec.cc) and its
// value rules (sweep_rules.cc): the field names, the limits and the one
// check both entry points run. Not for use outside those two files.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/spec_loader.h"
#include "gangway/v1/gangway.pb.h"
#include "tuner/tuner.h"

namespace gangway::coordinator::sweep_internal {

// The spec loader's helpers, named as the job spec loader names them.
using common::spec_internal::AV;
using common::spec_internal::CheckName;
using common::spec_internal::CheckRange;
using common::spec_internal::CheckText;
using common::spec_internal::Describe;
using common::spec_internal::DidYouMean;
using common::spec_internal::Errors;
using common::spec_internal::FieldLoader;
using common::spec_internal::IntRule;
using common::spec_internal::IsDigit;
using common::spec_internal::LineOf;
using common::spec_internal::Quote;
using common::spec_internal::ShowPath;

// ---------------------------------------------------------------------------
// Fields, names and limits.
// ---------------------------------------------------------------------------

inline constexpr std::array<std::string_view, 14> kSweepFields = {
    "kind",          "apiVersion",
    "name",          "objective",
    "objectives",    "parameters",
    "algorithm",     "parallelTrials",
    "maxTrials",     "maxFailedTrials",
    "earlyStopping", "metricsCollector",
    "trialTemplate", "ttlSecondsAfterFinished"};
inline constexpr std::array<std::string_view, 5> kObjectiveFields = {"metric", "type", "goal",
                                                                     "value", "additionalMetrics"};
inline constexpr std::array<std::string_view, 7> kParameterFields = {
    "name", "type", "min", "max", "step", "scale", "values"};
inline constexpr std::array<std::string_view, 3> kAlgorithmFields = {"name", "seed", "settings"};
inline constexpr std::array<std::string_view, 7> kEarlyStoppingFields = {
    "rule", "metric", "minTrials", "startStep", "minResource", "reductionFactor", "maxResource"};
inline constexpr std::array<std::string_view, 2> kCollectorFields = {"kind", "regex"};

inline constexpr std::array<std::string_view, 2> kObjectiveTypes = {"minimize", "maximize"};
// Index + 1 is the ObjectiveSpec::Mode.
inline constexpr std::array<std::string_view, 4> kValueModes = {"last", "best", "min", "max"};
// Index + 1 is the ParameterSpec::Type.
inline constexpr std::array<std::string_view, 4> kParameterTypes = {"double", "int", "categorical",
                                                                    "discrete"};
inline constexpr std::array<std::string_view, 2> kScales = {"linear", "log"};
inline constexpr std::array<std::string_view, 10> kAlgorithms = {
    "grid",  "random",    "sobol", "bayesian", "tpe", "multivariate-tpe",
    "cmaes", "hyperband", "nsga2", "pbt"};
inline constexpr std::array<std::string_view, 2> kRules = {"median", "asha"};
inline constexpr std::array<std::string_view, 3> kCollectorKinds = {"stdout", "file", "push"};

inline constexpr int64_t kMaxExactInt = int64_t{1} << 53;  // every int64 up to here is a double
inline constexpr IntRule kParallelTrialsRule{"parallelTrials", 1, 1000};
inline constexpr IntRule kMaxTrialsRule{"maxTrials", 1, 100'000};
inline constexpr IntRule kMaxFailedTrialsRule{"maxFailedTrials", 0, 100'000};
// As a job's (common/spec.cc): ten years at most; 0 deletes the sweep as
// soon as it ends.
inline constexpr IntRule kTtlRule{"ttlSecondsAfterFinished", 0, 315'360'000};
inline constexpr IntRule kSeedRule{"algorithm.seed", 0, std::numeric_limits<int64_t>::max()};
inline constexpr IntRule kMinTrialsRule{"earlyStopping.minTrials", 1, 100'000};
inline constexpr IntRule kStartStepRule{"earlyStopping.startStep", 0, kMaxExactInt};
inline constexpr IntRule kResourceRule{"earlyStopping.minResource", 1, kMaxExactInt};

inline constexpr size_t kMaxListValues = 1000;  // per categorical or discrete parameter
inline constexpr size_t kMaxParameterName = 64;
inline constexpr size_t kMaxMetricName = 128;
inline constexpr int kMaxPlaceholderNamesShown = 10;

inline constexpr int kDefaultMinTrials = 3;
inline constexpr int64_t kDefaultStartStep = 4;
inline constexpr int64_t kDefaultMinResource = 1;
inline constexpr double kDefaultReductionFactor = 3;

// What the metric collectors can report (common/metrics.cc's name chars).
bool IsMetricName(std::string_view s);

// Every rule on a sweep spec's values, written once for the YAML loader and
// ValidateSweepSpec (specs arriving as protos).
void CheckSweepSpec(const v1::SweepSpec& spec, Errors* errors);

// Every parameter; the search space when all pass.
std::optional<tuner::SearchSpace> CheckParameters(const v1::SweepSpec& spec, Errors* errors);

}  // namespace gangway::coordinator::sweep_internal
