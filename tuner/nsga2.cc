#include "tuner/nsga2.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "tuner/pareto.h"

namespace gangway::tuner {
namespace {

constexpr uint64_t kRandomPurpose = 11;
constexpr uint64_t kChildPurpose = 12;
constexpr uint64_t kRetryPurpose = 13;
// Draws of a child (then of a random point) before a repeat is accepted: a
// small discrete space may have no untried point left.
constexpr int kAttempts = 32;

struct Member {
  size_t trial = 0;  // index into input.trials
  int front = 0;
  double crowding = 0;
};

class Nsga2Sampler final : public Sampler {
 public:
  Nsga2Sampler(const SearchSpace& space, Nsga2Options options, uint64_t seed)
      : options_(options), seed_(seed) {
    for (int i = 0; i < space.size(); ++i) categorical_.push_back(space.IsCategorical(i));
  }

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    std::vector<Assignment> out;
    const int pop = std::max(2, options_.population);
    // A child equal to a parent (no crossover and no mutation, or both
    // undone by snapping to an int's lattice) would spend a trial on a
    // result already known: such repeats are drawn again. Compared in the
    // unit cube with a tolerance: a log-scale value decoded from its
    // encoding can differ from the stored one in the last bit.
    const SearchSpace& space = *input.space;
    std::vector<UnitPoint> known;
    for (const Assignment* t : input.all) known.push_back(space.Encode(*t));
    auto tried = [&](const Assignment& a) {
      const UnitPoint u = space.Encode(a);
      for (const UnitPoint& k : known) {
        bool same = true;
        for (size_t i = 0; i < u.size() && same; ++i) same = std::abs(k[i] - u[i]) < 1e-9;
        if (same) return true;
      }
      return false;
    };
    for (int j = 0; j < n; ++j) {
      const uint64_t k = input.trials.size() + j;
      const int64_t generation = static_cast<int64_t>(k / pop);
      std::vector<Member> parents =
          generation == 0 ? std::vector<Member>{} : Parents(input, generation, pop);
      Assignment a;
      for (int attempt = 0; attempt < 2 * kAttempts; ++attempt) {
        a = parents.size() >= 2 && attempt < kAttempts
                ? space.Decode(Child(input, parents, k, attempt))
                : Random(space, k, attempt);
        if (!tried(a)) break;
      }
      known.push_back(space.Encode(a));
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  // The elite after generations 0..generation-1, with each member's front
  // and crowding distance within the elite.
  std::vector<Member> Parents(const SamplerInput& input, int64_t generation, int pop) const {
    std::vector<size_t> elite;
    for (int64_t g = 0; g < generation; ++g) {
      std::vector<size_t> pool = elite;
      const size_t lo = static_cast<size_t>(g) * pop;
      const size_t hi = std::min(input.trials.size(), lo + pop);
      for (size_t i = lo; i < hi; ++i) {
        if (input.trials[i].state == KnownTrial::State::kCompleted) pool.push_back(i);
      }
      elite = Select(input, pool, pop);
    }
    return Rank(input, elite);
  }

  std::vector<Member> Rank(const SamplerInput& input, const std::vector<size_t>& pool) const {
    std::vector<Losses> points;
    for (size_t i : pool) points.push_back(*input.trials[i].losses);
    std::vector<Member> out;
    int f = 0;
    for (const std::vector<int>& front : NonDominatedFronts(points)) {
      std::vector<double> crowding = CrowdingDistance(points, front);
      for (size_t r = 0; r < front.size(); ++r) out.push_back({pool[front[r]], f, crowding[r]});
      ++f;
    }
    return out;
  }

  std::vector<size_t> Select(const SamplerInput& input, const std::vector<size_t>& pool,
                             int pop) const {
    std::vector<Member> ranked = Rank(input, pool);
    // Fronts in order; inside a front, larger crowding first, then trial id.
    std::stable_sort(ranked.begin(), ranked.end(), [](const Member& a, const Member& b) {
      if (a.front != b.front) return a.front < b.front;
      if (a.crowding != b.crowding) return a.crowding > b.crowding;
      return a.trial < b.trial;
    });
    std::vector<size_t> out;
    for (size_t i = 0; i < ranked.size() && static_cast<int>(out.size()) < pop; ++i) {
      out.push_back(ranked[i].trial);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Attempt 0 keeps the stream a proposal had before repeats were redrawn,
  // so histories without repeats propose as they did.
  std::mt19937_64 Stream(uint64_t purpose, uint64_t k, int attempt) const {
    return attempt == 0 ? StreamRng(seed_, purpose, k)
                        : StreamRng(seed_, kRetryPurpose,
                                    (k * 2 * kAttempts + static_cast<uint64_t>(attempt)) * 2 +
                                        (purpose == kChildPurpose ? 1 : 0));
  }

  Assignment Random(const SearchSpace& space, uint64_t k, int attempt) const {
    std::mt19937_64 rng = Stream(kRandomPurpose, k, attempt);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    UnitPoint u(space.size());
    for (double& x : u) x = uniform(rng);
    return space.Decode(u);
  }

  const Member& Tournament(const std::vector<Member>& parents, std::mt19937_64& rng) const {
    std::uniform_int_distribution<size_t> pick(0, parents.size() - 1);
    const Member& a = parents[pick(rng)];
    const Member& b = parents[pick(rng)];
    if (a.front != b.front) return a.front < b.front ? a : b;
    return a.crowding >= b.crowding ? a : b;
  }

  UnitPoint Child(const SamplerInput& input, const std::vector<Member>& parents, uint64_t k,
                  int attempt) const {
    std::mt19937_64 rng = Stream(kChildPurpose, k, attempt);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const UnitPoint& p1 =
        input.space->Encode(*input.trials[Tournament(parents, rng).trial].assignment);
    const UnitPoint& p2 =
        input.space->Encode(*input.trials[Tournament(parents, rng).trial].assignment);
    const size_t d = p1.size();
    UnitPoint child = p1;
    const bool cross = uniform(rng) < options_.crossover_prob;
    for (size_t i = 0; cross && i < d; ++i) {
      if (categorical_[i]) {
        if (uniform(rng) < 0.5) child[i] = p2[i];
        continue;
      }
      if (uniform(rng) >= 0.5 || std::abs(p1[i] - p2[i]) < 1e-14) continue;
      child[i] = Sbx(p1[i], p2[i], uniform(rng), uniform(rng) < 0.5);
    }
    const double mutate = 1.0 / static_cast<double>(std::max<size_t>(1, d));
    for (size_t i = 0; i < d; ++i) {
      if (uniform(rng) >= mutate) continue;
      child[i] = categorical_[i] ? uniform(rng) : Polynomial(child[i], uniform(rng));
    }
    for (double& x : child) x = std::clamp(x, 0.0, 1.0);
    return child;
  }

  // Bounded SBX in [0, 1] (Deb and Agrawal 1995, as in Deb's NSGA-II code):
  // one of the two offspring.
  double Sbx(double a, double b, double u, bool second) const {
    const double lo = std::min(a, b), hi = std::max(a, b);
    const double eta = options_.eta_crossover;
    auto offspring = [&](double beta) {
      const double alpha = 2.0 - std::pow(beta, -(eta + 1.0));
      const double betaq = u <= 1.0 / alpha ? std::pow(u * alpha, 1.0 / (eta + 1.0))
                                            : std::pow(1.0 / (2.0 - u * alpha), 1.0 / (eta + 1.0));
      return betaq;
    };
    const double c1 = 0.5 * ((lo + hi) - offspring(1.0 + 2.0 * lo / (hi - lo)) * (hi - lo));
    const double c2 = 0.5 * ((lo + hi) + offspring(1.0 + 2.0 * (1.0 - hi) / (hi - lo)) * (hi - lo));
    return second ? c2 : c1;
  }

  // Polynomial mutation in [0, 1] (Deb and Goyal 1996, bounded form).
  double Polynomial(double x, double u) const {
    const double eta = options_.eta_mutation;
    const double d1 = x, d2 = 1.0 - x;
    double dq;
    if (u < 0.5) {
      const double v = 2.0 * u + (1.0 - 2.0 * u) * std::pow(1.0 - d1, eta + 1.0);
      dq = std::pow(v, 1.0 / (eta + 1.0)) - 1.0;
    } else {
      const double v = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * std::pow(1.0 - d2, eta + 1.0);
      dq = 1.0 - std::pow(v, 1.0 / (eta + 1.0));
    }
    return x + dq;
  }

  Nsga2Options options_;
  uint64_t seed_;
  std::vector<bool> categorical_;
};

}  // namespace

std::unique_ptr<Sampler> MakeNsga2Sampler(const SearchSpace& space, const Nsga2Options& options,
                                          uint64_t seed) {
  return std::make_unique<Nsga2Sampler>(space, options, seed);
}

}  // namespace gangway::tuner
