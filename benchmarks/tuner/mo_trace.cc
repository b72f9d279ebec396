// Runs gangway's multi-objective samplers (nsga2, bayesian = ParEGO, random,
// sobol) on ZDT1 (30 variables) and bi-objective DTLZ2 (11 variables),
// sequential ask/tell, and writes every trial's objective values as JSON for
// mo_compare.py, which runs Optuna's NSGA-II on the same problems and seeds
// and computes hypervolumes.
//
//   mo_trace --problem zdt1 --sampler nsga2 --population 20 --seeds 20 --trials 100 >trace.json
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tuner/tuner.h"

namespace gangway::tuner::bench {
namespace {

std::vector<double> Zdt1(const std::vector<double>& x) {
  double g = 0;
  for (size_t i = 1; i < x.size(); ++i) g += x[i];
  g = 1 + 9 * g / static_cast<double>(x.size() - 1);
  return {x[0], g * (1 - std::sqrt(x[0] / g))};
}

std::vector<double> Dtlz2(const std::vector<double>& x) {
  double g = 0;
  for (size_t i = 1; i < x.size(); ++i) g += (x[i] - 0.5) * (x[i] - 0.5);
  const double a = x[0] * M_PI / 2;
  return {(1 + g) * std::cos(a), (1 + g) * std::sin(a)};
}

int Main(int argc, char** argv) {
  std::string problem = "zdt1", sampler = "nsga2";
  int population = 20, seeds = 20, trials = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--problem") {
      problem = value;
    } else if (flag == "--sampler") {
      sampler = value;
    } else if (flag == "--population") {
      population = std::atoi(value.c_str());
    } else if (flag == "--seeds") {
      seeds = std::atoi(value.c_str());
    } else if (flag == "--trials") {
      trials = std::atoi(value.c_str());
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (problem != "zdt1" && problem != "dtlz2") {
    std::cerr << "--problem: zdt1 or dtlz2\n";
    return 2;
  }
  const int d = problem == "zdt1" ? 30 : 11;
  std::vector<ParameterSpec> params;
  for (int i = 0; i < d; ++i)
    params.push_back(ParameterSpec::Double("x" + std::to_string(i), 0, 1));
  absl::StatusOr<Algorithm> algorithm = ParseAlgorithm(sampler);
  if (!algorithm.ok()) {
    std::cerr << algorithm.status() << "\n";
    return 2;
  }
  std::cout << "{\"problem\": \"" << problem << "\", \"sampler\": \"" << sampler
            << "\", \"population\": " << population << ", \"runs\": [";
  for (int seed = 0; seed < seeds; ++seed) {
    TunerOptions o;
    o.algorithm = *algorithm;
    o.seed = static_cast<uint64_t>(seed);
    o.objectives = {Direction::kMinimize, Direction::kMinimize};
    o.nsga2.population = population;
    absl::StatusOr<Tuner> t = Tuner::Create(*SearchSpace::Create(params), o);
    if (!t.ok()) {
      std::cerr << t.status() << "\n";
      return 1;
    }
    std::cout << (seed > 0 ? ",\n" : "\n") << "[";
    for (int k = 0; k < trials; ++k) {
      Proposal p = (*t->Ask(1))[0];
      std::vector<double> x;
      for (const ParameterValue& v : p.assignment) x.push_back(std::get<double>(v));
      std::vector<double> f = problem == "zdt1" ? Zdt1(x) : Dtlz2(x);
      if (!t->Tell(p.trial_id, f).ok()) return 1;
      std::cout << (k > 0 ? ", " : "") << "[" << f[0] << ", " << f[1] << "]";
    }
    std::cout << "]";
  }
  std::cout << "]}\n";
  return 0;
}

}  // namespace
}  // namespace gangway::tuner::bench

int main(int argc, char** argv) { return gangway::tuner::bench::Main(argc, argv); }
