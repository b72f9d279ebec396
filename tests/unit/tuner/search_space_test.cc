#include "tuner/search_space.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gangway::tuner {
namespace {

using ::testing::HasSubstr;

absl::Status CreateError(std::vector<ParameterSpec> ps) {
  return SearchSpace::Create(std::move(ps)).status();
}

TEST(SearchSpaceTest, ValidationErrorsNameTheParameter) {
  struct Case {
    ParameterSpec spec;
    std::string message;
  };
  const Case cases[] = {
      {ParameterSpec::Double("lr", 0, 1, Scale::kLog),
       "parameters.lr: log scale needs min > 0, got 0"},
      {ParameterSpec::Int("n", -1, 8, Scale::kLog),
       "parameters.n: log scale needs min > 0, got -1"},
      {ParameterSpec::Double("x", 3, 1), "parameters.x: min > max (3 > 1)"},
      {ParameterSpec::Int("k", 5, 2), "parameters.k: min > max (5 > 2)"},
      {ParameterSpec::Double("x", 2, 2), "parameters.x: empty range"},
      {ParameterSpec::Double("x", 0, 1, Scale::kLinear, 0.0),
       "parameters.x: step must be > 0, got 0"},
      {ParameterSpec::Int("k", 0, 10, Scale::kLinear, -2),
       "parameters.k: step must be > 0, got -2"},
      {ParameterSpec::Double("x", 0, INFINITY), "parameters.x: min and max must be finite"},
      {ParameterSpec::Categorical("opt", {}),
       "parameters.opt: categorical needs at least one value"},
      {ParameterSpec::Categorical("opt", {"sgd", "adam", "sgd"}),
       "parameters.opt: duplicate value \"sgd\""},
      {ParameterSpec::Discrete("bs", {}), "parameters.bs: discrete needs at least one value"},
      {ParameterSpec::Discrete("bs", {32, 64, 32}), "parameters.bs: duplicate value 32"},
  };
  for (const Case& c : cases) {
    const absl::Status s = CreateError({c.spec});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
  EXPECT_THAT(
      std::string(
          CreateError({ParameterSpec::Double("x", 0, 1), ParameterSpec::Int("x", 0, 1)}).message()),
      HasSubstr("parameters.x: duplicate parameter name"));
  EXPECT_EQ(CreateError({}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SearchSpaceTest, GridSize) {
  auto space = SearchSpace::Create(
      {ParameterSpec::Int("a", 1, 4), ParameterSpec::Double("b", 0, 1, Scale::kLinear, 0.25),
       ParameterSpec::Categorical("c", {"x", "y"}), ParameterSpec::Discrete("d", {1, 10, 100})});
  ASSERT_TRUE(space.ok());
  EXPECT_EQ(*space->GridSize({}), 4u * 5u * 2u * 3u);

  auto cont = SearchSpace::Create({ParameterSpec::Double("lr", 1e-4, 1, Scale::kLog)});
  ASSERT_TRUE(cont.ok());
  const absl::Status refused = cont->GridSize({}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("parameters.lr: grid search needs a step"));
  EXPECT_EQ(*cont->GridSize({.points_per_double = 7}), 7u);

  // (1 - 0) / 0.1 is 9.999999999999998 in floating point: still 11 points.
  auto tenth = SearchSpace::Create({ParameterSpec::Double("x", 0, 1, Scale::kLinear, 0.1)});
  EXPECT_EQ(*tenth->GridSize({}), 11u);

  // Saturates instead of overflowing.
  std::vector<ParameterSpec> many;
  for (int i = 0; i < 8; ++i)
    many.push_back(ParameterSpec::Int("p" + std::to_string(i), 0, 1 << 20));
  EXPECT_EQ(*SearchSpace::Create(many)->GridSize({}), UINT64_MAX);
}

TEST(SearchSpaceTest, DecodeRespectsStepScaleAndLists) {
  auto space = SearchSpace::Create({ParameterSpec::Double("lr", 1e-5, 1e-1, Scale::kLog),
                                    ParameterSpec::Double("m", 0.5, 0.9, Scale::kLinear, 0.1),
                                    ParameterSpec::Int("layers", 2, 20, Scale::kLinear, 3),
                                    ParameterSpec::Int("units", 16, 1024, Scale::kLog),
                                    ParameterSpec::Categorical("opt", {"sgd", "adam"}),
                                    ParameterSpec::Discrete("bs", {256, 32, 64})});
  ASSERT_TRUE(space.ok());
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u01;
  int lr_below_1e3 = 0;
  int layer_counts[7] = {};
  for (int i = 0; i < 4000; ++i) {
    UnitPoint u(6);
    for (double& x : u) x = u01(rng);
    const Assignment a = space->Decode(u);
    ASSERT_TRUE(space->Check(a).ok());
    const double lr = std::get<double>(a[0]);
    lr_below_1e3 += lr < 1e-3;
    const double m = std::get<double>(a[1]);
    EXPECT_NEAR(std::round((m - 0.5) / 0.1) * 0.1 + 0.5, m, 1e-12);
    const int64_t layers = std::get<int64_t>(a[2]);
    EXPECT_EQ((layers - 2) % 3, 0);
    ++layer_counts[(layers - 2) / 3];
    // Encode inverts decode up to snapping.
    EXPECT_EQ(space->Decode(space->Encode(a)), a);
  }
  // Log-uniform: half of the decades [1e-5, 1e-3) of four -> about 50%.
  EXPECT_NEAR(lr_below_1e3 / 4000.0, 0.5, 0.04);
  // Lattice end points are as likely as inner ones (half-step widening).
  for (int c : layer_counts) EXPECT_NEAR(c / 4000.0, 1.0 / 7, 0.03);
  // Discrete values are kept sorted.
  EXPECT_EQ(std::get<DiscreteDomain>(space->parameters()[5].domain).values,
            (std::vector<double>{32, 64, 256}));
}

TEST(SearchSpaceTest, CheckRejectsForeignValues) {
  auto space = SearchSpace::Create(
      {ParameterSpec::Int("n", 1, 3), ParameterSpec::Categorical("c", {"a", "b"})});
  ASSERT_TRUE(space.ok());
  EXPECT_TRUE(space->Check({int64_t{2}, std::string("a")}).ok());
  EXPECT_THAT(std::string(space->Check({int64_t{4}, std::string("a")}).message()),
              HasSubstr("parameters.n: 4 is outside [1, 3]"));
  EXPECT_THAT(std::string(space->Check({int64_t{1}, std::string("z")}).message()),
              HasSubstr("parameters.c: \"z\" is not one of the values"));
  EXPECT_THAT(std::string(space->Check({2.0, std::string("a")}).message()),
              HasSubstr("parameters.n: expected an int value"));
  EXPECT_FALSE(space->Check({int64_t{1}}).ok());
}

TEST(SearchSpaceTest, FeaturesOneHotCategoricals) {
  auto space = SearchSpace::Create(
      {ParameterSpec::Double("x", 0, 1), ParameterSpec::Categorical("c", {"a", "b", "c"})});
  ASSERT_TRUE(space.ok());
  EXPECT_EQ(space->FeatureDim(), 4);
  const UnitPoint u = {0.25, 0.5};
  double f[4];
  space->Features(u.data(), false, f);
  EXPECT_DOUBLE_EQ(f[0], 0.25);
  EXPECT_EQ(f[1], 0);
  EXPECT_EQ(f[2], 1);
  EXPECT_EQ(f[3], 0);
}

}  // namespace
}  // namespace gangway::tuner
