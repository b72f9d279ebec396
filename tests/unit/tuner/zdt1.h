// ZDT1 and a two-objective tuner on the unit box, for the multi-objective
// tuner tests.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "tuner/tuner.h"

namespace gangway::tuner::mo_test {

// ZDT1 in d dimensions: both objectives minimized, front f2 = 1 - sqrt(f1).
inline std::vector<double> Zdt1(const Assignment& a) {
  const double f1 = std::get<double>(a[0]);
  double g = 0;
  for (size_t i = 1; i < a.size(); ++i) g += std::get<double>(a[i]);
  g = 1 + 9 * g / static_cast<double>(a.size() - 1);
  return {f1, g * (1 - std::sqrt(f1 / g))};
}

inline SearchSpace Box(int d) {
  std::vector<ParameterSpec> ps;
  for (int i = 0; i < d; ++i) ps.push_back(ParameterSpec::Double("x" + std::to_string(i), 0, 1));
  return *SearchSpace::Create(ps);
}

// Two minimized objectives on Box(d).
inline Tuner MultiTuner(Algorithm algorithm, uint64_t seed, int d = 6) {
  TunerOptions o;
  o.algorithm = algorithm;
  o.seed = seed;
  o.objectives = {Direction::kMinimize, Direction::kMinimize};
  return *Tuner::Create(Box(d), o);
}

}  // namespace gangway::tuner::mo_test
