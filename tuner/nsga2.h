// NSGA-II (Deb et al. 2002) for multi-objective sweeps (also usable with
// one objective, where it is a plain genetic algorithm).
//
// Generations by position: the k-th trial (in id order) belongs to
// generation floor(k / population). Generation 0 is uniform random. The
// parents of generation g are the elite of (parents of g - 1) and the
// trials of generation g - 1 completed so far: non-dominated sorting, then
// crowding distance within the last front that fits (ties by trial id).
// A child: two parents by binary tournament (lower front, then larger
// crowding distance), simulated binary crossover (SBX, eta 20) of the
// numeric unit coordinates with probability `crossover_prob` (each
// coordinate swapped between the two offspring with probability 1/2, as
// Deb's code does), uniform crossover of categoricals, then polynomial
// mutation (eta 20) of each numeric coordinate, and a random redraw of each
// categorical, with probability 1 / parameters.
//
// Pure: the parents are recomputed from the history on every ask and every
// random draw comes from (seed, trial position), so a replayed tuner
// proposes what the first one would have with the same results known.
#pragma once

#include <cstdint>
#include <memory>

#include "tuner/sampler.h"

namespace gangway::tuner {

struct Nsga2Options {
  // Optuna's default is 50; with budgets of 50-100 trials a smaller
  // population gets several generations (benchmarks/tuner/README.md).
  int population = 20;
  double crossover_prob = 0.9;
  double eta_crossover = 20;
  double eta_mutation = 20;
};

std::unique_ptr<Sampler> MakeNsga2Sampler(const SearchSpace& space, const Nsga2Options& options,
                                          uint64_t seed);

}  // namespace gangway::tuner
