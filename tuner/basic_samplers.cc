// Grid, random and Sobol samplers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "tuner/sampler.h"
#include "tuner/sobol.h"

namespace gangway::tuner {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool SameValue(const ParameterValue& a, const ParameterValue& b) {
  if (a.index() != b.index()) return false;
  if (const double* x = std::get_if<double>(&a)) {
    const double y = std::get<double>(b);
    return std::abs(*x - y) <= 1e-9 * std::max({1.0, std::abs(*x), std::abs(y)});
  }
  return a == b;
}

class GridSampler final : public Sampler {
 public:
  GridSampler(std::vector<std::vector<ParameterValue>> values, uint64_t total)
      : values_(std::move(values)), total_(total) {}

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    // Points already tried (by this tuner or a replayed history) are
    // skipped, so an extended or restarted sweep never repeats one.
    std::set<uint64_t> used;
    for (const Assignment* a : input.all) {
      if (auto idx = IndexOf(*a)) used.insert(*idx);
    }
    std::vector<Assignment> out;
    while (static_cast<int>(out.size()) < n && cursor_ < total_) {
      const uint64_t idx = cursor_++;
      if (used.count(idx) > 0) continue;
      out.push_back(At(idx));
    }
    // A point tried out of order (history) may sit past the cursor; the
    // cursor passing it is what makes the grid exhausted.
    return out;
  }

  bool exhausted() const override { return cursor_ >= total_; }

 private:
  // Mixed radix, last parameter fastest.
  Assignment At(uint64_t idx) const {
    Assignment a(values_.size());
    for (size_t i = values_.size(); i-- > 0;) {
      const uint64_t k = values_[i].size();
      a[i] = values_[i][idx % k];
      idx /= k;
    }
    return a;
  }

  std::optional<uint64_t> IndexOf(const Assignment& a) const {
    uint64_t idx = 0;
    for (size_t i = 0; i < values_.size(); ++i) {
      const auto& vs = values_[i];
      const auto it = std::find_if(vs.begin(), vs.end(),
                                   [&](const ParameterValue& v) { return SameValue(v, a[i]); });
      if (it == vs.end()) return std::nullopt;
      idx = idx * vs.size() + static_cast<uint64_t>(it - vs.begin());
    }
    return idx;
  }

  std::vector<std::vector<ParameterValue>> values_;
  uint64_t total_;
  uint64_t cursor_ = 0;
};

class RandomSampler final : public Sampler {
 public:
  explicit RandomSampler(uint64_t seed) : seed_(seed) {}
  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    std::vector<Assignment> out;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int j = 0; j < n; ++j) {
      std::mt19937_64 rng = StreamRng(seed_, 1, input.trial_count + j);
      UnitPoint u(input.space->size());
      for (double& x : u) x = uniform(rng);
      out.push_back(input.space->Decode(u));
    }
    return out;
  }

 private:
  uint64_t seed_;
};

class SobolSampler final : public Sampler {
 public:
  SobolSampler(int dims, uint64_t seed) : sequence_(dims, nullptr) {
    std::mt19937_64 rng = StreamRng(seed, 2, 0);
    sequence_ = SobolSequence(dims, &rng);
  }
  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    std::vector<Assignment> out;
    for (int j = 0; j < n; ++j) {
      out.push_back(input.space->Decode(sequence_.Point(input.trial_count + j)));
    }
    return out;
  }

 private:
  SobolSequence sequence_;
};

}  // namespace

std::mt19937_64 StreamRng(uint64_t seed, uint64_t purpose, uint64_t index) {
  return std::mt19937_64(SplitMix(SplitMix(SplitMix(seed) ^ purpose) ^ index));
}

absl::StatusOr<std::unique_ptr<Sampler>> MakeGridSampler(const SearchSpace& space,
                                                         const GridOptions& options) {
  absl::StatusOr<uint64_t> total = space.GridSize(options);
  if (!total.ok()) return total.status();
  if (*total > (uint64_t{1} << 62)) {
    return absl::InvalidArgumentError(absl::StrCat("grid has more than 2^62 points"));
  }
  std::vector<std::vector<ParameterValue>> values;
  for (int i = 0; i < space.size(); ++i) {
    auto v = space.GridValues(i, options);
    if (!v.ok()) return v.status();
    values.push_back(*std::move(v));
  }
  return std::make_unique<GridSampler>(std::move(values), *total);
}

std::unique_ptr<Sampler> MakeRandomSampler(uint64_t seed) {
  return std::make_unique<RandomSampler>(seed);
}

absl::StatusOr<std::unique_ptr<Sampler>> MakeSobolSampler(const SearchSpace& space, uint64_t seed) {
  if (space.size() > SobolSequence::kMaxDims) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sobol supports at most ", SobolSequence::kMaxDims, " parameters, got ", space.size()));
  }
  return std::make_unique<SobolSampler>(space.size(), seed);
}

}  // namespace gangway::tuner
