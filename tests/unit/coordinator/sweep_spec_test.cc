#include "coordinator/sweep_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <variant>

#include "common/spec.h"

namespace gangway::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Line numbers matter: the tests below refer to them.
constexpr char kFullSpec[] = R"(kind: Sweep
apiVersion: gangway/v1
name: branin
objective:
  metric: loss
  type: maximize
  goal: 0.5
  value: best
  additionalMetrics: [acc, val/loss]
parameters:
  - {name: x1, type: double, min: -5, max: 10}
  - {name: lr, type: double, min: 1e-5, max: 1e-1, scale: log}
  - {name: layers, type: int, min: 1, max: 8, step: 1}
  - {name: opt, type: categorical, values: [sgd, adam]}
  - name: bs
    type: discrete
    values:
      - 64
      - 16
      - 32
algorithm:
  name: bayesian
  seed: 7
  settings: {initialPoints: 8, transform: copula}
parallelTrials: 2
maxTrials: 30
maxFailedTrials: 4
earlyStopping:
  rule: asha
  minResource: 2
  reductionFactor: 4
  maxResource: 81
metricsCollector:
  kind: stdout
  regex: '(?P<name>\w+)=(?P<value>\S+)'
trialTemplate:
  replicas: 2
  resources: {gpus: 1}
  command: [sh, -c, 'echo loss=${trial.x1}']
  args: [--lr, '${trial.lr}', '--opt=${trial.opt}']
  env:
    LAYERS: ${trial.layers}
  workingDir: /tmp/${trial.bs}
)";

// A small valid sweep; tests append or replace lines.
constexpr char kMinimal[] = R"(kind: Sweep
name: s
objective: {metric: loss, type: minimize}
parameters:
  - {name: x, type: double, min: 0, max: 1}
algorithm: {name: random}
trialTemplate:
  command: [echo, '${trial.x}']
)";

std::string ErrorOf(std::string_view yaml) {
  auto parsed = ParseSweepSpec(yaml);
  EXPECT_FALSE(parsed.ok()) << yaml;
  if (parsed.ok()) return "";
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

std::string ErrorOf(const v1::SweepSpec& spec) {
  absl::Status status = ValidateSweepSpec(spec);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

// kMinimal with `replace` (a whole line) swapped for `with`.
std::string Minimal(std::string_view replace, std::string_view with) {
  std::string text = kMinimal;
  size_t pos = text.find(replace);
  EXPECT_NE(pos, std::string::npos) << replace;
  if (pos != std::string::npos) text.replace(pos, replace.size(), with);
  return text;
}

v1::SweepSpec ValidProto() {
  v1::SweepSpec spec;
  spec.set_name("s");
  spec.mutable_objective()->set_metric("loss");
  auto* p = spec.add_parameters();
  p->set_name("x");
  p->set_type(v1::ParameterSpec::TYPE_DOUBLE);
  p->set_min(0);
  p->set_max(1);
  spec.mutable_algorithm()->set_name("random");
  spec.mutable_trial_template()->add_command("echo");
  spec.mutable_trial_template()->add_args("${trial.x}");
  ApplySweepSpecDefaults(&spec);
  return spec;
}

TEST(ParseSweepSpecTest, FullSpec) {
  auto parsed = ParseSweepSpec(kFullSpec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::SweepSpec& s = parsed->spec;
  EXPECT_EQ(s.name(), "branin");
  EXPECT_EQ(s.objective().metric(), "loss");
  EXPECT_TRUE(s.objective().maximize());
  EXPECT_TRUE(s.objective().has_goal());
  EXPECT_EQ(s.objective().goal(), 0.5);
  EXPECT_EQ(s.objective().mode(), v1::ObjectiveSpec::MODE_BEST);
  EXPECT_THAT(s.objective().additional_metrics(), ElementsAre("acc", "val/loss"));

  ASSERT_EQ(s.parameters_size(), 5);
  const auto& x1 = s.parameters(0);
  EXPECT_EQ(x1.name(), "x1");
  EXPECT_EQ(x1.type(), v1::ParameterSpec::TYPE_DOUBLE);
  EXPECT_EQ(x1.min(), -5);
  EXPECT_EQ(x1.max(), 10);
  EXPECT_EQ(x1.step(), 0);
  EXPECT_FALSE(x1.log());
  const auto& lr = s.parameters(1);
  EXPECT_EQ(lr.min(), 1e-5);
  EXPECT_EQ(lr.max(), 1e-1);
  EXPECT_TRUE(lr.log());
  const auto& layers = s.parameters(2);
  EXPECT_EQ(layers.type(), v1::ParameterSpec::TYPE_INT);
  EXPECT_EQ(layers.min(), 1);
  EXPECT_EQ(layers.max(), 8);
  EXPECT_EQ(layers.step(), 1);
  const auto& opt = s.parameters(3);
  EXPECT_EQ(opt.type(), v1::ParameterSpec::TYPE_CATEGORICAL);
  EXPECT_THAT(opt.values(), ElementsAre("sgd", "adam"));
  const auto& bs = s.parameters(4);
  EXPECT_EQ(bs.type(), v1::ParameterSpec::TYPE_DISCRETE);
  EXPECT_THAT(bs.discrete(), ElementsAre(64, 16, 32));  // as written; the tuner sorts

  EXPECT_EQ(s.algorithm().name(), "bayesian");
  EXPECT_EQ(s.algorithm().seed(), 7u);
  EXPECT_EQ(s.algorithm().settings().at("initialPoints"), "8");
  EXPECT_EQ(s.algorithm().settings().at("transform"), "copula");
  EXPECT_EQ(s.parallel_trials(), 2);
  EXPECT_EQ(s.max_trials(), 30);
  EXPECT_EQ(s.max_failed_trials(), 4);

  const auto& e = s.early_stopping();
  EXPECT_EQ(e.rule(), "asha");
  EXPECT_EQ(e.metric(), "loss");  // defaulted to the objective's
  EXPECT_EQ(e.min_resource(), 2);
  EXPECT_EQ(e.reduction_factor(), 4);
  EXPECT_EQ(e.max_resource(), 81);
  EXPECT_EQ(e.min_trials(), 0);  // median's fields stay unset
  EXPECT_EQ(s.metrics_collector().kind(), "stdout");
  EXPECT_EQ(s.metrics_collector().regex(), R"((?P<name>\w+)=(?P<value>\S+))");

  const v1::JobSpec& t = s.trial_template();
  EXPECT_EQ(t.name(), "branin");  // the sweep's
  EXPECT_EQ(t.replicas(), 2);
  EXPECT_EQ(t.procs_per_node(), 1);
  EXPECT_EQ(t.backoff_limit(), 6);
  EXPECT_EQ(t.restart_policy(), v1::RESTART_POLICY_NEVER);
  EXPECT_EQ(t.resources().gpus(), 1);
  EXPECT_THAT(t.command(), ElementsAre("sh", "-c", "echo loss=${trial.x1}"));
  EXPECT_THAT(t.args(), ElementsAre("--lr", "${trial.lr}", "--opt=${trial.opt}"));
  EXPECT_EQ(t.env().at("LAYERS"), "${trial.layers}");
  EXPECT_EQ(t.working_dir(), "/tmp/${trial.bs}");

  EXPECT_TRUE(ValidateSweepSpec(s).ok()) << ValidateSweepSpec(s);

  const auto& lines = parsed->lines;
  EXPECT_EQ(lines.at("kind"), 1);
  EXPECT_EQ(lines.at("objective"), 4);
  EXPECT_EQ(lines.at("objective.goal"), 7);
  EXPECT_EQ(lines.at("objective.additionalMetrics[1]"), 9);
  EXPECT_EQ(lines.at("parameters"), 10);
  EXPECT_EQ(lines.at("parameters[0]"), 11);
  EXPECT_EQ(lines.at("parameters[1].scale"), 12);
  EXPECT_EQ(lines.at("parameters[2].step"), 13);
  EXPECT_EQ(lines.at("parameters[3].values[1]"), 14);
  EXPECT_EQ(lines.at("parameters[4]"), 15);
  EXPECT_EQ(lines.at("parameters[4].type"), 16);
  EXPECT_EQ(lines.at("parameters[4].values[2]"), 20);
  EXPECT_EQ(lines.at("algorithm.name"), 22);
  EXPECT_EQ(lines.at("algorithm.settings.transform"), 24);
  EXPECT_EQ(lines.at("maxFailedTrials"), 27);
  EXPECT_EQ(lines.at("earlyStopping.maxResource"), 32);
  EXPECT_EQ(lines.at("metricsCollector.regex"), 35);
  EXPECT_EQ(lines.at("trialTemplate"), 36);
  EXPECT_EQ(lines.at("trialTemplate.resources.gpus"), 38);
  EXPECT_EQ(lines.at("trialTemplate.args[2]"), 40);
  EXPECT_EQ(lines.at("trialTemplate.env.LAYERS"), 42);
  EXPECT_EQ(lines.at("trialTemplate.workingDir"), 43);
  EXPECT_EQ(parsed->Where("parameters[1].min"), "line 12: parameters[1].min");
  EXPECT_EQ(parsed->Where("nothing.here"), "nothing.here");
}

TEST(ParseSweepSpecTest, Defaults) {
  auto parsed = ParseSweepSpec(kMinimal);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const v1::SweepSpec& s = parsed->spec;
  EXPECT_EQ(s.parallel_trials(), 1);
  EXPECT_EQ(s.max_trials(), 10);
  EXPECT_EQ(s.max_failed_trials(), 3);
  EXPECT_FALSE(s.objective().maximize());
  EXPECT_FALSE(s.objective().has_goal());
  EXPECT_EQ(s.objective().mode(), v1::ObjectiveSpec::MODE_LAST);
  EXPECT_EQ(s.algorithm().seed(), 0u);
  EXPECT_TRUE(s.algorithm().settings().empty());
  EXPECT_FALSE(s.has_early_stopping());
  EXPECT_EQ(s.metrics_collector().kind(), "stdout");
  EXPECT_TRUE(s.metrics_collector().regex().empty());
  EXPECT_EQ(s.trial_template().name(), "s");
  EXPECT_EQ(s.trial_template().replicas(), 1);
  EXPECT_EQ(s.trial_template().backoff_limit(), 6);
  EXPECT_EQ(s.parameters(0).step(), 0);
  EXPECT_FALSE(s.parameters(0).log());

  // maxFailedTrials defaults to at most maxTrials.
  parsed = ParseSweepSpec(std::string(kMinimal) + "maxTrials: 2\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.max_failed_trials(), 2);

  // Median's defaults; the template's own name is kept.
  parsed = ParseSweepSpec(Minimal("trialTemplate:\n",
                                  "earlyStopping: {rule: median}\n"
                                  "trialTemplate:\n  name: t\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.early_stopping().min_trials(), 3);
  EXPECT_EQ(parsed->spec.early_stopping().start_step(), 4);
  EXPECT_EQ(parsed->spec.early_stopping().metric(), "loss");
  EXPECT_EQ(parsed->spec.trial_template().name(), "t");

  // ASHA's defaults; a null earlyStopping is none.
  parsed = ParseSweepSpec(std::string(kMinimal) + "earlyStopping:\n  rule: asha\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.early_stopping().min_resource(), 1);
  EXPECT_EQ(parsed->spec.early_stopping().reduction_factor(), 3);
  EXPECT_EQ(parsed->spec.early_stopping().max_resource(), 0);
  parsed = ParseSweepSpec(std::string(kMinimal) + "earlyStopping:\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->spec.has_early_stopping());

  // Katib's names, stored as ours.
  parsed = ParseSweepSpec(std::string(kMinimal) + "earlyStopping: {rule: medianstop}\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.early_stopping().rule(), "median");
  parsed = ParseSweepSpec(Minimal("{name: random}", "{name: BayesianOptimization}"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.algorithm().name(), "bayesian");
}

TEST(ParseSweepSpecTest, TopLevelErrors) {
  EXPECT_THAT(ErrorOf(Minimal("kind: Sweep\n", "")),
              HasSubstr("kind: required: \"Sweep\" (a spec without kind is a job spec)"));
  EXPECT_THAT(ErrorOf(Minimal("kind: Sweep\n", "kind: Job\n")),
              HasSubstr("line 1: kind: must be \"Sweep\", got \"Job\""));
  EXPECT_THAT(ErrorOf(Minimal("name: s\n", "name: S_1\n")),
              HasSubstr("line 2: name: must be a DNS-1123 label"));
  EXPECT_THAT(ErrorOf(Minimal("name: s\n", "")), HasSubstr("name: required"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "maxTrial: 5\n"),
              HasSubstr("line 9: maxTrial: unknown field (did you mean \"maxTrials\"?)"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "parallel_trials: 5\n"),
              HasSubstr("line 9: parallel_trials: unknown field (did you mean "
                        "\"parallelTrials\"?)"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "parallelTrials: 0\n"),
              HasSubstr("line 9: parallelTrials: must be between 1 and 1000, got 0"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "maxTrials: 100001\n"),
              HasSubstr("line 9: maxTrials: must be between 1 and 100000, got 100001"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "maxTrials: \"5\"\n"),
              HasSubstr("line 9: maxTrials: must be an integer, got the string \"5\""));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "maxTrials: 5\nmaxFailedTrials: 6\n"),
              HasSubstr("line 10: maxFailedTrials: must be at most maxTrials (5), got 6"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "maxTrials: 5\nmaxTrials: 6\n"),
              HasSubstr("line 10: maxTrials: duplicate field (first set on line 9)"));
  EXPECT_THAT(ErrorOf(Minimal("trialTemplate:\n  command: [echo, '${trial.x}']\n", "")),
              HasSubstr("trialTemplate: required"));
  EXPECT_THAT(ErrorOf(Minimal("algorithm: {name: random}\n", "")),
              HasSubstr("algorithm: required"));
  EXPECT_THAT(ErrorOf(Minimal("objective: {metric: loss, type: minimize}\n", "objective:\n")),
              HasSubstr("line 3: objective: required"));
  EXPECT_THAT(ErrorOf("- a\n"), HasSubstr("line 1: a sweep spec must be a mapping of fields"));
  EXPECT_THAT(ErrorOf(std::string(kMinimal) + "---\nkind: Sweep\n"),
              HasSubstr("line 10: spec holds more than one YAML document; submit one sweep"));
  // yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040).
  EXPECT_THAT(ErrorOf(","), HasSubstr("line 1: malformed YAML: unexpected \",\""));
  EXPECT_THAT(ErrorOf(""), HasSubstr("spec is empty"));
}

TEST(ParseSweepSpecTest, ObjectiveErrors) {
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}", "{metric: loss}")),
              HasSubstr("line 3: objective.type: required: minimize or maximize"));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}", "{metric: loss, type: minimise}")),
              HasSubstr("line 3: objective.type: must be one of minimize, maximize, got "
                        "\"minimise\" (did you mean \"minimize\"?)"));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}", "{type: minimize}")),
              HasSubstr("line 3: objective.metric: required"));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}", "{metric: a b, type: minimize}")),
              HasSubstr("line 3: objective.metric: must be a metric name"));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}", "{metric: step, type: minimize}")),
              HasSubstr("line 3: objective.metric: \"step\" gives the step"));
  EXPECT_THAT(ErrorOf(Minimal("objective: {metric: loss, type: minimize}\n",
                              "objective:\n  metric: loss\n  type: minimize\n  goal: .inf\n")),
              HasSubstr("line 6: objective.goal: must be a finite number, got \".inf\""));
  EXPECT_THAT(ErrorOf(Minimal("objective: {metric: loss, type: minimize}\n",
                              "objective:\n  metric: loss\n  type: minimize\n  goal: low\n")),
              HasSubstr("line 6: objective.goal: must be a number, got \"low\""));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}",
                              "{metric: loss, type: minimize, value: median}")),
              HasSubstr("line 3: objective.value: must be one of last, best, min, max"));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}",
                              "{metric: loss, type: minimize, additionalMetrics: [acc, loss]}")),
              HasSubstr("line 3: objective.additionalMetrics[1]: \"loss\" is listed twice"));
  EXPECT_THAT(ErrorOf(Minimal("{metric: loss, type: minimize}",
                              "{metric: loss, type: minimize, goals: 1}")),
              HasSubstr("line 3: objective.goals: unknown field (did you mean \"goal\"?)"));
}

TEST(ParseSweepSpecTest, ParameterErrors) {
  const std::string p = "  - {name: x, type: double, min: 0, max: 1}\n";
  auto with = [&](std::string_view line) { return Minimal(p, line); };
  // From SearchSpace::Create, each on its field's line.
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, min: 2, max: 1}\n")),
              HasSubstr("line 5: parameters[0].min: min > max (2 > 1)"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, min: 1, max: 1}\n")),
              HasSubstr("line 5: parameters[0].min: empty range (min == max == 1)"));
  EXPECT_THAT(ErrorOf(with("  - name: x\n    type: double\n    min: 0\n    max: 1\n"
                           "    scale: log\n")),
              HasSubstr("line 7: parameters[0].min: log scale needs min > 0, got 0"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: categorical, values: [a, b, a]}\n")),
              HasSubstr("line 5: parameters[0].values[2]: duplicate value \"a\""));
  EXPECT_THAT(ErrorOf(with("  - name: x\n    type: discrete\n    values:\n      - 1\n      - 2\n"
                           "      - 1.0\n")),
              HasSubstr("line 10: parameters[0].values[2]: duplicate value 1"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: categorical, values: []}\n")),
              HasSubstr("line 5: parameters[0].values: categorical needs at least one value"));
  // The loader's own.
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, min: 0, max: 1, step: 0}\n")),
              HasSubstr("line 5: parameters[0].step: must be > 0, got 0 (leave step out"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, max: 1}\n")),
              HasSubstr("line 5: parameters[0].min: required for double parameters"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: int, min: 0, max: 1.5}\n")),
              HasSubstr("line 5: parameters[0].max: must be an integer between"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: int, min: 0, max: '10'}\n")),
              HasSubstr("line 5: parameters[0].max: must be a number, got the string \"10\" "
                        "(remove the quotes)"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: float, min: 0, max: 1}\n")),
              HasSubstr("line 5: parameters[0].type: must be one of double, int, categorical, "
                        "discrete, got \"float\""));
  EXPECT_THAT(ErrorOf(with("  - {name: x, min: 0, max: 1}\n")),
              HasSubstr("line 5: parameters[0].type: required"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: categorical, values: [a], min: 0}\n")),
              HasSubstr("line 5: parameters[0].min: not a field of categorical parameters "
                        "(they take values)"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, min: 0, max: 1, values: [1]}\n")),
              HasSubstr("line 5: parameters[0].values: not a field of double parameters"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, min: 0, max: 1, scale: log10}\n")),
              HasSubstr("line 5: parameters[0].scale: must be one of linear, log"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: double, min: 0, max: 1, maxx: 1}\n")),
              HasSubstr("line 5: parameters[0].maxx: unknown field (did you mean \"max\"?)"));
  EXPECT_THAT(ErrorOf(with("  - {name: 1x, type: double, min: 0, max: 1}\n")),
              HasSubstr("line 5: parameters[0].name: must match [A-Za-z_][A-Za-z0-9_]*"));
  EXPECT_THAT(ErrorOf(with("  - {name: x, type: discrete, values: [1, a]}\n")),
              HasSubstr("line 5: parameters[0].values[1]: must be a number, got \"a\""));
  EXPECT_THAT(ErrorOf(with(p + "  - {name: y, type: int, min: 0, max: 3}\n"
                               "  - {name: x, type: int, min: 0, max: 3}\n")),
              HasSubstr("line 7: parameters[2].name: duplicate parameter name \"x\" (also "
                        "parameters[0])"));
  EXPECT_THAT(ErrorOf(Minimal("parameters:\n" + p, "parameters: []\n")),
              HasSubstr("line 4: parameters: required: at least one parameter"));
  EXPECT_THAT(ErrorOf(Minimal(p, "  - x\n")),
              HasSubstr("line 5: parameters[0]: must be a mapping (name, type"));
  std::string many = "parameters:\n";
  for (int i = 0; i < 65; ++i) {
    many += "  - {name: p" + std::to_string(i) + ", type: int, min: 0, max: 1}\n";
  }
  EXPECT_THAT(ErrorOf(Minimal("parameters:\n" + p, many)),
              HasSubstr("line 4: parameters: must have at most 64 parameters, got 65"));
  // Every error of the spec, in line order.
  std::string e =
      ErrorOf(with("  - {name: x, type: double, min: 2, max: 1}\n"
                   "  - {name: y, type: int, min: 0, max: 1, step: 0.5}\n"));
  EXPECT_THAT(e, HasSubstr("line 5: parameters[0].min: min > max (2 > 1)\n"
                           "line 6: parameters[1].step: must be an integer"));
}

TEST(ParseSweepSpecTest, HyperbandNeedsANumericResourceParameterWithMinAboveZero) {
  const std::string params =
      "parameters:\n"
      "  - {name: x, type: double, min: 0, max: 1}\n"
      "  - {name: epochs, type: int, min: 1, max: 27}\n"
      "  - {name: opt, type: categorical, values: [a, b]}\n";
  auto with = [&](std::string_view settings) {
    return Minimal(
        "parameters:\n  - {name: x, type: double, min: 0, max: 1}\n"
        "algorithm: {name: random}\n",
        params + "algorithm:\n  name: HyperBand\n  settings:\n" + std::string(settings));
  };
  auto parsed = ParseSweepSpec(with("    resourceParameter: epochs\n    reductionFactor: 3\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.algorithm().name(), "hyperband");
  EXPECT_TRUE(ValidateSweepSpec(parsed->spec).ok());
  EXPECT_THAT(ErrorOf(with("    reductionFactor: 3\n")),
              HasSubstr("algorithm.settings.resourceParameter: required for hyperband"));
  EXPECT_THAT(ErrorOf(with("    resourceParameter: opt\n")),
              HasSubstr("algorithm.settings.resourceParameter: parameter opt must be an int or a "
                        "double"));
  EXPECT_THAT(ErrorOf(with("    resourceParameter: x\n")),
              HasSubstr("algorithm.settings.resourceParameter: parameter x needs min > 0"));
  EXPECT_THAT(ErrorOf(with("    resourceParameter: epoch\n")),
              HasSubstr("algorithm.settings.resourceParameter: no parameter named \"epoch\""));
  EXPECT_THAT(ErrorOf(with("    resourceParameter: epochs\n    reductionFactor: 1\n")),
              HasSubstr("line 12: algorithm.settings.reductionFactor: must be an integer between "
                        "2 and 100, got \"1\""));
  EXPECT_THAT(ErrorOf(with("    resourceParameter: epochs\n    eta: 3\n")),
              HasSubstr("algorithm.settings.eta: unknown setting (hyperband takes "
                        "resourceParameter, reductionFactor)"));
}

TEST(ParseSweepSpecTest, PbtNeedsAnAbsoluteCheckpointRoot) {
  auto with = [](std::string_view settings) {
    return Minimal("algorithm: {name: random}\n",
                   "algorithm:\n  name: pbt\n  settings:\n" + std::string(settings));
  };
  auto parsed = ParseSweepSpec(with("    checkpointRoot: /shared/ckpt\n    population: 4\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(ErrorOf(with("    population: 4\n")),
              HasSubstr("algorithm.settings.checkpointRoot: required for pbt"));
  EXPECT_THAT(ErrorOf(with("    checkpointRoot: ckpt\n")),
              HasSubstr("algorithm.settings.checkpointRoot: required for pbt: an absolute"));
  EXPECT_THAT(ErrorOf(with("    checkpointRoot: /c\n    truncationPercent: 60\n")),
              HasSubstr("algorithm.settings.truncationPercent: must be an integer between 1 and "
                        "50"));
}

TEST(ParseSweepSpecTest, AlgorithmErrors) {
  EXPECT_THAT(ErrorOf(Minimal("{name: random}", "{name: bayes}")),
              HasSubstr("line 6: algorithm.name: must be one of grid, random, sobol, bayesian, "
                        "tpe, multivariate-tpe, cmaes, hyperband, nsga2, pbt, got \"bayes\""));
  // Katib's TPE and CMA-ES names are real samplers; they take no settings.
  for (const char* name : {"tpe", "multivariate-tpe", "cmaes"}) {
    auto parsed = ParseSweepSpec(Minimal("{name: random}", std::string("{name: ") + name + "}"));
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(parsed->spec.algorithm().name(), name);
  }
  EXPECT_THAT(ErrorOf(Minimal("algorithm: {name: random}\n",
                              "algorithm:\n  name: tpe\n  settings:\n    initialPoints: 3\n")),
              HasSubstr("line 9: algorithm.settings.initialPoints: unknown setting (tpe takes "
                        "no settings)"));
  EXPECT_THAT(ErrorOf(Minimal("{name: random}", "{name: randon}")),
              HasSubstr("(did you mean \"random\"?)"));
  EXPECT_THAT(ErrorOf(Minimal("{name: random}", "{seed: 1}")),
              HasSubstr("line 6: algorithm.name: required"));
  EXPECT_THAT(ErrorOf(Minimal("{name: random}", "{name: random, seed: -1}")),
              HasSubstr("line 6: algorithm.seed: must be between 0 and"));
  EXPECT_THAT(ErrorOf(Minimal("algorithm: {name: random}\n",
                              "algorithm:\n  name: random\n  settings:\n    initialPoints: 3\n")),
              HasSubstr("line 9: algorithm.settings.initialPoints: unknown setting (random takes "
                        "no settings)"));
  EXPECT_THAT(ErrorOf(Minimal("algorithm: {name: random}\n",
                              "algorithm:\n  name: bayesian\n  settings:\n    initialPoint: 3\n")),
              HasSubstr("line 9: algorithm.settings.initialPoint: unknown setting (bayesian takes "
                        "initialPoints, candidates, transform) (did you mean \"initialPoints\"?)"));
  EXPECT_THAT(
      ErrorOf(Minimal("algorithm: {name: random}\n",
                      "algorithm:\n  name: bayesian\n  settings:\n    initialPoints: -3\n")),
      HasSubstr("line 9: algorithm.settings.initialPoints: must be an integer between 0 "
                "and 100000, got \"-3\""));
  EXPECT_THAT(ErrorOf(Minimal("algorithm: {name: random}\n",
                              "algorithm:\n  name: bayesian\n  settings: {transform: log}\n")),
              HasSubstr("line 8: algorithm.settings.transform: must be one of auto, standardize, "
                        "copula, logshift, got \"log\""));
  EXPECT_THAT(ErrorOf(Minimal("algorithm: {name: random}\n",
                              "algorithm:\n  name: grid\n  settings: {gridPoints: 3}\n")),
              HasSubstr("line 8: algorithm.settings.gridPoints: unknown setting (grid takes "
                        "gridPointsPerDouble)"));
  EXPECT_THAT(
      ErrorOf(Minimal("algorithm: {name: random}\n",
                      "algorithm:\n  name: grid\n  settings: {gridPointsPerDouble: [3]}\n")),
      HasSubstr("line 8: algorithm.settings.gridPointsPerDouble: must be a number or a "
                "string, got a list"));
}

TEST(ParseSweepSpecTest, GridSize) {
  const std::string grid = R"(kind: Sweep
name: g
objective: {metric: loss, type: minimize}
parameters:
  - {name: a, type: int, min: 1, max: 10}
  - {name: b, type: categorical, values: [x, y, z]}
  - {name: c, type: double, min: 0, max: 1}
algorithm:
  name: grid
  settings: {gridPointsPerDouble: 4}
maxTrials: 30
trialTemplate:
  command: [echo, '${trial.a}']
)";
  EXPECT_THAT(ErrorOf(grid),
              HasSubstr("line 9: algorithm.name: grid has 120 points but maxTrials is 30"));
  std::string fits = grid;
  fits.replace(fits.find("maxTrials: 30"), 13, "maxTrials: 120");
  auto parsed = ParseSweepSpec(fits);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  // A double without step needs gridPointsPerDouble.
  std::string no_points = fits;
  no_points.replace(no_points.find("  settings: {gridPointsPerDouble: 4}\n"), 37, "");
  EXPECT_THAT(ErrorOf(no_points), HasSubstr("line 7: parameters[2]: grid search needs a step"));
  // A step makes it a lattice: 10 * 3 * 11.
  std::string stepped = no_points;
  stepped.replace(stepped.find("max: 1}"), 7, "max: 1, step: 0.1}");
  stepped.replace(stepped.find("maxTrials: 120"), 14, "maxTrials: 329");
  EXPECT_THAT(ErrorOf(stepped), HasSubstr("grid has 330 points but maxTrials is 329"));
  // Saturated sizes are reported too.
  std::string huge = grid;
  huge.replace(huge.find("max: 10}"), 8, "max: 9007199254740992}");
  huge.replace(huge.find("{gridPointsPerDouble: 4}"), 24, "{gridPointsPerDouble: 10000}");
  EXPECT_THAT(ErrorOf(huge), HasSubstr("points but maxTrials is 30"));
}

TEST(ParseSweepSpecTest, Placeholders) {
  const std::string cmd = "  command: [echo, '${trial.x}']\n";
  auto with = [&](std::string_view text) {
    return Minimal("  - {name: x, type: double, min: 0, max: 1}\n",
                   "  - {name: x, type: double, min: 0, max: 1}\n"
                   "  - {name: lr, type: double, min: 0, max: 1}\n") +
           std::string(text);
  };
  std::string base = with("");
  EXPECT_TRUE(ParseSweepSpec(base).ok());
  auto replace = [&](std::string_view with_text) {
    std::string text = base;
    text.replace(text.find(cmd), cmd.size(), with_text);
    return text;
  };
  EXPECT_THAT(ErrorOf(replace("  command: [python]\n  args: [a, '--lr=${trial.lrr}']\n")),
              HasSubstr("line 10: trialTemplate.args[1]: ${trial.lrr} is not a parameter (did "
                        "you mean lr?)"));
  EXPECT_THAT(ErrorOf(replace("  command: [sh, -c, 'echo ${trial.zzzzzz}']\n")),
              HasSubstr("line 9: trialTemplate.command[2]: ${trial.zzzzzz} is not a parameter "
                        "(parameters: x, lr)"));
  EXPECT_THAT(ErrorOf(replace("  command: [x]\n  env:\n    A: ok\n    B: '${trial.y}'\n")),
              HasSubstr("line 12: trialTemplate.env.B: ${trial.y} is not a parameter"));
  EXPECT_THAT(ErrorOf(replace("  command: [x]\n  workingDir: /w/${trial.x\n")),
              HasSubstr("line 10: trialTemplate.workingDir: unterminated ${trial.NAME}"));
  EXPECT_THAT(ErrorOf(replace("  command: [x, '${trial.}']\n")),
              HasSubstr("line 9: trialTemplate.command[1]: ${trial.} names no parameter"));
  // Other ${...} are the shell's.
  EXPECT_TRUE(ParseSweepSpec(replace("  command: [sh, -c, 'echo ${HOME} ${trial.lr}']\n")).ok());
}

TEST(ParseSweepSpecTest, TrialTemplateUsesTheJobLoader) {
  auto with = [](std::string_view tmpl) {
    return Minimal("trialTemplate:\n  command: [echo, '${trial.x}']\n",
                   "trialTemplate:\n" + std::string(tmpl));
  };
  EXPECT_THAT(ErrorOf(with("  command: [x]\n  replicas: 0\n")),
              HasSubstr("line 9: trialTemplate.replicas: must be between 1 and 1024, got 0"));
  EXPECT_THAT(ErrorOf(with("  command: [x]\n  resources:\n    gpu: 1\n")),
              HasSubstr("line 10: trialTemplate.resources.gpu: unknown field (did you mean "
                        "\"gpus\"?)"));
  EXPECT_THAT(ErrorOf(with("  command: python train.py\n")),
              HasSubstr("line 8: trialTemplate.command: a single string is one program name"));
  EXPECT_THAT(ErrorOf(with("  args: [a]\n")),
              HasSubstr("line 7: trialTemplate.command: must be a non-empty list"));
  EXPECT_THAT(ErrorOf(with("  command: [x]\n  name: Bad\n")),
              HasSubstr("line 9: trialTemplate.name: must be a DNS-1123 label"));
  EXPECT_THAT(ErrorOf(with("  command: [x]\n  restartPolicy: onFailure\n")),
              HasSubstr("line 9: trialTemplate.restartPolicy: must be one of Never, OnFailure, "
                        "ExitCode, got \"onFailure\" (did you mean \"OnFailure\"?)"));
  EXPECT_THAT(ErrorOf(with("  command: [x]\n  kind: Sweep\n")),
              HasSubstr("line 9: trialTemplate.kind: must be \"Job\""));
  EXPECT_THAT(
      ErrorOf(Minimal("trialTemplate:\n  command: [echo, '${trial.x}']\n", "trialTemplate: [x]\n")),
      HasSubstr("line 7: trialTemplate: must be a mapping (a job spec), got a list"));
  EXPECT_TRUE(ParseSweepSpec(with("  kind: Job\n  command: [x]\n  restartPolicy: OnFailure\n"
                                  "  backoffLimit: 2\n  resources: {cpus: 0.5, memory: 1Gi}\n"))
                  .ok());
}

TEST(ParseSweepSpecTest, EarlyStoppingErrors) {
  auto with = [](std::string_view es) { return std::string(kMinimal) + std::string(es); };
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: asha\n  minTrials: 3\n")),
              HasSubstr("line 11: earlyStopping.minTrials: only for rule median"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: median\n  reductionFactor: 3\n")),
              HasSubstr("line 11: earlyStopping.reductionFactor: only for rule asha"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: medain\n")),
              HasSubstr("line 10: earlyStopping.rule: must be one of median, asha, got "
                        "\"medain\" (did you mean \"median\"?)"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  minTrials: 3\n")),
              HasSubstr("line 9: earlyStopping.rule: required: median or asha"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: asha\n  reductionFactor: 1.5\n")),
              HasSubstr("line 11: earlyStopping.reductionFactor: must be >= 2, got 1.5"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: asha\n  minResource: 9\n  maxResource: 3\n")),
              HasSubstr("line 12: earlyStopping.maxResource: must be >= minResource (9), got 3"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: median\n  minTrials: 0\n")),
              HasSubstr("line 11: earlyStopping.minTrials: must be between 1 and 100000, got 0"));
  EXPECT_THAT(ErrorOf(with("earlyStopping:\n  rule: median\n  metric: a b\n")),
              HasSubstr("line 11: earlyStopping.metric: must be a metric name"));
}

TEST(ParseSweepSpecTest, MetricsCollectorErrors) {
  auto with = [](std::string_view mc) { return std::string(kMinimal) + std::string(mc); };
  EXPECT_THAT(ErrorOf(with("metricsCollector:\n  regex: '(?P<name>\\w+=(?P<value>\\S+)'\n")),
              HasSubstr("line 10: metricsCollector.regex: does not compile: "));
  EXPECT_THAT(ErrorOf(with("metricsCollector:\n  regex: '(\\w+)=(\\S+)'\n")),
              HasSubstr("line 10: metricsCollector.regex: needs named groups (?P<name>...) and "
                        "(?P<value>...)"));
  EXPECT_THAT(
      ErrorOf(with("metricsCollector:\n  kind: file\n  regex: '(?P<name>a)(?P<value>b)'\n")),
      HasSubstr("line 11: metricsCollector.regex: only for kind stdout"));
  EXPECT_THAT(ErrorOf(with("metricsCollector:\n  kind: stdin\n")),
              HasSubstr("line 10: metricsCollector.kind: must be one of stdout, file, push, got "
                        "\"stdin\""));
  EXPECT_THAT(ErrorOf(with("metricsCollector:\n  names: [a]\n")),
              HasSubstr("line 10: metricsCollector.names: unknown field"));
  auto parsed = ParseSweepSpec(with("metricsCollector: {kind: push}\n"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->spec.metrics_collector().kind(), "push");
}

TEST(ValidateSweepSpecTest, ValidProtoPasses) {
  v1::SweepSpec spec = ValidProto();
  EXPECT_TRUE(ValidateSweepSpec(spec).ok()) << ValidateSweepSpec(spec);
  EXPECT_EQ(spec.parallel_trials(), 1);
  EXPECT_EQ(spec.max_trials(), 10);
  EXPECT_EQ(spec.max_failed_trials(), 0);  // 0 cannot be told from unset in a proto
  EXPECT_EQ(spec.objective().mode(), v1::ObjectiveSpec::MODE_LAST);
  EXPECT_EQ(spec.metrics_collector().kind(), "stdout");
  EXPECT_EQ(spec.trial_template().name(), "s");
  EXPECT_EQ(spec.trial_template().replicas(), 1);
  // A template without a name is fine even without the defaults.
  spec.mutable_trial_template()->clear_name();
  EXPECT_TRUE(ValidateSweepSpec(spec).ok());
}

TEST(ValidateSweepSpecTest, SameRulesWithoutLines) {
  v1::SweepSpec spec = ValidProto();
  spec.mutable_parameters(0)->set_min(2);
  EXPECT_EQ(ErrorOf(spec), "parameters[0].min: min > max (2 > 1)");

  spec = ValidProto();
  spec.mutable_parameters(0)->set_type(v1::ParameterSpec::TYPE_INT);
  spec.mutable_parameters(0)->set_max(1.5);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("parameters[0].max: must be an integer between"));

  spec = ValidProto();
  spec.mutable_parameters(0)->set_type(v1::ParameterSpec::TYPE_UNSPECIFIED);
  EXPECT_EQ(ErrorOf(spec), "parameters[0].type: required: double, int, categorical or discrete");

  spec = ValidProto();
  spec.mutable_parameters(0)->add_values("a");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("parameters[0].values: not a field of double"));

  spec = ValidProto();
  spec.mutable_parameters(0)->set_type(v1::ParameterSpec::TYPE_CATEGORICAL);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("parameters[0].max: not a field of categorical"));

  spec = ValidProto();
  spec.mutable_parameters(0)->set_log(true);
  EXPECT_EQ(ErrorOf(spec), "parameters[0].min: log scale needs min > 0, got 0");

  spec = ValidProto();
  spec.mutable_parameters(0)->set_step(-1);
  EXPECT_EQ(ErrorOf(spec), "parameters[0].step: step must be > 0, got -1");

  spec = ValidProto();
  *spec.add_parameters() = spec.parameters(0);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("parameters[1].name: duplicate parameter name \"x\""));

  spec = ValidProto();
  spec.mutable_algorithm()->set_name("pbt2");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("algorithm.name: must be one of grid, random, sobol"));

  spec = ValidProto();
  spec.mutable_algorithm()->set_name("grid");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("parameters[0]: grid search needs a step"));
  (*spec.mutable_algorithm()->mutable_settings())["gridPointsPerDouble"] = "11";
  EXPECT_EQ(ErrorOf(spec),
            "algorithm.name: grid has 11 points but maxTrials is 10 (raise "
            "maxTrials or coarsen the grid)");
  spec.set_max_trials(11);
  EXPECT_TRUE(ValidateSweepSpec(spec).ok());
  (*spec.mutable_algorithm()->mutable_settings())["gridPointsPerDouble"] = "011";
  EXPECT_THAT(ErrorOf(spec), HasSubstr("algorithm.settings.gridPointsPerDouble: must be an "
                                       "integer between 0 and 10000, got \"011\""));

  spec = ValidProto();
  spec.set_max_trials(0);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("maxTrials: must be between 1 and 100000, got 0"));

  spec = ValidProto();
  spec.set_max_failed_trials(11);
  EXPECT_EQ(ErrorOf(spec), "maxFailedTrials: must be at most maxTrials (10), got 11");

  spec = ValidProto();
  spec.mutable_objective()->set_has_goal(true);
  spec.mutable_objective()->set_goal(std::numeric_limits<double>::quiet_NaN());
  EXPECT_THAT(ErrorOf(spec), HasSubstr("objective.goal: must be finite, got nan"));

  spec = ValidProto();
  spec.mutable_objective()->set_mode(static_cast<v1::ObjectiveSpec::Mode>(9));
  EXPECT_THAT(ErrorOf(spec), HasSubstr("objective.value: must be last, best, min or max"));

  spec = ValidProto();
  spec.mutable_early_stopping()->set_rule("median");
  spec.mutable_early_stopping()->set_reduction_factor(3);
  EXPECT_THAT(ErrorOf(spec), HasSubstr("earlyStopping.reductionFactor: only for rule asha"));
  EXPECT_THAT(ErrorOf(spec), HasSubstr("earlyStopping.minTrials: must be >= 1, got 0"));
  spec.mutable_early_stopping()->clear_reduction_factor();
  ApplySweepSpecDefaults(&spec);
  EXPECT_TRUE(ValidateSweepSpec(spec).ok()) << ValidateSweepSpec(spec);

  spec = ValidProto();
  spec.mutable_early_stopping()->set_min_trials(2);
  EXPECT_EQ(ErrorOf(spec), "earlyStopping.rule: required: median or asha");

  spec = ValidProto();
  spec.mutable_metrics_collector()->set_regex("(");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("metricsCollector.regex: does not compile"));
  spec.mutable_metrics_collector()->set_regex("(?P<name>a)(?P<value>b)");
  EXPECT_TRUE(ValidateSweepSpec(spec).ok());
  spec.mutable_metrics_collector()->set_kind("push");
  EXPECT_EQ(ErrorOf(spec), "metricsCollector.regex: only for kind stdout");

  spec = ValidProto();
  spec.mutable_trial_template()->set_args(0, "${trial.y}");
  EXPECT_THAT(ErrorOf(spec), HasSubstr("trialTemplate.args[0]: ${trial.y} is not a parameter"));

  spec = ValidProto();
  spec.mutable_trial_template()->set_replicas(0);
  EXPECT_EQ(ErrorOf(spec), "trialTemplate.replicas: must be between 1 and 1024, got 0");

  spec = ValidProto();
  (*spec.mutable_trial_template()->mutable_params())["x"] = "1";
  EXPECT_THAT(ErrorOf(spec), HasSubstr("trialTemplate.params: are set by the sweep"));

  spec = ValidProto();
  spec.clear_trial_template();
  EXPECT_THAT(ErrorOf(spec), HasSubstr("trialTemplate: required"));

  v1::SweepSpec empty;
  std::string e = ErrorOf(empty);
  EXPECT_THAT(e, AllOf(HasSubstr("name: required"), HasSubstr("objective: required"),
                       HasSubstr("parameters: required"), HasSubstr("algorithm: required"),
                       HasSubstr("trialTemplate: required")));
}

TEST(SearchSpaceOfTest, RoundTrip) {
  auto parsed = ParseSweepSpec(kFullSpec);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  auto space = SearchSpaceOf(parsed->spec);
  ASSERT_TRUE(space.ok()) << space.status();
  ASSERT_EQ(space->size(), 5);
  const auto& ps = space->parameters();
  EXPECT_EQ(ps[0].name, "x1");
  const auto& x1 = std::get<tuner::DoubleDomain>(ps[0].domain);
  EXPECT_EQ(x1.min, -5);
  EXPECT_EQ(x1.max, 10);
  EXPECT_FALSE(x1.step.has_value());
  EXPECT_EQ(x1.scale, tuner::Scale::kLinear);
  const auto& lr = std::get<tuner::DoubleDomain>(ps[1].domain);
  EXPECT_EQ(lr.scale, tuner::Scale::kLog);
  EXPECT_EQ(lr.min, 1e-5);
  const auto& layers = std::get<tuner::IntDomain>(ps[2].domain);
  EXPECT_EQ(layers.min, 1);
  EXPECT_EQ(layers.max, 8);
  EXPECT_EQ(layers.step, 1);
  EXPECT_THAT(std::get<tuner::CategoricalDomain>(ps[3].domain).values, ElementsAre("sgd", "adam"));
  EXPECT_THAT(std::get<tuner::DiscreteDomain>(ps[4].domain).values, ElementsAre(16, 32, 64));
  EXPECT_EQ(space->Cardinality(2), 8u);

  // Decoded points are inside the spec's ranges.
  tuner::Assignment a = space->Decode({0.5, 0.0, 1.0, 0.9, 0.2});
  EXPECT_TRUE(space->Check(a).ok());
  EXPECT_EQ(std::get<int64_t>(a[2]), 8);
  EXPECT_EQ(std::get<std::string>(a[3]), "adam");
  EXPECT_EQ(std::get<double>(a[4]), 16);

  v1::SweepSpec bad = parsed->spec;
  bad.mutable_parameters(1)->set_min(0);
  auto refused = SearchSpaceOf(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("parameters[1].min: log scale needs min > 0"));
}

TEST(ExpandTrialParamsTest, ReplacesKnownPlaceholders) {
  google::protobuf::Map<std::string, std::string> params;
  params["x"] = "1.5";
  params["opt"] = "adam";
  EXPECT_EQ(ExpandTrialParams("--x=${trial.x} --opt ${trial.opt}${trial.x}", params),
            "--x=1.5 --opt adam1.5");
  EXPECT_EQ(ExpandTrialParams("${trial.y} ${HOME} ${trial.x", params),
            "${trial.y} ${HOME} ${trial.x");
  EXPECT_EQ(ExpandTrialParams("", params), "");
  EXPECT_EQ(ExpandTrialParams("plain", params), "plain");
}

TEST(SpecKindTest, ReadsOnlyKind) {
  EXPECT_EQ(common::SpecKind(kFullSpec).value_or("?"), "Sweep");
  EXPECT_EQ(common::SpecKind("name: a\ncommand: [x]\n").value_or("?"), "Job");
  EXPECT_EQ(common::SpecKind("kind: Job\n").value_or("?"), "Job");
  EXPECT_EQ(common::SpecKind("kind: Sweep\nnonsense: [1, 2]\n").value_or("?"), "Sweep");
  auto bad = common::SpecKind("a: 1\nkind: Experiment\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("line 2: kind: must be \"Job\" or \"Sweep\", got \"Experiment\""));
  EXPECT_THAT(std::string(common::SpecKind("kind: Sweep\nkind: Job\n").status().message()),
              HasSubstr("line 2: kind: duplicate field (first set on line 1)"));
  EXPECT_THAT(std::string(common::SpecKind("kind: [Sweep]\n").status().message()),
              HasSubstr("line 1: kind: must be \"Job\" or \"Sweep\", got a list"));
  EXPECT_THAT(std::string(common::SpecKind("- a\n").status().message()),
              HasSubstr("line 1: a spec must be a mapping of fields"));
  EXPECT_THAT(std::string(common::SpecKind(",").status().message()), HasSubstr("malformed YAML"));
  EXPECT_THAT(std::string(common::SpecKind("").status().message()), HasSubstr("spec is empty"));
}

std::string ReadExample(const std::string& name) {
  std::ifstream in(std::string(GANGWAY_SOURCE_DIR) + "/examples/sweeps/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ExamplesTest, SweepsParse) {
  auto branin = ParseSweepSpec(ReadExample("branin.yaml"));
  ASSERT_TRUE(branin.ok()) << branin.status();
  EXPECT_EQ(branin->spec.algorithm().name(), "bayesian");
  EXPECT_EQ(branin->spec.max_trials(), 20);
  EXPECT_EQ(branin->spec.parallel_trials(), 2);
  ASSERT_EQ(branin->spec.parameters_size(), 2);
  EXPECT_EQ(branin->spec.parameters(1).max(), 15);
  EXPECT_TRUE(SearchSpaceOf(branin->spec).ok());

  auto hyperband = ParseSweepSpec(ReadExample("hyperband.yaml"));
  ASSERT_TRUE(hyperband.ok()) << hyperband.status();
  EXPECT_EQ(hyperband->spec.algorithm().name(), "hyperband");
  EXPECT_EQ(hyperband->spec.algorithm().settings().at("resourceParameter"), "epochs");

  auto pbt = ParseSweepSpec(ReadExample("pbt.yaml"));
  ASSERT_TRUE(pbt.ok()) << pbt.status();
  EXPECT_EQ(pbt->spec.algorithm().name(), "pbt");

  auto grid = ParseSweepSpec(ReadExample("quadratic-grid.yaml"));
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->spec.algorithm().name(), "grid");
  auto space = SearchSpaceOf(grid->spec);
  ASSERT_TRUE(space.ok()) << space.status();
  EXPECT_EQ(space->GridSize({}).value_or(0), 35u);
  EXPECT_EQ(common::SpecKind(ReadExample("quadratic-grid.yaml")).value_or("?"), "Sweep");

  auto two = ParseSweepSpec(ReadExample("two-objectives.yaml"));
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_EQ(two->spec.objectives_size(), 2);
  EXPECT_EQ(two->spec.objectives(1).metric(), "latency_ms");
  EXPECT_EQ(two->spec.algorithm().name(), "nsga2");
  EXPECT_TRUE(SearchSpaceOf(two->spec).ok());
}

// Random byte flips, insertions and truncations of a valid spec: every result
// is a spec or INVALID_ARGUMENT, never a crash or another code; a spec that
// parses always passes ValidateSweepSpec, gives a search space and
// serializes.
TEST(ParseSweepSpecFuzzTest, MutationsNeverCrash) {
  std::mt19937 rng(20240612);
  const std::string base = kFullSpec;
  const std::string alphabet = ":-[]{}\"'#&*!|>%@`,?\n\t \\0123456789abcxyzeE.${}";
  int ok = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string text = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      size_t pos = rng() % text.size();
      switch (rng() % 5) {
        case 0:
          text[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          text[pos] = alphabet[rng() % alphabet.size()];
          break;
        case 2:
          text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 3:
          text.erase(pos, 1 + rng() % 8);
          break;
        case 4:
          text.resize(pos);
          break;
      }
    }
    auto parsed = ParseSweepSpec(text);
    if (parsed.ok()) {
      ++ok;
      EXPECT_TRUE(ValidateSweepSpec(parsed->spec).ok()) << text;
      EXPECT_TRUE(SearchSpaceOf(parsed->spec).ok()) << text;
      std::string wire;
      EXPECT_TRUE(parsed->spec.SerializeToString(&wire)) << text;
    } else {
      EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << text;
      EXPECT_FALSE(parsed.status().message().empty());
    }
    auto kind = common::SpecKind(text);
    if (!kind.ok()) {
      EXPECT_EQ(kind.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  // The mutations should leave a fair share valid, or the loop tests little.
  EXPECT_GT(ok, 50);
  EXPECT_LT(ok, 1950);
}

}  // namespace
}  // namespace gangway::coordinator
