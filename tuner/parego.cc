#include "tuner/parego.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace gangway::tuner {
namespace {

constexpr uint64_t kWeightPurpose = 15;

class ParEgoSampler final : public Sampler {
 public:
  ParEgoSampler(const BayesianOptions& options, uint64_t seed) : options_(options), seed_(seed) {}

  // Each proposal of a batch draws its own weight and sees the earlier ones
  // as pending trials (one GP fit each): with one weight per ask a batch
  // would only spread around one point of the front by the kriging
  // believer's fantasies, while different weights send the proposals to
  // different parts of it, which is what a batch of a multi-objective sweep
  // wants (as BoTorch's qParEGO does).
  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    // `completed` holds the completed trials in id order, as `trials` does.
    std::vector<std::vector<double>> losses;
    for (const KnownTrial& t : input.trials) {
      if (t.state == KnownTrial::State::kCompleted && t.losses != nullptr) {
        losses.push_back(*t.losses);
      }
    }
    SamplerInput in = input;
    const bool have_losses = losses.size() == input.completed.size() && !losses.empty();
    const std::vector<std::vector<double>> normalized =
        have_losses ? NormalizeLosses(losses) : std::vector<std::vector<double>>{};
    const int objectives = have_losses ? static_cast<int>(losses[0].size()) : 0;
    std::vector<Assignment> out;
    out.reserve(n);
    for (int j = 0; j < n; ++j) {
      in.trial_count = input.trial_count + j;
      if (have_losses) {
        const std::vector<double> w = ParEgoWeights(seed_, in.trial_count, objectives);
        for (size_t i = 0; i < normalized.size(); ++i) {
          in.completed[i].loss = AugmentedChebyshev(normalized[i], w);
        }
      }
      // A fresh GP sampler per proposal: the bayesian sampler warm-starts
      // its hyperparameter fit from the last ask's, which a tuner replayed
      // from the store does not have, and here the last ask's fit was to
      // other scalar losses anyway. Fresh, a proposal is a function of
      // (seed, history), and a restarted sweep proposes what it would have.
      std::vector<Assignment> p =
          MakeBayesianSampler(*input.space, options_, seed_)->Propose(in, 1);
      if (p.empty()) break;
      out.push_back(std::move(p[0]));
      in.pending.push_back(input.space->Encode(out.back()));
      in.all.push_back(&out.back());  // `out` never reallocates: reserved.
    }
    return out;
  }

 private:
  BayesianOptions options_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<Sampler> MakeParEgoSampler(const BayesianOptions& options, uint64_t seed) {
  return std::make_unique<ParEgoSampler>(options, seed);
}

std::vector<double> ParEgoWeights(uint64_t seed, uint64_t index, int objectives) {
  // Normalized exponential draws are uniform on the simplex.
  std::mt19937_64 rng = StreamRng(seed, kWeightPurpose, index);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> w(objectives);
  double sum = 0;
  for (double& x : w) {
    x = -std::log1p(-uniform(rng));
    sum += x;
  }
  for (double& x : w) x = sum > 0 ? x / sum : 1.0 / objectives;
  return w;
}

std::vector<std::vector<double>> NormalizeLosses(const std::vector<std::vector<double>>& losses) {
  std::vector<std::vector<double>> out = losses;
  if (losses.empty()) return out;
  for (size_t k = 0; k < losses[0].size(); ++k) {
    double lo = losses[0][k], hi = losses[0][k];
    for (const std::vector<double>& row : losses) {
      lo = std::min(lo, row[k]);
      hi = std::max(hi, row[k]);
    }
    for (std::vector<double>& row : out) row[k] = hi > lo ? (row[k] - lo) / (hi - lo) : 0.0;
  }
  return out;
}

double AugmentedChebyshev(std::span<const double> f, std::span<const double> w, double rho) {
  double max = -INFINITY, sum = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    max = std::max(max, w[i] * f[i]);
    sum += w[i] * f[i];
  }
  return max + rho * sum;
}

}  // namespace gangway::tuner
