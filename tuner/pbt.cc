#include "tuner/pbt.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace gangway::tuner {
namespace {

constexpr uint64_t kRandomPurpose = 13;
constexpr uint64_t kExplorePurpose = 14;

class PbtSampler final : public Sampler {
 public:
  PbtSampler(PbtOptions options, uint64_t seed) : options_(options), seed_(seed) {}

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    parents_.clear();
    std::vector<Assignment> out;
    const size_t pop = static_cast<size_t>(std::max(2, options_.population));
    for (int j = 0; j < n; ++j) {
      const size_t k = input.trials.size() + j;
      const size_t generation = k / pop, member = k % pop;
      if (generation == 0) {
        out.push_back(Random(*input.space, k));
        parents_.push_back(std::nullopt);
        continue;
      }
      const size_t begin = (generation - 1) * pop;
      // The previous generation must be known and finished (proposals of
      // this call are pending, so a generation never follows itself here).
      if (begin + pop > input.trials.size()) break;
      bool waiting = false;
      std::vector<size_t> ranked;
      for (size_t i = begin; i < begin + pop; ++i) {
        waiting |= input.trials[i].state == KnownTrial::State::kPending;
        ranked.push_back(i);
      }
      if (waiting) break;
      auto loss = [&](size_t i) {
        return input.trials[i].state == KnownTrial::State::kCompleted
                   ? input.trials[i].loss
                   : std::numeric_limits<double>::infinity();
      };
      std::stable_sort(ranked.begin(), ranked.end(),
                       [&](size_t a, size_t b) { return loss(a) < loss(b); });
      const size_t completed = static_cast<size_t>(std::count_if(
          ranked.begin(), ranked.end(), [&](size_t i) { return std::isfinite(loss(i)); }));
      if (completed == 0) {  // nothing to learn from: start over
        out.push_back(Random(*input.space, k));
        parents_.push_back(std::nullopt);
        continue;
      }
      const size_t q = std::max<size_t>(
          1, static_cast<size_t>(std::floor(options_.truncation * static_cast<double>(pop))));
      const size_t own = begin + member;
      const size_t rank =
          static_cast<size_t>(std::find(ranked.begin(), ranked.end(), own) - ranked.begin());
      const bool exploit = rank >= pop - q || !std::isfinite(loss(own));
      if (!exploit) {
        out.push_back(*input.trials[own].assignment);
        parents_.push_back(input.trials[own].id);
        continue;
      }
      std::mt19937_64 rng = StreamRng(seed_, kExplorePurpose, k);
      std::uniform_int_distribution<size_t> pick(0, std::min(q, completed) - 1);
      const size_t donor = ranked[pick(rng)];
      out.push_back(Explore(*input.space, *input.trials[donor].assignment, rng));
      parents_.push_back(input.trials[donor].id);
    }
    return out;
  }

  std::vector<std::optional<int64_t>> TakeParents() override { return std::move(parents_); }

 private:
  Assignment Random(const SearchSpace& space, uint64_t k) const {
    std::mt19937_64 rng = StreamRng(seed_, kRandomPurpose, k);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    UnitPoint u(space.size());
    for (double& x : u) x = uniform(rng);
    return space.Decode(u);
  }

  Assignment Explore(const SearchSpace& space, Assignment a, std::mt19937_64& rng) const {
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    for (int i = 0; i < space.size(); ++i) {
      const ParameterSpec& p = space.parameters()[i];
      const bool resample = uniform(rng) < options_.resample_probability;
      const bool up = uniform(rng) < 0.5;
      const double r = uniform(rng);
      if (resample) {
        UnitPoint u = space.Encode(a);
        u[i] = r;
        a[i] = space.Decode(u)[i];
        continue;
      }
      const double factor = up ? 1.2 : 0.8;
      if (const auto* d = std::get_if<DoubleDomain>(&p.domain)) {
        a[i] = std::clamp(std::get<double>(a[i]) * factor, d->min, d->max);
      } else if (const auto* n = std::get_if<IntDomain>(&p.domain)) {
        const int64_t v = std::get<int64_t>(a[i]);
        int64_t w = std::llround(static_cast<double>(v) * factor);
        if (w == v) w = up ? v + n->step.value_or(1) : v - n->step.value_or(1);
        a[i] = std::clamp(w, n->min, n->max);
      } else {
        // Lists: the neighbouring value (the unit map puts value j of m at
        // the centre of its 1/m cell).
        const uint64_t m = space.Cardinality(i);
        UnitPoint u = space.Encode(a);
        const double cell = 1.0 / static_cast<double>(std::max<uint64_t>(1, m));
        u[i] = std::clamp(u[i] + (up ? cell : -cell), 0.0, 1.0 - 1e-12);
        a[i] = space.Decode(u)[i];
      }
    }
    // Snap onto the lattice and into the domain as every proposal is.
    return space.Decode(space.Encode(a));
  }

  PbtOptions options_;
  uint64_t seed_;
  std::vector<std::optional<int64_t>> parents_;
};

}  // namespace

std::unique_ptr<Sampler> MakePbtSampler(const SearchSpace&, const PbtOptions& options,
                                        uint64_t seed) {
  return std::make_unique<PbtSampler>(options, seed);
}

}  // namespace gangway::tuner
