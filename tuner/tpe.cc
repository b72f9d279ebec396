#include "tuner/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "tuner/tpe_parzen.h"

namespace gangway::tuner {
namespace {

class TpeSampler final : public Sampler {
 public:
  TpeSampler(const TpeOptions& options, uint64_t seed) : options_(options), seed_(seed) {}

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    const SearchSpace& space = *input.space;
    const int nc = static_cast<int>(input.completed.size());
    std::vector<Assignment> out;
    for (int j = 0; j < n; ++j) {
      const uint64_t index = input.trial_count + j;
      std::mt19937_64 rng = StreamRng(seed_, 6, index);
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      if (nc < std::max(options_.startup_trials, 2)) {
        UnitPoint u(space.size());
        for (double& x : u) x = uniform(rng);
        out.push_back(space.Decode(u));
        continue;
      }
      out.push_back(space.Decode(Suggest(space, input, rng)));
    }
    return out;
  }

 private:
  UnitPoint Suggest(const SearchSpace& space, const SamplerInput& input,
                    std::mt19937_64& rng) const {
    const int nc = static_cast<int>(input.completed.size());
    // The split keeps trial order inside each group (for the weights).
    std::vector<int> order(nc);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return input.completed[a].loss < input.completed[b].loss;
    });
    const int n_below = std::min(static_cast<int>(std::ceil(0.1 * nc)), 25);
    std::vector<bool> below(nc, false);
    for (int i = 0; i < n_below; ++i) below[order[i]] = true;
    std::vector<const UnitPoint*> lo, hi;
    for (int i = 0; i < nc; ++i) (below[i] ? lo : hi).push_back(&input.completed[i].u);
    const ParzenEstimator l(space, lo, options_.multivariate, options_.prior_weight,
                            options_.optuna31_density);
    const ParzenEstimator g(space, hi, options_.multivariate, options_.prior_weight,
                            options_.optuna31_density);
    const int m = std::max(options_.ei_candidates, 1);
    if (options_.multivariate) {
      UnitPoint best;
      double best_score = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < m; ++i) {
        UnitPoint u = l.Sample(rng);
        const double score = l.LogPdf(u) - g.LogPdf(u);
        if (best.empty() || score > best_score) {
          best_score = score;
          best = std::move(u);
        }
      }
      return best;
    }
    UnitPoint u(space.size());
    for (int k = 0; k < space.size(); ++k) {
      double best_score = -std::numeric_limits<double>::infinity();
      for (int i = 0; i < m; ++i) {
        const double x = l.SampleDim(k, rng);
        const double score = l.LogPdfDim(k, x) - g.LogPdfDim(k, x);
        if (i == 0 || score > best_score) {
          best_score = score;
          u[k] = x;
        }
      }
    }
    return u;
  }

  TpeOptions options_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<Sampler> MakeTpeSampler(const SearchSpace& /*space*/, const TpeOptions& options,
                                        uint64_t seed) {
  return std::make_unique<TpeSampler>(options, seed);
}

}  // namespace gangway::tuner
