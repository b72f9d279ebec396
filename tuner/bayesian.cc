#include "tuner/bayesian.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "tuner/acquisition.h"
#include "tuner/lbfgs.h"
#include "tuner/sobol.h"

namespace gangway::tuner {
namespace {

// Inverse standard normal CDF (Acklam's rational approximation, relative
// error < 1.2e-9, ample for ranks).
double NormalQuantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - kLow) return -NormalQuantile(1 - p);
  const double q = p - 0.5;
  const double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

Eigen::VectorXd Standardize(const Eigen::VectorXd& y, double* sd_out = nullptr) {
  const double mean = y.mean();
  const double var = y.size() > 1 ? (y.array() - mean).square().sum() / (y.size() - 1) : 0.0;
  const double sd = var > 1e-300 ? std::sqrt(var) : 1.0;
  if (sd_out != nullptr) *sd_out = sd;
  return (y.array() - mean) / sd;
}

double Median(Eigen::VectorXd v) {
  std::sort(v.data(), v.data() + v.size());
  const Eigen::Index n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Interval {
  double lo = 0, hi = 1;
};

bool Inside(const SearchSpace& space, const std::vector<Interval>& box, const UnitPoint& u) {
  if (box.empty()) return false;
  for (int k = 0; k < space.size(); ++k) {
    if (space.IsCategorical(k)) continue;
    if (u[k] < box[k].lo || u[k] > box[k].hi) return false;
  }
  return true;
}

// The trust region for the next ask, replayed from the history.
struct Region {
  // Empty: the whole cube.
  std::vector<Interval> box;
  // A restart is due: the next point leaves `collapsed`, the region that
  // just collapsed.
  bool restart_step = false;
  std::vector<Interval> collapsed;
  int restarts = 0;
  // The completed trial the region is centred on (-1: none); after a
  // restart, the best since the restart, which is also EI's incumbent.
  int incumbent = -1;
};

class BayesianSampler final : public Sampler {
 public:
  BayesianSampler(const SearchSpace& space, const BayesianOptions& options, uint64_t seed)
      : options_(options),
        seed_(seed),
        sobol_(std::min(space.size(), SobolSequence::kMaxDims), nullptr) {
    std::mt19937_64 rng = StreamRng(seed, 4, 0);
    sobol_ = SobolSequence(std::min(space.size(), SobolSequence::kMaxDims), &rng);
  }

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override;

 private:
  UnitPoint InitialPoint(const SearchSpace& space, uint64_t index) const;
  // box: per parameter [lo, hi] the acquisition is maximized in (a trust
  // region), or empty for the whole cube.
  // avoid: a box no proposal may fall in (a collapsed trust region), or
  // empty.
  UnitPoint Maximize(const SearchSpace& space, const GaussianProcess& gp, double best,
                     const SamplerInput& input, const Eigen::VectorXd& y,
                     const std::vector<UnitPoint>& taken, const std::vector<Interval>& box,
                     const std::vector<Interval>& avoid, std::mt19937_64& rng) const;
  Region TrustRegion(const SearchSpace& space, const SamplerInput& input, const GaussianProcess& gp,
                     const Eigen::VectorXd& y, int init) const;
  // The first point of a new region after `region` collapsed.
  UnitPoint RestartPoint(const SearchSpace& space, const GaussianProcess& gp, double best,
                         const SamplerInput& input, const Eigen::VectorXd& y,
                         const std::vector<UnitPoint>& taken, const Region& region,
                         std::mt19937_64& rng) const;

  BayesianOptions options_;
  uint64_t seed_;
  SobolSequence sobol_;
  // *fantasy_best: the lowest posterior mean at a pending trial. Returns the
  // kept model itself when nothing will be added to it (no pending trial,
  // one proposal), else a copy in *scratch with the pending trials added:
  // at 1,000 results a copy is an 8 MB factor, a sizeable part of an ask.
  GaussianProcess& Model(const SearchSpace& space, const SamplerInput& input, std::mt19937_64& rng,
                         bool will_add, std::optional<GaussianProcess>* scratch, Eigen::VectorXd* y,
                         double* fantasy_best);

  // Warm starts, one per output warp tried.
  std::optional<GpHyperparameters> last_fit_[4];
  int last_warp_ = -1;
  int last_fit_size_ = 0;
  // The model of the completed trials with the current hyperparameters,
  // kept between asks so a new result extends its Cholesky factor.
  std::optional<GaussianProcess> cache_;
  GaussianProcess& WithPending(const SearchSpace& space, const SamplerInput& input, bool will_add,
                               std::optional<GaussianProcess>* scratch, double* fantasy_best);
};

constexpr double kAutoDeltas[] = {std::numeric_limits<double>::infinity(), 1.0, 0.1, 0.01};

Eigen::VectorXd Features(const SearchSpace& space, const UnitPoint& u, bool relaxed) {
  Eigen::VectorXd f(space.FeatureDim());
  space.Features(u.data(), relaxed, f.data());
  return f;
}

UnitPoint Snap(const SearchSpace& space, const UnitPoint& u) {
  return space.Encode(space.Decode(u));
}

// Kriging believer: each pending trial becomes an observation at the
// posterior mean. Returns the lowest such mean (+inf if none).
double AddPending(const SearchSpace& space, const SamplerInput& input, GaussianProcess& gp) {
  double lowest = std::numeric_limits<double>::infinity();
  for (const UnitPoint& p : input.pending) {
    const Eigen::VectorXd f = Features(space, p, false);
    Eigen::VectorXd mean;
    gp.Predict(f.transpose(), &mean, nullptr);
    gp.AddObservation(f, mean[0]);
    lowest = std::min(lowest, mean[0]);
  }
  return lowest;
}

bool Taken(const std::vector<UnitPoint>& taken, const UnitPoint& u) {
  for (const UnitPoint& t : taken) {
    bool same = true;
    for (size_t i = 0; i < u.size() && same; ++i) same = std::abs(t[i] - u[i]) < 1e-9;
    if (same) return true;
  }
  return false;
}

// The GP on every completed trial, with the pending trials added as
// fantasies; *y receives the warped losses of the completed trials.
GaussianProcess& BayesianSampler::Model(const SearchSpace& space, const SamplerInput& input,
                                        std::mt19937_64& rng, bool will_add,
                                        std::optional<GaussianProcess>* scratch, Eigen::VectorXd* y,
                                        double* fantasy_best) {
  const int nc = static_cast<int>(input.completed.size());
  Eigen::MatrixXd x(nc, space.FeatureDim());
  Eigen::VectorXd losses(nc);
  for (int i = 0; i < nc; ++i) {
    x.row(i) = Features(space, input.completed[i].u, false).transpose();
    losses[i] = input.completed[i].loss;
  }
  const bool automatic = options_.transform == OutputTransform::kAuto;
  auto warp = [&](int k, Eigen::VectorXd* log_derivative) {
    if (automatic) return WarpLosses(losses, kAutoDeltas[k], log_derivative);
    log_derivative->setZero(nc);
    return TransformLosses(losses, options_.transform);
  };
  const bool refit = last_warp_ < 0 || nc <= options_.refit_every_below ||
                     nc >= last_fit_size_ + std::max(1, last_fit_size_ / 16);
  Eigen::VectorXd log_derivative;
  if (!refit) {
    // Same hyperparameters as the last ask: extend the kept factorization by
    // the new results (O(n^2) each) instead of factoring all n again.
    *y = warp(last_warp_, &log_derivative);
    if (!cache_.has_value()) {
      cache_ = GaussianProcess::Condition(x, *y, *last_fit_[last_warp_], true);
    } else {
      cache_->Update(x, *y, true);
    }
    return WithPending(space, input, will_add, scratch, fantasy_best);
  }
  std::vector<int> subset(nc);
  std::iota(subset.begin(), subset.end(), 0);
  const bool large = nc > options_.refit_every_below;
  const int max_fit = std::max(large ? options_.max_fit_points : nc, 8);
  if (nc > max_fit) {
    std::shuffle(subset.begin(), subset.end(), rng);
    subset.resize(max_fit);
    std::sort(subset.begin(), subset.end());
  }
  const Eigen::MatrixXd xs = x(subset, Eigen::all);
  // Between full fits (restarts from the prior), refine the previous fit
  // only: with one more result the posterior's mode moves little, and the
  // restarts were most of an ask's cost below refit_every_below.
  const bool full_fit = options_.full_fit_every <= 1 || nc < 2 * options_.full_fit_every ||
                        nc % options_.full_fit_every == 0 || last_warp_ < 0;
  GpFitOptions warm_only = options_.gp;
  warm_only.random_restarts = 0;
  warm_only.start_at_prior_mode = false;
  GpFitOptions refine_only = options_.gp;
  refine_only.random_restarts = 0;
  refine_only.start_at_prior_mode = false;
  refine_only.max_iterations = options_.large_refit_iterations;
  // A scheduled refit of a large history scores every warp at its last
  // hyperparameters (one O(m^3) factorization each, no optimizer) and
  // refines the winner only: the warp choice rarely changes between
  // refits, and four warm-started L-BFGS runs were most of a refit's cost.
  int only_warp = -1;
  if (large && automatic) {
    double best_score = -std::numeric_limits<double>::infinity();
    for (int k = 0; k < 4; ++k) {
      if (!last_fit_[k]) continue;
      const Eigen::VectorXd yk = warp(k, &log_derivative)(subset);
      const GpHyperparameters& h = *last_fit_[k];
      Eigen::VectorXd theta(h.log_lengthscale.size() + 2);
      theta << h.log_lengthscale, h.log_signal_variance, h.log_noise_variance;
      const double score = -GaussianProcess::NegLogPosterior(xs, yk, theta, options_.gp, nullptr) +
                           log_derivative(subset).sum();
      if (score > best_score) {
        best_score = score;
        only_warp = k;
      }
    }
  }
  std::optional<GaussianProcess> chosen;
  double best_score = -std::numeric_limits<double>::infinity();
  for (int k = 0; k < (automatic ? 4 : 1); ++k) {
    if (only_warp >= 0 && k != only_warp) continue;
    Eigen::VectorXd yk = warp(k, &log_derivative);
    const Eigen::VectorXd ys = yk(subset);
    GaussianProcess g = GaussianProcess::Fit(xs, ys,
                                             large      ? refine_only
                                             : full_fit ? options_.gp
                                                        : warm_only,
                                             rng, last_fit_[k] ? &*last_fit_[k] : nullptr);
    last_fit_[k] = g.hyperparameters();
    // Likelihood of the losses themselves: the warped model's plus the
    // warp's log Jacobian, so differently warped models compare fairly.
    const double score = -g.neg_log_posterior() + log_derivative(subset).sum();
    if (!chosen.has_value() || score > best_score) {
      best_score = score;
      last_warp_ = k;
      *y = std::move(yk);
      chosen = std::move(g);
    }
  }
  last_fit_size_ = nc;
  if (static_cast<int>(subset.size()) < nc) {
    chosen = GaussianProcess::Condition(x, *y, chosen->hyperparameters(), true);
  }
  cache_ = *std::move(chosen);
  return WithPending(space, input, will_add, scratch, fantasy_best);
}

GaussianProcess& BayesianSampler::WithPending(const SearchSpace& space, const SamplerInput& input,
                                              bool will_add,
                                              std::optional<GaussianProcess>* scratch,
                                              double* fantasy_best) {
  if (!will_add && input.pending.empty()) {
    *fantasy_best = std::numeric_limits<double>::infinity();
    return *cache_;
  }
  *scratch = *cache_;
  *fantasy_best = AddPending(space, input, **scratch);
  return **scratch;
}

UnitPoint BayesianSampler::InitialPoint(const SearchSpace& space, uint64_t index) const {
  if (options_.centre_first) {
    // The centre of the box first: the point a user would try by hand, and
    // CMA-ES's start; on log parameters it is the geometric mean.
    if (index == 0) return UnitPoint(space.size(), 0.5);
    --index;
  }
  if (space.size() <= SobolSequence::kMaxDims) return sobol_.Point(index);
  std::mt19937_64 rng = StreamRng(seed_, 1, index);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  UnitPoint u(space.size());
  for (double& x : u) x = uniform(rng);
  return u;
}

std::vector<Assignment> BayesianSampler::Propose(const SamplerInput& input, int n) {
  const SearchSpace& space = *input.space;
  const int nc = static_cast<int>(input.completed.size());
  const int init =
      options_.initial_points > 0 ? options_.initial_points : DefaultInitialPoints(space.size());
  std::vector<UnitPoint> taken;
  for (const Observation& o : input.completed) taken.push_back(Snap(space, o.u));
  for (const UnitPoint& p : input.pending) taken.push_back(Snap(space, p));

  std::mt19937_64 rng = StreamRng(seed_, 3, input.trial_count);
  std::optional<GaussianProcess> scratch;
  GaussianProcess* gp = nullptr;
  std::optional<Region> region;
  Eigen::VectorXd y;
  double best = 0;
  std::vector<Assignment> out;
  for (int j = 0; j < n; ++j) {
    const uint64_t index = input.trial_count + j;
    if (nc < 2 || index < static_cast<uint64_t>(init)) {
      const UnitPoint u = InitialPoint(space, index);
      taken.push_back(Snap(space, u));
      out.push_back(space.Decode(u));
      continue;
    }
    if (gp == nullptr) {
      double fantasy_best = 0;
      gp = &Model(space, input, rng, /*will_add=*/j + 1 < n, &scratch, &y, &fantasy_best);
      // Improvement is measured against the fantasies too: a fantasy below
      // the best result would otherwise keep its neighbourhood the most
      // promising, and the next proposal of a batch would land beside it.
      best = std::min(y.minCoeff(), fantasy_best);
    }
    if (!region.has_value()) {
      region = TrustRegion(space, input, *gp, y, init);
      // A restarted region improves on its own best, as in TuRBO, not on
      // the global one it could not leave.
      if (region->restarts > 0 && region->incumbent >= 0) {
        best += y[region->incumbent] - y.minCoeff();
      }
    }
    const UnitPoint u = region->restart_step
                            ? RestartPoint(space, *gp, best, input, y, taken, *region, rng)
                            : Maximize(space, *gp, best, input, y, taken, region->box, {}, rng);
    const UnitPoint snapped = Snap(space, u);
    taken.push_back(snapped);
    out.push_back(space.Decode(snapped));
    if (j + 1 == n) break;  // No later proposal needs this one's fantasy.
    const Eigen::VectorXd f = Features(space, snapped, false);
    Eigen::VectorXd mean;
    gp->Predict(f.transpose(), &mean, nullptr);
    gp->AddObservation(f, mean[0]);
    best = std::min(best, mean[0]);
  }
  return out;
}

Region BayesianSampler::TrustRegion(const SearchSpace& space, const SamplerInput& input,
                                    const GaussianProcess& gp, const Eigen::VectorXd& y,
                                    int init) const {
  Region region;
  const int p = space.size();
  if (!options_.trust_region || p < options_.trust_region_min_dims) return region;
  const int since_init = static_cast<int>(input.trial_count) - init;
  if (options_.trust_region_global_every > 0 &&
      since_init % options_.trust_region_global_every == options_.trust_region_global_every - 1) {
    return region;  // A global step: the region alone cannot leave a local basin.
  }
  // The side length replays TuRBO's rule over the history in order (pure,
  // so a restarted tuner gets the same region): doubled after 3 successes
  // in a row (a new best by 1e-3 relative), halved after max(4, d)
  // failures in a row; below trust_region_min_length it has collapsed.
  // The region's centre replays too: each collapse with a restart records
  // the collapsed box, and the region after it counts from the next result.
  const int nc = static_cast<int>(input.completed.size());
  const double initial = options_.trust_region_length > 0 ? options_.trust_region_length
                         : p < 4                          ? 0.8
                                                          : 0.4;
  const bool restart = options_.trust_region_restart != TrustRegionRestart::kNone;
  const Eigen::VectorXd& log_ls = gp.hyperparameters().log_lengthscale;
  double mean_log = 0;
  int numeric = 0;
  for (int k = 0; k < p; ++k) {
    if (space.IsCategorical(k)) continue;
    mean_log += log_ls[space.FeatureOffset(k)];
    ++numeric;
  }
  if (numeric == 0) return region;
  mean_log /= numeric;
  // Centred on `centre`; per parameter proportional to the GP's lengthscale
  // relative to their geometric mean (volume length^d), within
  // trust_region_max_ratio of it.
  auto box_at = [&](const UnitPoint& centre, double length) {
    std::vector<Interval> box(p);
    for (int k = 0; k < p; ++k) {
      if (space.IsCategorical(k)) continue;
      const double half =
          0.5 * length *
          std::clamp(std::exp(log_ls[space.FeatureOffset(k)] - mean_log),
                     1 / options_.trust_region_max_ratio, options_.trust_region_max_ratio);
      box[k] = {std::max(0.0, centre[k] - half), std::min(1.0, centre[k] + half)};
    }
    return box;
  };
  double length = initial;
  int successes = 0, failures = 0;
  double best = std::numeric_limits<double>::infinity();
  int incumbent = -1;
  int start = 0;  // First result of the current region.
  bool collapsed = false;
  for (int i = 0; i < nc; ++i) {
    const double loss = input.completed[i].loss;
    if (i >= init && incumbent >= 0) {
      const bool success = loss < best - 1e-3 * std::abs(best);
      successes = success ? successes + 1 : 0;
      failures = success ? 0 : failures + 1;
      if (successes == 3) {
        length = std::min(2 * length, 1.6);
        successes = 0;
      }
      if (failures == std::max(4, p)) {
        length /= 2;
        failures = 0;
        collapsed = length < options_.trust_region_min_length;
      }
    }
    if (loss < best) {
      best = loss;
      incumbent = i;
    }
    if (collapsed) {
      collapsed = false;
      length = initial;
      if (restart) {
        successes = failures = 0;
        region.collapsed = box_at(input.completed[incumbent].u, length);
        ++region.restarts;
        start = i + 1;
        best = std::numeric_limits<double>::infinity();
        incumbent = -1;
      }
    }
  }
  region.restart_step = restart && start > 0 && incumbent < 0;
  if (region.restart_step) return region;
  if (!restart) {
    // Without restarts the region stays around the best result (in warped
    // units the same as the best loss).
    Eigen::Index arg = 0;
    y.minCoeff(&arg);
    incumbent = static_cast<int>(arg);
  }
  region.incumbent = incumbent;
  region.box = box_at(input.completed[incumbent].u, length);
  return region;
}

UnitPoint BayesianSampler::RestartPoint(const SearchSpace& space, const GaussianProcess& gp,
                                        double best, const SamplerInput& input,
                                        const Eigen::VectorXd& y,
                                        const std::vector<UnitPoint>& taken, const Region& region,
                                        std::mt19937_64& rng) const {
  if (options_.trust_region_restart == TrustRegionRestart::kGlobal) {
    return Maximize(space, gp, best, input, y, taken, {}, region.collapsed, rng);
  }
  // A fresh scrambled sequence per restart, so successive restarts start
  // in different places.
  const int p = space.size();
  std::mt19937_64 seq_rng = StreamRng(seed_, 5, static_cast<uint64_t>(region.restarts));
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const bool sobol = p <= SobolSequence::kMaxDims;
  std::optional<SobolSequence> seq;
  if (sobol) seq.emplace(p, &seq_rng);
  for (int i = 0; i < 1024; ++i) {
    UnitPoint u(p);
    if (sobol) {
      u = seq->Point(i);
    } else {
      for (double& x : u) x = uniform(seq_rng);
    }
    if (!Inside(space, region.collapsed, u) && !Taken(taken, Snap(space, u))) return u;
  }
  return Maximize(space, gp, best, input, y, taken, {}, region.collapsed, rng);
}

UnitPoint BayesianSampler::Maximize(const SearchSpace& space, const GaussianProcess& gp,
                                    double best, const SamplerInput& input,
                                    const Eigen::VectorXd& y, const std::vector<UnitPoint>& taken,
                                    const std::vector<Interval>& box,
                                    const std::vector<Interval>& avoid,
                                    std::mt19937_64& rng) const {
  const int p = space.size();
  const int n = gp.size();
  int m = options_.candidates;
  if (m <= 0) {
    // The candidate sweep costs O(m n^2); keep it near a fixed budget.
    m = static_cast<int>(std::clamp(8e6 / std::max(1.0, double(n) * n), 64.0, 2048.0));
  }
  std::vector<UnitPoint> cands;
  cands.reserve(m + m / 2);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  if (p <= SobolSequence::kMaxDims) {
    const SobolSequence seq(p, &rng);
    for (int i = 0; i < m; ++i) cands.push_back(seq.Point(i));
  } else {
    for (int i = 0; i < m; ++i) {
      UnitPoint u(p);
      for (double& x : u) x = uniform(rng);
      cands.push_back(std::move(u));
    }
  }
  // Local candidates around the best observations: the global sweep is too
  // coarse to resolve a narrow optimum once the model has found its basin.
  std::vector<int> order(y.size());
  std::iota(order.begin(), order.end(), 0);
  const int top = std::min<int>(5, static_cast<int>(order.size()));
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int a, int b) { return y[a] < y[b]; });
  std::normal_distribution<double> normal;
  const int per_top = m / (2 * std::max(top, 1));
  for (int t = 0; t < top; ++t) {
    const UnitPoint& center = input.completed[order[t]].u;
    for (int i = 0; i < per_top; ++i) {
      const double sigma = std::exp(std::log(0.003) + uniform(rng) * std::log(0.3 / 0.003));
      UnitPoint u = center;
      for (int k = 0; k < p; ++k) {
        if (space.IsCategorical(k)) {
          if (uniform(rng) < 1.0 / p) u[k] = uniform(rng);
        } else {
          double v = u[k] + sigma * normal(rng);
          if (options_.reflect_local) {
            // Reflect at the bounds: clamping would put a large share of
            // the local candidates (and so of the proposals) exactly on a
            // bound whenever the best point is near one.
            v = std::abs(v);
            v = 1 - std::abs(1 - std::fmod(v, 2.0));
          }
          u[k] = std::clamp(v, 0.0, 1.0);
        }
      }
      cands.push_back(std::move(u));
    }
  }

  if (!box.empty()) {
    // Into the trust region: the global candidates scaled onto it, the
    // local ones clamped into it.
    for (int i = 0; i < static_cast<int>(cands.size()); ++i) {
      for (int k = 0; k < p; ++k) {
        if (space.IsCategorical(k)) continue;
        cands[i][k] = i < m ? box[k].lo + (box[k].hi - box[k].lo) * cands[i][k]
                            : std::clamp(cands[i][k], box[k].lo, box[k].hi);
      }
    }
  }
  const int total = static_cast<int>(cands.size());
  // Row-major so each candidate's features are contiguous for Features().
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> feats(total,
                                                                               space.FeatureDim());
  for (int i = 0; i < total; ++i) space.Features(cands[i].data(), true, feats.row(i).data());
  Eigen::VectorXd mean, var;
  gp.Predict(feats, &mean, &var);
  std::vector<double> acq(total);
  for (int i = 0; i < total; ++i) {
    const double sd = std::sqrt(var[i]);
    acq[i] = Inside(space, avoid, cands[i]) ? -std::numeric_limits<double>::infinity()
                                            : std::log(sd) + LogH((best - mean[i]) / sd);
  }
  std::vector<int> rank(total);
  std::iota(rank.begin(), rank.end(), 0);
  std::sort(rank.begin(), rank.end(), [&](int a, int b) { return acq[a] > acq[b]; });

  // Refine the best few with L-BFGS on the relaxed features.
  auto objective = [&](const Eigen::VectorXd& u, Eigen::VectorXd* grad) {
    Eigen::VectorXd f(space.FeatureDim());
    space.Features(u.data(), true, f.data());
    double mu = 0, v = 0;
    Eigen::VectorXd dmu, dv;
    gp.PredictWithGradient(f, &mu, &v, &dmu, &dv);
    const double sd = std::sqrt(v);
    const double z = (best - mu) / sd;
    const Eigen::VectorXd dsd = dv / (2 * sd);
    const Eigen::VectorXd dz = (-dmu - z * dsd) / sd;
    const Eigen::VectorXd dacq = dsd / sd + DLogH(z) * dz;
    grad->setZero(p);
    for (int k = 0; k < p; ++k) {
      if (!space.IsCategorical(k)) (*grad)[k] = -dacq[space.FeatureOffset(k)];
    }
    return -(std::log(sd) + LogH(z));
  };
  struct Scored {
    double value;
    UnitPoint u;
  };
  std::vector<Scored> results;
  // Each L-BFGS step costs two O(n^2) triangular solves. Past ~300 results
  // keep the refinement's total near its cost at 300: fewer starts and
  // steps (the candidate set already holds local perturbations of the best
  // points, so the sweep alone lands close).
  const double scale = std::min(1.0, 300.0 * 300.0 / (static_cast<double>(n) * n));
  MinimizeOptions mo;
  mo.max_iterations = std::max(20, static_cast<int>(50 * scale));
  mo.gradient_tolerance = 1e-7;
  const int starts =
      std::min({options_.refine_starts,
                std::max(1, static_cast<int>(std::lround(options_.refine_starts * scale))), total});
  for (int s = 0; s < starts; ++s) {
    const UnitPoint& u0 = cands[rank[s]];
    Eigen::VectorXd x0 = Eigen::Map<const Eigen::VectorXd>(u0.data(), p);
    Eigen::VectorXd lo = Eigen::VectorXd::Zero(p), hi = Eigen::VectorXd::Ones(p);
    for (int k = 0; k < p; ++k) {
      if (space.IsCategorical(k)) {
        lo[k] = hi[k] = x0[k];
      } else if (!box.empty()) {
        lo[k] = box[k].lo;
        hi[k] = box[k].hi;
      }
    }
    if (Inside(space, avoid, u0)) continue;
    const MinimizeResult r = MinimizeBounded(objective, x0, lo, hi, mo);
    UnitPoint refined(r.x.data(), r.x.data() + p);
    // Refinement may run back into the avoided box: keep the start then.
    if (Inside(space, avoid, refined)) {
      results.push_back({acq[rank[s]], u0});
    } else {
      results.push_back({-r.value, std::move(refined)});
    }
  }
  for (int s = starts; s < total; ++s) results.push_back({acq[rank[s]], cands[rank[s]]});
  std::stable_sort(results.begin(), results.end(),
                   [](const Scored& a, const Scored& b) { return a.value > b.value; });
  for (const Scored& r : results) {
    if (std::isinf(r.value) && r.value < 0) break;  // Only avoided points left.
    if (!Taken(taken, Snap(space, r.u))) return r.u;
  }
  // Every candidate is a point already tried: a small discrete space is
  // nearly exhausted, so a random point is as good as any.
  UnitPoint u(p);
  for (double& x : u) x = uniform(rng);
  return u;
}

}  // namespace

int DefaultInitialPoints(int num_parameters) { return std::max(5, num_parameters + 1); }

Eigen::VectorXd TransformLosses(const Eigen::VectorXd& losses, OutputTransform transform) {
  const Eigen::Index n = losses.size();
  switch (transform) {
    case OutputTransform::kStandardize:
    case OutputTransform::kAuto:
      return Standardize(losses);
    case OutputTransform::kCopula: {
      std::vector<int> idx(n);
      std::iota(idx.begin(), idx.end(), 0);
      std::sort(idx.begin(), idx.end(), [&](int a, int b) { return losses[a] < losses[b]; });
      Eigen::VectorXd q(n);
      for (Eigen::Index i = 0; i < n;) {
        Eigen::Index j = i;
        while (j + 1 < n && losses[idx[j + 1]] == losses[idx[i]]) ++j;
        const double rank = 0.5 * static_cast<double>(i + j);  // Ties share the mean rank.
        for (Eigen::Index k = i; k <= j; ++k) q[idx[k]] = NormalQuantile((rank + 0.5) / n);
        i = j + 1;
      }
      return Standardize(q);
    }
    case OutputTransform::kLogShift: {
      Eigen::VectorXd log_derivative;
      return WarpLosses(losses, 0.01, &log_derivative);
    }
  }
  return Standardize(losses);
}

Eigen::VectorXd WarpLosses(const Eigen::VectorXd& losses, double relative_delta,
                           Eigen::VectorXd* log_derivative) {
  const Eigen::Index n = losses.size();
  double sd = 1;
  const double lo = losses.minCoeff();
  const Eigen::VectorXd shifted = losses.array() - lo;
  double spread = Median(shifted);
  if (!(spread > 0)) spread = shifted.maxCoeff();
  if (std::isinf(relative_delta) || !(spread > 0)) {
    Eigen::VectorXd out = Standardize(losses, &sd);
    log_derivative->setConstant(n, -std::log(sd));
    return out;
  }
  const Eigen::ArrayXd arg = shifted.array() + relative_delta * spread;
  Eigen::VectorXd out = Standardize(arg.log().matrix(), &sd);
  *log_derivative = (-arg.log() - std::log(sd)).matrix();
  return out;
}

std::unique_ptr<Sampler> MakeBayesianSampler(const SearchSpace& space,
                                             const BayesianOptions& options, uint64_t seed) {
  return std::make_unique<BayesianSampler>(space, options, seed);
}

}  // namespace gangway::tuner
