// Pareto dominance, non-dominated sorting, crowding distance and
// hypervolume, for multi-objective sweeps. Every value is a loss: lower is
// better in each objective (the Tuner negates maximized objectives first).
// Pure functions.
#pragma once

#include <span>
#include <vector>

namespace gangway::tuner {

using Losses = std::vector<double>;

// a is no worse than b in every objective and better in one.
bool Dominates(std::span<const double> a, std::span<const double> b);

// Fronts of `points` by non-dominated sorting (Deb et al. 2002): the
// indices of front 0 (the Pareto front), then of front 1, ... Each front
// in ascending index order.
std::vector<std::vector<int>> NonDominatedFronts(const std::vector<Losses>& points);

// Crowding distance of each member of `front` (indices into `points`),
// in the order of `front`: the boundary points of each objective get
// infinity, the others the sum over objectives of the normalised gap
// between their neighbours.
std::vector<double> CrowdingDistance(const std::vector<Losses>& points,
                                     const std::vector<int>& front);

// The volume dominated by `points` and bounded by `reference` (points not
// strictly better than the reference in every objective add nothing).
// Exact, by slicing on the last objective: fine for a few hundred points in
// two to four objectives.
double Hypervolume(const std::vector<Losses>& points, const Losses& reference);

}  // namespace gangway::tuner
