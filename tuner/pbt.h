// Population-based training (Jaderberg et al. 2017), in synchronous
// generations as Katib's "pbt" runs it.
//
// The k-th trial (in id order) is member k % population of generation
// k / population. Generation 0 is uniform random and starts from scratch.
// Each later trial continues its member: once every trial of the previous
// generation has finished, the members are ranked by their trial's result
// (failed ones last, ties by trial id). A member in the bottom
// `truncation` fraction exploits: it starts from the checkpoint of a member
// drawn from the top fraction (its parent) and explores from that member's
// parameters: each is resampled at random with probability
// `resample_probability`, else a number is multiplied by 0.8 or 1.2
// (clamped to its bounds; ints rounded, and moved by at least one step) and
// a list value moves to a neighbour. The other members continue from their
// own previous trial with the same parameters. A generation waits for the
// one before it: Ask returns fewer proposals (maybe none) until then.
//
// Each proposal names its parent (the trial whose checkpoint it starts
// from); the caller hands the trial that checkpoint. Pure: parents and
// parameters are recomputed from the history and (seed, trial position), so
// a replayed tuner proposes the same.
#pragma once

#include <cstdint>
#include <memory>

#include "tuner/sampler.h"

namespace gangway::tuner {

struct PbtOptions {
  int population = 8;
  double truncation = 0.25;
  double resample_probability = 0.25;
};

std::unique_ptr<Sampler> MakePbtSampler(const SearchSpace& space, const PbtOptions& options,
                                        uint64_t seed);

}  // namespace gangway::tuner
