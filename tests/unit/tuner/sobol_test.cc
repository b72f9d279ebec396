#include "tuner/sobol.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"

namespace gangway::tuner {
namespace {

// Reference values from scipy.stats.qmc.Sobol(d, scramble=False) 1.10.1,
// which uses the same Joe-Kuo direction numbers.
TEST(SobolTest, UnscrambledMatchesScipy) {
  const SobolSequence s(63, nullptr);
  const double first[8][5] = {{0, 0, 0, 0, 0},
                              {0.5, 0.5, 0.5, 0.5, 0.5},
                              {0.75, 0.25, 0.25, 0.75, 0.25},
                              {0.25, 0.75, 0.75, 0.25, 0.75},
                              {0.375, 0.375, 0.625, 0.875, 0.125},
                              {0.875, 0.875, 0.125, 0.375, 0.625},
                              {0.625, 0.125, 0.875, 0.125, 0.375},
                              {0.125, 0.625, 0.375, 0.625, 0.875}};
  const int dims[5] = {0, 1, 2, 10, 20};
  for (int i = 0; i < 8; ++i) {
    const std::vector<double> p = s.Point(i);
    for (int k = 0; k < 5; ++k) EXPECT_DOUBLE_EQ(p[dims[k]], first[i][k]) << i << " " << k;
  }
  const std::vector<double> p1000 = s.Point(1000);
  EXPECT_NEAR(p1000[0], 0.21972656, 1e-8);
  EXPECT_NEAR(p1000[5], 0.90722656, 1e-8);
  EXPECT_NEAR(p1000[30], 0.14746094, 1e-8);
  EXPECT_NEAR(p1000[62], 0.25878906, 1e-8);
  const std::vector<double> p777 = s.Point(777);
  EXPECT_NEAR(p777[3], 0.27441406, 1e-8);
  EXPECT_NEAR(p777[21], 0.27246094, 1e-8);
  EXPECT_NEAR(p777[40], 0.72167969, 1e-8);
  EXPECT_NEAR(p777[62], 0.13769531, 1e-8);
}

// The first 2^k points of a scrambled (0, m, s)-net still put exactly one
// point in each of 2^k equal intervals of every single dimension.
TEST(SobolTest, ScrambledKeepsStratification) {
  std::mt19937_64 rng(7);
  const SobolSequence s(21, &rng);
  for (int d = 0; d < 21; ++d) {
    std::set<int> cells;
    for (int i = 0; i < 64; ++i) {
      const double x = s.Point(i)[d];
      ASSERT_GE(x, 0.0);
      ASSERT_LT(x, 1.0);
      cells.insert(static_cast<int>(x * 64));
    }
    EXPECT_EQ(cells.size(), 64u) << "dim " << d;
  }
}

TEST(SobolTest, SeedsGiveDifferentPoints) {
  std::mt19937_64 a(1), b(2);
  const SobolSequence sa(4, &a), sb(4, &b);
  EXPECT_NE(sa.Point(3), sb.Point(3));
  std::mt19937_64 c(1);
  const SobolSequence sc(4, &c);
  EXPECT_EQ(sa.Point(3), sc.Point(3));
}

}  // namespace
}  // namespace gangway::tuner
