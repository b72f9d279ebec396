// Bayesian optimization sampler: a Gaussian process on the unit-cube
// features of the search space (log parameters in log space, ints and
// discrete values snapped, categoricals one-hot), log expected improvement,
// and kriging-believer fantasies for pending trials.
//
// One proposal:
//  1. Until `initial_points` trials exist (or fewer than 2 results are in),
//     propose scrambled Sobol points: spread by construction, so a batch
//     asked before any result is distinct.
//  2. Otherwise transform the losses (see OutputTransform), fit the GP's
//     hyperparameters (MAP, warm-started from the previous fit), and add
//     every pending trial as a fantasy observation at the posterior mean
//     (kriging believer): the variance collapses there, so the next
//     proposal goes elsewhere. Each proposal of a batch is added the same
//     way before the next one is chosen.
//  3. Maximize log EI over a scrambled Sobol candidate set plus Gaussian
//     perturbations of the best observed points, then refine the best
//     candidates with projected L-BFGS (categoricals held fixed), snap to
//     the lattice, and skip points already tried or pending.
#pragma once

#include <cstdint>
#include <memory>

#include "tuner/gaussian_process.h"
#include "tuner/sampler.h"

namespace gangway::tuner {

enum class OutputTransform {
  // Standardize only.
  kStandardize,
  // Rank -> normal quantiles (Gaussian copula): robust to heavy tails and
  // outliers, which an objective like a loss that diverges often has.
  kCopula,
  // Log of (y - min + delta), delta = 1% of the median gap to the minimum:
  // expands differences near the best values.
  kLogShift,
  // Per fit, the best of standardize and log-shift warps with delta = 1,
  // 0.1, 0.01 x the median gap, by marginal likelihood of the original
  // losses (GP posterior plus the warp's log Jacobian). Heavy-tailed losses
  // (a diverging run, Rosenbrock's walls) get the log; a flat plateau with
  // a narrow good region (Hartmann) stays linear, where a log or rank warp
  // would turn the plateau into structure the model chases.
  kAuto,
};

// What the trust region does once it has collapsed (its side halved below
// `trust_region_min_length` by failures).
enum class TrustRegionRestart {
  // Back to the initial side, still around the best result: the region
  // never leaves the best result's basin.
  kNone,
  // TuRBO's restart: a new region elsewhere. Its first point maximizes log
  // EI over the whole box outside the collapsed region; the new region is
  // then centred on the best result since the restart, and its successes
  // and failures count against that result.
  kGlobal,
  // As kGlobal, but the first point is the first of a fresh scrambled Sobol
  // sequence outside the collapsed region (exploration, no model).
  kSobol,
};

struct BayesianOptions {
  // Quasi-random trials before the model is used; 0 picks a default by
  // dimension.
  int initial_points = 0;
  // Quasi-random acquisition candidates per proposal; 0 picks by data size.
  int candidates = 0;
  // Candidates refined with L-BFGS per proposal.
  int refine_starts = 5;
  OutputTransform transform = OutputTransform::kAuto;
  GpFitOptions gp;
  // Cost control for long sweeps. Hyperparameters (and the kAuto warp) are
  // refit on every proposal while there are at most `refit_every_below`
  // results, then only once the results have grown by 1/16 since the last
  // fit (the posterior always uses every result, with the kept
  // hyperparameters) and refines the previous fit only, without restarts.
  // A fit uses at most `max_fit_points` results, a random subset beyond
  // that: hyperparameters need far fewer points than the posterior, and the
  // fit is O(n^3) per iteration.
  int refit_every_below = 64;
  int max_fit_points = 100;
  // Up to refit_every_below results, hyperparameters are fitted with
  // restarts (prior mode and random draws) on every k-th ask only, and
  // refined from the previous fit on the others. 1: restarts on every ask.
  int full_fit_every = 4;
  // The first initial point is the centre of the box (what a user would
  // try first, and CMA-ES's start).
  bool centre_first = true;
  // Local acquisition candidates around the best points reflect at the
  // bounds instead of being clamped onto them.
  bool reflect_local = true;
  // TuRBO-like trust region (Eriksson et al. 2019) in spaces of at least
  // `trust_region_min_dims` parameters: the acquisition is maximized in a
  // box around the best result whose side follows successes and failures.
  bool trust_region = true;
  int trust_region_min_dims = 2;
  // Initial side of the region in the unit cube; 0: TuRBO's 0.8 below 4
  // parameters, 0.4 from 4 (measured: benchmarks/tuner/README.md).
  double trust_region_length = 0;
  // Per parameter the region's side is the base side times the GP's
  // lengthscale over their geometric mean, clamped to [1/r, r]. 1 (a cube):
  // with few results the lengthscales are mostly prior, and a region
  // stretched by them reaches the bounds of the box, where the
  // acquisition's variance term then puts the proposals (measured:
  // benchmarks/tuner/README.md; 10 was the default before).
  double trust_region_max_ratio = 1;
  // Every k-th model-based ask searches the whole box (0: never).
  int trust_region_global_every = 0;
  // A side halved below this has collapsed: restart (trust_region_restart)
  // or, with kNone, go back to the initial side. TuRBO's 1/128 is rarely
  // reached within 100 evaluations from 4 parameters; with a restart, 1/32
  // (after 16-32 failures in a row) is the measured setting.
  double trust_region_min_length = 1.0 / 128;
  // Off by default: better on the held-out functions it was chosen on,
  // worse on three fresh ones and slightly on the public ones at 100
  // evaluations (benchmarks/tuner/README.md).
  TrustRegionRestart trust_region_restart = TrustRegionRestart::kNone;
  // L-BFGS iterations of a scheduled refit beyond `refit_every_below`: it
  // starts at the previous fit, which is close.
  int large_refit_iterations = 25;
};

int DefaultInitialPoints(int num_parameters);

std::unique_ptr<Sampler> MakeBayesianSampler(const SearchSpace& space,
                                             const BayesianOptions& options, uint64_t seed);

// Exposed for tests: the transformed, standardized losses (kAuto: linear).
Eigen::VectorXd TransformLosses(const Eigen::VectorXd& losses, OutputTransform transform);
// The log-shift warp with delta = relative_delta x the median gap to the
// minimum, standardized; infinite relative_delta standardizes only.
// *log_derivative: log d(warped_i)/d(loss_i) per point.
Eigen::VectorXd WarpLosses(const Eigen::VectorXd& losses, double relative_delta,
                           Eigen::VectorXd* log_derivative);

}  // namespace gangway::tuner
