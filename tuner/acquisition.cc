#include "tuner/acquisition.h"

#include <cmath>

namespace gangway::tuner {
namespace {

constexpr double kLogSqrt2Pi = 0.9189385332046727;
constexpr double kSqrtPiOver2 = 1.2533141373155003;
constexpr double kInvSqrt2 = 0.7071067811865476;

// Scaled complementary error function exp(t^2) erfc(t), t >= 0.
double Erfcx(double t) {
  if (t < 25) return std::exp(t * t) * std::erfc(t);
  const double t2 = t * t;
  return (1 - 1 / (2 * t2) + 3 / (4 * t2 * t2) - 15 / (8 * t2 * t2 * t2)) / (t * 1.772453850905516);
}

// For z <= -1 (x = -z >= 1): 1 - x M(z) with M the Mills ratio
// Phi(z) / phi(z), which cancels badly for large x; the asymptotic series
// is exact to double precision past x = 40.
double OneMinusXMills(double x, double* mills) {
  *mills = kSqrtPiOver2 * Erfcx(x * kInvSqrt2);
  if (x < 40) return 1 - x * *mills;
  const double x2 = x * x;
  return (1 - 3 / x2 + 15 / (x2 * x2) - 105 / (x2 * x2 * x2)) / x2;
}

}  // namespace

double LogH(double z) {
  if (z > -1) {
    const double phi = std::exp(-0.5 * z * z - kLogSqrt2Pi);
    const double cdf = 0.5 * std::erfc(-z * kInvSqrt2);
    return std::log(phi + z * cdf);
  }
  double mills = 0;
  const double r = OneMinusXMills(-z, &mills);
  return -0.5 * z * z - kLogSqrt2Pi + std::log(r);
}

double DLogH(double z) {
  if (z > -1) {
    const double phi = std::exp(-0.5 * z * z - kLogSqrt2Pi);
    const double cdf = 0.5 * std::erfc(-z * kInvSqrt2);
    return cdf / (phi + z * cdf);
  }
  double mills = 0;
  const double r = OneMinusXMills(-z, &mills);
  return mills / r;
}

}  // namespace gangway::tuner
