#include "tuner/search_space.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace gangway::tuner {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// C++20 deduces this from an aggregate initializer; clang before 17 does
// not (the fuzz build uses Debian's clang 14), so spell the guide out.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

absl::Status Invalid(const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("parameters.", name, ": ", what));
}

// A numeric parameter seen as: a scale transform, an optional lattice
// min + k * step (k < count), and the interval [lo, hi] that u = 0..1 spans.
struct Numeric {
  bool log = false;
  double min = 0;
  double max = 0;
  double step = 0;  // 0: continuous.
  uint64_t count = 0;
  double lo = 0;
  double hi = 0;

  double T(double x) const { return log ? std::log(x) : x; }
  double Inv(double t) const { return log ? std::exp(t) : t; }

  double Decode(double u) const {
    u = std::clamp(u, 0.0, 1.0);
    const double x = Inv(T(lo) + u * (T(hi) - T(lo)));
    if (step == 0) return std::clamp(x, min, max);
    return min + static_cast<double>(Index(x)) * step;
  }
  uint64_t Index(double x) const {
    const double k = std::round((x - min) / step);
    if (!(k > 0)) return 0;
    return std::min(static_cast<uint64_t>(k), count - 1);
  }
  double Encode(double x) const {
    const double span = T(hi) - T(lo);
    if (!(span > 0)) return 0.5;
    return std::clamp((T(std::max(x, lo)) - T(lo)) / span, 0.0, 1.0);
  }
};

uint64_t LatticeCount(double min, double max, double step) {
  const double r = (max - min) / step;
  // Tolerance: (1 - 0) / 0.1 is 9.999999999999998, which means 11 points.
  const double k = std::floor(r + 1e-9 * std::max(1.0, r));
  if (k >= 1.8e19) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(k) + 1;
}

Numeric MakeNumeric(double min, double max, double step, bool log) {
  Numeric n;
  n.log = log;
  n.min = min;
  n.max = max;
  n.step = step;
  n.lo = min;
  n.hi = max;
  if (step > 0) {
    n.count = LatticeCount(min, max, step);
    const double top = min + static_cast<double>(n.count - 1) * step;
    n.lo = min - step / 2;
    // Log scale cannot widen below zero; the first cell is then smaller.
    if (log && !(n.lo > 0)) n.lo = min;
    n.hi = top + step / 2;
  }
  return n;
}

std::optional<Numeric> NumericOf(const ParameterSpec& p) {
  if (const auto* d = std::get_if<DoubleDomain>(&p.domain)) {
    return MakeNumeric(d->min, d->max, d->step.value_or(0), d->scale == Scale::kLog);
  }
  if (const auto* d = std::get_if<IntDomain>(&p.domain)) {
    return MakeNumeric(static_cast<double>(d->min), static_cast<double>(d->max),
                       static_cast<double>(d->step.value_or(1)), d->scale == Scale::kLog);
  }
  return std::nullopt;
}

size_t ListSize(const ParameterSpec& p) {
  if (const auto* c = std::get_if<CategoricalDomain>(&p.domain)) return c->values.size();
  if (const auto* d = std::get_if<DiscreteDomain>(&p.domain)) return d->values.size();
  return 0;
}

absl::Status ValidateRange(const std::string& name, double min, double max, Scale scale,
                           std::optional<double> step) {
  if (!std::isfinite(min) || !std::isfinite(max)) {
    return Invalid(name, absl::StrCat("min and max must be finite, got [", min, ", ", max, "]"));
  }
  if (min > max) return Invalid(name, absl::StrCat("min > max (", min, " > ", max, ")"));
  if (min == max) {
    return Invalid(name, absl::StrCat("empty range (min == max == ", min,
                                      "); use a discrete parameter for a constant"));
  }
  if (scale == Scale::kLog && min <= 0) {
    return Invalid(name, absl::StrCat("log scale needs min > 0, got ", min));
  }
  if (step.has_value() && !(*step > 0 && std::isfinite(*step))) {
    return Invalid(name, absl::StrCat("step must be > 0, got ", *step));
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const ParameterSpec& p) {
  return std::visit(Overloaded{
                        [&](const DoubleDomain& d) {
                          return ValidateRange(p.name, d.min, d.max, d.scale, d.step);
                        },
                        [&](const IntDomain& d) {
                          std::optional<double> step;
                          if (d.step) step = static_cast<double>(*d.step);
                          return ValidateRange(p.name, static_cast<double>(d.min),
                                               static_cast<double>(d.max), d.scale, step);
                        },
                        [&](const CategoricalDomain& d) {
                          if (d.values.empty())
                            return Invalid(p.name, "categorical needs at least one value");
                          std::set<std::string> seen;
                          for (const auto& v : d.values) {
                            if (!seen.insert(v).second) {
                              return Invalid(p.name, absl::StrCat("duplicate value \"", v, "\""));
                            }
                          }
                          return absl::OkStatus();
                        },
                        [&](const DiscreteDomain& d) {
                          if (d.values.empty())
                            return Invalid(p.name, "discrete needs at least one value");
                          std::set<double> seen;
                          for (double v : d.values) {
                            if (!std::isfinite(v)) {
                              return Invalid(
                                  p.name, absl::StrCat("discrete values must be finite, got ", v));
                            }
                            if (!seen.insert(v).second) {
                              return Invalid(p.name, absl::StrCat("duplicate value ", v));
                            }
                          }
                          return absl::OkStatus();
                        },
                    },
                    p.domain);
}

}  // namespace

ParameterSpec ParameterSpec::Double(std::string name, double min, double max, Scale scale,
                                    std::optional<double> step) {
  return {std::move(name), DoubleDomain{min, max, step, scale}};
}
ParameterSpec ParameterSpec::Int(std::string name, int64_t min, int64_t max, Scale scale,
                                 std::optional<int64_t> step) {
  return {std::move(name), IntDomain{min, max, step, scale}};
}
ParameterSpec ParameterSpec::Categorical(std::string name, std::vector<std::string> values) {
  return {std::move(name), CategoricalDomain{std::move(values)}};
}
ParameterSpec ParameterSpec::Discrete(std::string name, std::vector<double> values) {
  return {std::move(name), DiscreteDomain{std::move(values)}};
}

std::string FormatValue(const ParameterValue& value) {
  return std::visit(Overloaded{
                        [](double v) { return absl::StrCat(v); },
                        [](int64_t v) { return absl::StrCat(v); },
                        [](const std::string& v) { return v; },
                    },
                    value);
}

absl::StatusOr<SearchSpace> SearchSpace::Create(std::vector<ParameterSpec> parameters) {
  if (parameters.empty()) return absl::InvalidArgumentError("parameters: none given");
  std::set<std::string> names;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& p = parameters[i];
    if (p.name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("parameters[", i, "]: name is empty"));
    }
    if (!names.insert(p.name).second) return Invalid(p.name, "duplicate parameter name");
    if (absl::Status s = ValidateSpec(p); !s.ok()) return s;
  }
  for (auto& p : parameters) {
    if (auto* d = std::get_if<DiscreteDomain>(&p.domain)) {
      std::sort(d->values.begin(), d->values.end());
    }
  }
  return SearchSpace(std::move(parameters));
}

SearchSpace::SearchSpace(std::vector<ParameterSpec> parameters)
    : parameters_(std::move(parameters)) {
  for (const auto& p : parameters_) {
    feature_offset_.push_back(feature_dim_);
    feature_dim_ +=
        std::holds_alternative<CategoricalDomain>(p.domain) ? static_cast<int>(ListSize(p)) : 1;
  }
}

bool SearchSpace::IsCategorical(int i) const {
  return std::holds_alternative<CategoricalDomain>(parameters_[i].domain);
}

uint64_t SearchSpace::Cardinality(int i) const {
  const auto& p = parameters_[i];
  if (auto n = NumericOf(p)) return n->count;
  return ListSize(p);
}

absl::StatusOr<std::vector<ParameterValue>> SearchSpace::GridValues(
    int i, const GridOptions& options) const {
  const auto& p = parameters_[i];
  std::vector<ParameterValue> out;
  if (const auto* c = std::get_if<CategoricalDomain>(&p.domain)) {
    out.assign(c->values.begin(), c->values.end());
    return out;
  }
  if (const auto* d = std::get_if<DiscreteDomain>(&p.domain)) {
    out.assign(d->values.begin(), d->values.end());
    return out;
  }
  const Numeric n = *NumericOf(p);
  const bool is_int = std::holds_alternative<IntDomain>(p.domain);
  if (n.step == 0) {
    if (options.points_per_double <= 0) {
      return Invalid(p.name,
                     "grid search needs a step, or grid points per double parameter, for a double "
                     "without step");
    }
    const int k = options.points_per_double;
    for (int j = 0; j < k; ++j) {
      const double t = k == 1 ? 0 : static_cast<double>(j) / (k - 1);
      double x = n.Inv(n.T(n.min) + t * (n.T(n.max) - n.T(n.min)));
      if (j == k - 1 && k > 1) x = n.max;  // exp(log(max)) may miss max by an ulp.
      out.emplace_back(std::clamp(x, n.min, n.max));
    }
    return out;
  }
  if (n.count > (1u << 24)) {
    return Invalid(p.name, absl::StrCat("grid of ", n.count, " values is too large to list"));
  }
  const auto& id = std::get_if<IntDomain>(&p.domain);
  for (uint64_t k = 0; k < n.count; ++k) {
    if (is_int) {
      out.emplace_back(
          static_cast<int64_t>(id->min + static_cast<int64_t>(k) * id->step.value_or(1)));
    } else {
      out.emplace_back(n.min + static_cast<double>(k) * n.step);
    }
  }
  return out;
}

absl::StatusOr<uint64_t> SearchSpace::GridSize(const GridOptions& options) const {
  uint64_t total = 1;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (int i = 0; i < size(); ++i) {
    uint64_t k = Cardinality(i);
    if (k == 0) {
      if (options.points_per_double <= 0) {
        return Invalid(parameters_[i].name,
                       "grid search needs a step, or grid points per double parameter, for a "
                       "double without step");
      }
      k = static_cast<uint64_t>(options.points_per_double);
    }
    total = total > kMax / k ? kMax : total * k;
  }
  return total;
}

absl::Status SearchSpace::Check(const Assignment& a) const {
  if (a.size() != parameters_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("assignment has ", a.size(), " values for ",
                                                   parameters_.size(), " parameters"));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& p = parameters_[i];
    const ParameterValue& v = a[i];
    absl::Status s = std::visit(
        Overloaded{
            [&](const DoubleDomain& d) {
              const double* x = std::get_if<double>(&v);
              if (x == nullptr) return Invalid(p.name, "expected a double value");
              if (!(*x >= d.min && *x <= d.max)) {
                return Invalid(p.name, absl::StrCat(*x, " is outside [", d.min, ", ", d.max, "]"));
              }
              return absl::OkStatus();
            },
            [&](const IntDomain& d) {
              const int64_t* x = std::get_if<int64_t>(&v);
              if (x == nullptr) return Invalid(p.name, "expected an int value");
              if (*x < d.min || *x > d.max) {
                return Invalid(p.name, absl::StrCat(*x, " is outside [", d.min, ", ", d.max, "]"));
              }
              return absl::OkStatus();
            },
            [&](const CategoricalDomain& d) {
              const std::string* x = std::get_if<std::string>(&v);
              if (x == nullptr) return Invalid(p.name, "expected a categorical (string) value");
              if (std::find(d.values.begin(), d.values.end(), *x) == d.values.end()) {
                return Invalid(p.name, absl::StrCat("\"", *x, "\" is not one of the values"));
              }
              return absl::OkStatus();
            },
            [&](const DiscreteDomain& d) {
              const double* x = std::get_if<double>(&v);
              if (x == nullptr) return Invalid(p.name, "expected a double value");
              if (std::find(d.values.begin(), d.values.end(), *x) == d.values.end()) {
                return Invalid(p.name, absl::StrCat(*x, " is not one of the values"));
              }
              return absl::OkStatus();
            },
        },
        p.domain);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

Assignment SearchSpace::Decode(const UnitPoint& u) const {
  Assignment out;
  out.reserve(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& p = parameters_[i];
    const double ui = std::clamp(u[i], 0.0, 1.0);
    if (const auto* c = std::get_if<CategoricalDomain>(&p.domain)) {
      const size_t k = c->values.size();
      out.emplace_back(c->values[std::min(k - 1, static_cast<size_t>(ui * k))]);
    } else if (const auto* d = std::get_if<DiscreteDomain>(&p.domain)) {
      const size_t k = d->values.size();
      out.emplace_back(d->values[std::min(k - 1, static_cast<size_t>(ui * k))]);
    } else if (const auto* id = std::get_if<IntDomain>(&p.domain)) {
      const Numeric n = *NumericOf(p);
      const double x = n.Decode(ui);
      out.emplace_back(
          static_cast<int64_t>(id->min + static_cast<int64_t>(n.Index(x)) * id->step.value_or(1)));
    } else {
      out.emplace_back(NumericOf(p)->Decode(ui));
    }
  }
  return out;
}

UnitPoint SearchSpace::Encode(const Assignment& a) const {
  UnitPoint u(parameters_.size(), 0.5);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& p = parameters_[i];
    if (const auto* c = std::get_if<CategoricalDomain>(&p.domain)) {
      const auto it = std::find(c->values.begin(), c->values.end(), std::get<std::string>(a[i]));
      u[i] = (static_cast<double>(it - c->values.begin()) + 0.5) / c->values.size();
    } else if (const auto* d = std::get_if<DiscreteDomain>(&p.domain)) {
      const auto it = std::lower_bound(d->values.begin(), d->values.end(), std::get<double>(a[i]));
      u[i] = (static_cast<double>(it - d->values.begin()) + 0.5) / d->values.size();
    } else if (std::holds_alternative<IntDomain>(p.domain)) {
      u[i] = NumericOf(p)->Encode(static_cast<double>(std::get<int64_t>(a[i])));
    } else {
      u[i] = NumericOf(p)->Encode(std::get<double>(a[i]));
    }
  }
  return u;
}

double SearchSpace::SnapUnit(int i, double u) const {
  const auto& p = parameters_[i];
  u = std::clamp(u, 0.0, 1.0);
  if (const size_t k = ListSize(p); k > 0) {
    return (std::min(static_cast<double>(k - 1), std::floor(u * k)) + 0.5) / k;
  }
  const Numeric n = *NumericOf(p);
  if (n.step == 0) return u;
  return n.Encode(n.Decode(u));
}

void SearchSpace::Features(const double* u, bool relaxed, double* out) const {
  for (int i = 0; i < size(); ++i) {
    const int off = feature_offset_[i];
    if (IsCategorical(i)) {
      const size_t k = ListSize(parameters_[i]);
      const size_t idx = std::min(k - 1, static_cast<size_t>(std::clamp(u[i], 0.0, 1.0) * k));
      for (size_t j = 0; j < k; ++j) out[off + j] = j == idx ? 1.0 : 0.0;
    } else {
      out[off] = relaxed ? std::clamp(u[i], 0.0, 1.0) : SnapUnit(i, u[i]);
    }
  }
}

}  // namespace gangway::tuner
