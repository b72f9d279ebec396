// The samplers behind Tuner: each turns what is known about the trials into
// new assignments. Internal to the tuner library; Tuner is the interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "tuner/search_space.h"

namespace gangway::tuner {

struct Observation {
  UnitPoint u;
  double loss = 0;  // Lower is better; the first objective's.
};

// A trial the tuner knows, for samplers that follow trials one by one
// (hyperband's rungs, population-based training's generations).
struct KnownTrial {
  enum class State { kPending, kCompleted, kFailed };
  int64_t id = 0;
  const Assignment* assignment = nullptr;
  State state = State::kPending;
  double loss = 0;  // Completed trials only.
  // Every objective's loss (one for a single-objective tuner); completed
  // trials only, else empty.
  const std::vector<double>* losses = nullptr;
};

// Everything a sampler may look at. Assignments of every trial the tuner
// knows (any state) let the grid skip points already tried.
struct SamplerInput {
  const SearchSpace* space = nullptr;
  std::vector<Observation> completed;
  std::vector<UnitPoint> pending;
  std::vector<const Assignment*> all;
  // Every known trial in id order.
  std::vector<KnownTrial> trials;
  // Number of trials known so far: the position in a sequence (Sobol index,
  // random stream) where the next proposal starts, so proposals are a
  // function of (seed, history) and a restarted tuner continues where the
  // old one stopped.
  uint64_t trial_count = 0;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Up to n assignments; fewer only when the sampler has no points left or
  // waits for results.
  virtual std::vector<Assignment> Propose(const SamplerInput& input, int n) = 0;
  virtual bool exhausted() const { return false; }
  // For each assignment of the last Propose, the trial whose checkpoint it
  // starts from (population-based training); empty when none do.
  virtual std::vector<std::optional<int64_t>> TakeParents() { return {}; }
};

// A generator for one purpose at one position: seeds are mixed so that
// streams for different (seed, purpose, index) do not overlap.
std::mt19937_64 StreamRng(uint64_t seed, uint64_t purpose, uint64_t index);

absl::StatusOr<std::unique_ptr<Sampler>> MakeGridSampler(const SearchSpace& space,
                                                         const GridOptions& options);
std::unique_ptr<Sampler> MakeRandomSampler(uint64_t seed);
absl::StatusOr<std::unique_ptr<Sampler>> MakeSobolSampler(const SearchSpace& space, uint64_t seed);

}  // namespace gangway::tuner
