#include "tuner/sobol.h"

#include <bit>
#include <cassert>

namespace gangway::tuner {
namespace {

struct Primitive {
  int degree;
  uint32_t a;  // Inner coefficients of the primitive polynomial.
  uint32_t m[18];
};

// Dimensions 2..64 of new-joe-kuo-6.21201 (dimension 1 is van der Corput).
constexpr Primitive kJoeKuo[] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
    {7, 50, {1, 3, 1, 3, 5, 53, 69}},
    {7, 55, {1, 1, 5, 5, 23, 33, 13}},
    {7, 56, {1, 1, 7, 7, 1, 61, 123}},
    {7, 59, {1, 1, 7, 9, 13, 61, 49}},
    {7, 62, {1, 3, 3, 5, 3, 55, 33}},
    {8, 14, {1, 3, 1, 15, 31, 13, 49, 245}},
    {8, 21, {1, 3, 5, 15, 31, 59, 63, 97}},
    {8, 22, {1, 3, 1, 11, 11, 11, 77, 249}},
    {8, 38, {1, 3, 1, 11, 27, 43, 71, 9}},
    {8, 47, {1, 1, 7, 15, 21, 11, 81, 45}},
    {8, 49, {1, 3, 7, 3, 25, 31, 65, 79}},
    {8, 50, {1, 3, 1, 1, 19, 11, 3, 205}},
    {8, 52, {1, 1, 5, 9, 19, 21, 29, 157}},
    {8, 56, {1, 3, 7, 11, 1, 33, 89, 185}},
    {8, 67, {1, 3, 3, 3, 15, 9, 79, 71}},
    {8, 70, {1, 3, 7, 11, 15, 39, 119, 27}},
    {8, 84, {1, 1, 3, 1, 11, 31, 97, 225}},
    {8, 97, {1, 1, 1, 3, 23, 43, 57, 177}},
    {8, 103, {1, 3, 7, 7, 17, 17, 37, 71}},
    {8, 115, {1, 3, 1, 5, 27, 63, 123, 213}},
    {8, 122, {1, 1, 3, 5, 11, 43, 53, 133}},
    {9, 8, {1, 3, 5, 5, 29, 17, 47, 173, 479}},
    {9, 13, {1, 3, 3, 11, 3, 1, 109, 9, 69}},
    {9, 16, {1, 1, 1, 5, 17, 39, 23, 5, 343}},
    {9, 22, {1, 3, 1, 5, 25, 15, 31, 103, 499}},
    {9, 25, {1, 1, 1, 11, 11, 17, 63, 105, 183}},
    {9, 44, {1, 1, 5, 11, 9, 29, 97, 231, 363}},
    {9, 47, {1, 1, 5, 15, 19, 45, 41, 7, 383}},
    {9, 52, {1, 3, 7, 7, 31, 19, 83, 137, 221}},
    {9, 55, {1, 1, 1, 3, 23, 15, 111, 223, 83}},
    {9, 59, {1, 1, 5, 13, 31, 15, 55, 25, 161}},
    {9, 62, {1, 1, 3, 13, 25, 47, 39, 87, 257}},
};
static_assert(sizeof(kJoeKuo) / sizeof(kJoeKuo[0]) == SobolSequence::kMaxDims - 1);

constexpr int kBits = 32;

}  // namespace

SobolSequence::SobolSequence(int dims, std::mt19937_64* rng) : dims_(dims) {
  assert(dims >= 1 && dims <= kMaxDims);
  direction_.assign(dims, std::vector<uint32_t>(kBits));
  shift_.assign(dims, 0);
  for (int k = 0; k < kBits; ++k) direction_[0][k] = 1u << (kBits - 1 - k);
  for (int d = 1; d < dims; ++d) {
    const Primitive& p = kJoeKuo[d - 1];
    const int s = p.degree;
    std::vector<uint32_t>& v = direction_[d];
    for (int k = 0; k < kBits; ++k) {
      if (k < s) {
        v[k] = p.m[k] << (kBits - 1 - k);
        continue;
      }
      uint32_t x = v[k - s] ^ (v[k - s] >> s);
      for (int j = 1; j < s; ++j) {
        if ((p.a >> (s - 1 - j)) & 1u) x ^= v[k - j];
      }
      v[k] = x;
    }
  }
  if (rng == nullptr) return;
  // Linear matrix scramble: digit r (most significant first) of every
  // direction number becomes the parity of itself and random earlier digits.
  std::uniform_int_distribution<uint32_t> bits;
  for (int d = 0; d < dims; ++d) {
    uint32_t mask[kBits];
    for (int r = 0; r < kBits; ++r) {
      const uint32_t self = 1u << (kBits - 1 - r);
      const uint32_t higher = r == 0 ? 0u : ~((self << 1) - 1u);
      mask[r] = self | (bits(*rng) & higher);
    }
    for (uint32_t& v : direction_[d]) {
      uint32_t out = 0;
      for (int r = 0; r < kBits; ++r) {
        out |= static_cast<uint32_t>(std::popcount(v & mask[r]) & 1) << (kBits - 1 - r);
      }
      v = out;
    }
    shift_[d] = bits(*rng);
  }
}

void SobolSequence::Point(uint64_t index, double* out) const {
  // The Gray code of the index selects the same direction numbers as the
  // usual recursive construction, so points match scipy's order.
  const uint64_t gray = index ^ (index >> 1);
  for (int d = 0; d < dims_; ++d) {
    uint32_t x = shift_[d];
    for (int k = 0; k < kBits; ++k) {
      if ((gray >> k) & 1u) x ^= direction_[d][k];
    }
    out[d] = static_cast<double>(x) * (1.0 / 4294967296.0);
  }
}

std::vector<double> SobolSequence::Point(uint64_t index) const {
  std::vector<double> out(dims_);
  Point(index, out.data());
  return out;
}

}  // namespace gangway::tuner
