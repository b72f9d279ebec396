// The search space of a sweep: typed parameters, their validation, the grid
// they span, and the map between assignments and the unit cube that every
// sampler works in.
//
// Pure data and functions: no RPC, clock, logging or randomness.
//
// Unit coordinates. Each parameter owns one coordinate u in [0, 1]:
//  - double/int: u is the position in [min, max] on the parameter's scale
//    (log space for log scale). A parameter on a lattice (int, or double with
//    a step) is widened by half a step at both ends before scaling, so that
//    decoding a uniform u gives every lattice point the same probability
//    (plain rounding would give the end points half mass).
//  - discrete (list of numbers): ordinal; value i of k sits at (i + 0.5) / k.
//    The list is kept sorted, so the order is the numeric one.
//  - categorical: value i of k owns [i / k, (i + 1) / k). Models must not read
//    the coordinate as a number; Features() one-hot encodes it instead.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gangway::tuner {

enum class Scale { kLinear, kLog };

struct DoubleDomain {
  double min = 0;
  double max = 1;
  // Values are min + k * step (k integer) when set; the step is in value
  // space on either scale, so a log-scale double with a step is a lattice
  // sampled log-uniformly.
  std::optional<double> step;
  Scale scale = Scale::kLinear;
};

struct IntDomain {
  int64_t min = 0;
  int64_t max = 1;
  std::optional<int64_t> step;  // 1 when unset.
  Scale scale = Scale::kLinear;
};

struct CategoricalDomain {
  std::vector<std::string> values;
};

struct DiscreteDomain {
  std::vector<double> values;  // Sorted ascending by SearchSpace::Create.
};

struct ParameterSpec {
  std::string name;
  std::variant<DoubleDomain, IntDomain, CategoricalDomain, DiscreteDomain> domain;

  static ParameterSpec Double(std::string name, double min, double max,
                              Scale scale = Scale::kLinear,
                              std::optional<double> step = std::nullopt);
  static ParameterSpec Int(std::string name, int64_t min, int64_t max, Scale scale = Scale::kLinear,
                           std::optional<int64_t> step = std::nullopt);
  static ParameterSpec Categorical(std::string name, std::vector<std::string> values);
  static ParameterSpec Discrete(std::string name, std::vector<double> values);
};

// double for double and discrete parameters, int64_t for int, string for
// categorical.
using ParameterValue = std::variant<double, int64_t, std::string>;
// One value per parameter, in the space's parameter order.
using Assignment = std::vector<ParameterValue>;
using UnitPoint = std::vector<double>;

std::string FormatValue(const ParameterValue& value);

struct GridOptions {
  // Points per double parameter that has no step (evenly spaced on its
  // scale, both ends included). 0 refuses such parameters, since a grid over
  // a continuum is a choice the user should make.
  int points_per_double = 0;
};

class SearchSpace {
 public:
  // Errors: INVALID_ARGUMENT naming the parameter, e.g.
  // "parameters.lr: log scale needs min > 0, got 0".
  static absl::StatusOr<SearchSpace> Create(std::vector<ParameterSpec> parameters);

  const std::vector<ParameterSpec>& parameters() const { return parameters_; }
  int size() const { return static_cast<int>(parameters_.size()); }

  // Number of grid points; saturates at UINT64_MAX so callers can compare it
  // against a trial budget without overflow. INVALID_ARGUMENT for a double
  // without step when options.points_per_double is 0.
  absl::StatusOr<uint64_t> GridSize(const GridOptions& options) const;
  // The grid values of parameter i, ascending (lists in their given order).
  absl::StatusOr<std::vector<ParameterValue>> GridValues(int i, const GridOptions& options) const;

  // OK when `assignment` has one value of the right type per parameter and
  // each is inside its domain (off-step values are accepted: a history from
  // an older spec is still informative). INVALID_ARGUMENT otherwise.
  absl::Status Check(const Assignment& assignment) const;

  // Unit point -> assignment: snaps to the lattice / list and clamps.
  Assignment Decode(const UnitPoint& u) const;
  // Assignment -> unit point. `assignment` must pass Check().
  UnitPoint Encode(const Assignment& assignment) const;

  // Model features of a unit point: one column per numeric parameter (its
  // snapped unit coordinate, or the raw one when `relaxed`, which gradient
  // based optimizers need), k one-hot columns per categorical.
  int FeatureDim() const { return feature_dim_; }
  void Features(const double* u, bool relaxed, double* out) const;
  // Column of each parameter's first feature.
  int FeatureOffset(int i) const { return feature_offset_[i]; }
  bool IsCategorical(int i) const;
  // Number of values of a categorical or discrete parameter, of lattice
  // points of an int or stepped double, 0 for a continuous double.
  uint64_t Cardinality(int i) const;

 private:
  explicit SearchSpace(std::vector<ParameterSpec> parameters);
  double SnapUnit(int i, double u) const;

  std::vector<ParameterSpec> parameters_;
  std::vector<int> feature_offset_;
  int feature_dim_ = 0;
};

}  // namespace gangway::tuner
