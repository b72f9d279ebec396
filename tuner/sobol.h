// Sobol' low-discrepancy sequence (Joe & Kuo 2008 direction numbers,
// "new-joe-kuo-6.21201", first 64 dimensions), optionally scrambled.
//
// Scrambling is a random linear matrix scramble plus a digital shift (the
// same family as scipy.stats.qmc.Sobol(scramble=True)): it keeps the
// net structure, so points stay evenly spread, while different seeds give
// different, unbiased point sets. Points are addressed by index (Gray-code
// free, random access), so a sampler can resume at any index after a
// restart without replaying the sequence.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace gangway::tuner {

class SobolSequence {
 public:
  static constexpr int kMaxDims = 64;

  // dims in [1, kMaxDims]. Unscrambled when rng is null: point 0 is then
  // the origin, which callers usually skip.
  SobolSequence(int dims, std::mt19937_64* rng);

  int dims() const { return dims_; }
  // Point `index` in [0, 1)^dims.
  std::vector<double> Point(uint64_t index) const;
  void Point(uint64_t index, double* out) const;

 private:
  int dims_;
  // direction_[d][k]: direction number k (bit k of the index) of dimension d.
  std::vector<std::vector<uint32_t>> direction_;
  std::vector<uint32_t> shift_;
};

}  // namespace gangway::tuner
