// Sweep spec loading: YAML text to a validated gangway.v1.SweepSpec.
//
// Every error is INVALID_ARGUMENT and names the field path and the YAML line,
// e.g. `line 12: parameters[1].min: log scale needs min > 0, got 0`; all
// errors of a spec are reported at once, sorted by line. Unknown fields are
// errors, with a suggestion for a likely typo. The trial template is loaded
// and checked by the job spec loader (common/spec_loader.h), so it takes
// exactly a job spec's fields, with paths under "trialTemplate.".
//
// The format (camelCase, Katib-like):
//
//   kind: Sweep                # required (a job spec has no kind, or kind: Job)
//   apiVersion: gangway/v1     # optional
//   name: branin               # DNS-1123 label, at most 63 characters
//   objective:
//     metric: loss             # required; [A-Za-z0-9_./-], not step or epoch
//     type: minimize           # required: minimize | maximize
//     goal: 0.5                # optional, finite: the sweep succeeds once reached
//     value: last              # last (default) | best | min | max of the series
//     additionalMetrics: [acc] # optional, recorded too
//   objectives:                # instead of objective: 2..4 entries of the
//     - {metric: loss, type: minimize}   # same fields, no goal; distinct
//     - {metric: ms, type: minimize}     # metrics; a Pareto front results
//   parameters:                # 1..64, names [A-Za-z_][A-Za-z0-9_]* and unique
//     - {name: x1, type: double, min: -5, max: 10}            # step, scale optional
//     - {name: lr, type: double, min: 1e-5, max: 1e-1, scale: log}  # linear | log
//     - {name: layers, type: int, min: 1, max: 8, step: 1}   # integers only
//     - {name: opt, type: categorical, values: [sgd, adam]}  # strings
//     - {name: bs, type: discrete, values: [16, 32, 64]}     # numbers
//   algorithm:
//     name: bayesian           # required: grid | random | sobol | bayesian |
//                              # tpe | multivariate-tpe | cmaes | hyperband |
//                              # nsga2 | pbt
//                              # (any case; Katib's bayesianoptimization too)
//     seed: 1                  # optional, 0..2^63-1
//     settings:                # optional; values are kept as text
//       initialPoints: 8       # see "Algorithm settings" below
//   parallelTrials: 2          # default 1, 1..1000
//   maxTrials: 30              # default 10, 1..100000
//   maxFailedTrials: 3         # default min(3, maxTrials), 0..maxTrials
//   earlyStopping:             # optional
//     rule: median             # required here: median (Katib's medianstop) | asha
//     metric: loss             # default: the objective's metric
//     minTrials: 3             # median only, default 3, >= 1
//     startStep: 4             # median only, default 4, >= 0
//     minResource: 1           # asha only, default 1, >= 1
//     reductionFactor: 3       # asha only, default 3, >= 2 (the tuner's rule)
//     maxResource: 81          # asha only, optional, >= minResource
//   metricsCollector:          # optional
//     kind: stdout             # stdout (default) | file | push
//     regex: '(?P<name>\w+)=(?P<value>\S+)'  # stdout only; RE2 with groups name, value
//   trialTemplate:             # required: a job spec; name defaults to the sweep's
//     command: [sh, -c, 'echo loss=${trial.x1}']
//
// Placeholders: `${trial.NAME}` in the template's command, args, env values
// and workingDir is replaced by parameter NAME's value for each trial
// (ExpandTrialParams); NAME must be a declared parameter. Other `${...}`
// text is left alone for the shell.
//
// Algorithm settings (text, so they fit the proto's map<string, string>;
// integers are plain decimal without sign or leading zeros):
//   grid:     gridPointsPerDouble  0..10000; points per double parameter
//                                  without step (0, the default: such a
//                                  parameter is an error)
//   random, sobol, tpe, multivariate-tpe, cmaes: none
//   bayesian: initialPoints        0..100000 (0: by dimension)
//             candidates           0..1048576 (0: by data size)
//             transform            auto | standardize | copula | logshift
//   hyperband: resourceParameter   required: an int or double parameter
//                                  with min > 0 that the algorithm sets
//             reductionFactor      2..100 (default 3)
//   nsga2:    population           2..10000 (default 20)
//   pbt:      checkpointRoot       required: an absolute directory on
//                                  storage every node sees
//             population           2..1000 (default 8)
//             truncationPercent    1..50 (default 25)
//             resamplePercent      0..100 (default 25)
// A grid must have at most maxTrials points.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gangway/v1/gangway.pb.h"
#include "tuner/search_space.h"

namespace gangway::coordinator {

inline constexpr int kMaxSweepParameters = 64;
inline constexpr int kDefaultParallelTrials = 1;
inline constexpr int kDefaultMaxTrials = 10;
inline constexpr int kDefaultMaxFailedTrials = 3;

struct ParsedSweepSpec {
  v1::SweepSpec spec;
  // Field path ("parameters[1].min", "trialTemplate.command[0]",
  // "algorithm.settings.initialPoints") to its 1-based YAML line.
  std::map<std::string, int> lines;

  // "line N: path" when the line is known, else "path".
  std::string Where(const std::string& path) const;
};

// YAML text to a valid spec with every default filled in (the trial
// template's name included). INVALID_ARGUMENT listing every error.
absl::StatusOr<ParsedSweepSpec> ParseSweepSpec(std::string_view yaml);

// Fills what a proto leaves unset and YAML would have defaulted:
// parallel_trials and max_trials 0 -> 1 and 10, objective mode UNSPECIFIED
// -> LAST, metrics collector kind "" -> "stdout", early-stopping fields of
// the chosen rule that are 0 and must not be (min_trials, min_resource,
// reduction_factor), the template's name -> the sweep's, and
// ApplyJobSpecDefaults on the template. max_failed_trials and start_step are
// left alone: 0 is a valid choice there. Call before ValidateSweepSpec on
// specs that did not come from ParseSweepSpec.
void ApplySweepSpecDefaults(v1::SweepSpec* spec);

// Checks a spec that did not come from YAML (e.g. a proto sent over gRPC):
// the same rules as ParseSweepSpec; errors name the field path, no line.
absl::Status ValidateSweepSpec(const v1::SweepSpec& spec);

// New trial counts for UpdateSweep (0: unchanged) against the bounds a spec's
// own parallelTrials, maxTrials and maxFailedTrials have (the same rules),
// so an update cannot set what a spec could not (2^31 trials).
// INVALID_ARGUMENT naming the field.
absl::Status ValidateTrialCounts(int64_t parallel_trials, int64_t max_trials,
                                 int64_t max_failed_trials);

// The tuner's search space of a spec's parameters, in spec order.
// INVALID_ARGUMENT (naming parameters[i]) for parameters ValidateSweepSpec
// would refuse.
absl::StatusOr<tuner::SearchSpace> SearchSpaceOf(const v1::SweepSpec& spec);

// `text` with every `${trial.NAME}` whose NAME is a key of `params` replaced
// by its value; anything else is kept as written.
std::string ExpandTrialParams(std::string_view text,
                              const google::protobuf::Map<std::string, std::string>& params);

}  // namespace gangway::coordinator
