#include "tuner/hyperband.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"

namespace gangway::tuner {
namespace {

// Random streams of this sampler (see StreamRng).
constexpr uint64_t kConfigPurpose = 10;

// The resource parameter's index and its [min, max], or an error.
struct Resource {
  int index = -1;
  double min = 0;
  double max = 0;
  bool is_int = false;
};

absl::StatusOr<Resource> FindResource(const SearchSpace& space, const HyperbandOptions& options) {
  const std::string path = "algorithm.settings.resourceParameter";
  if (options.resource_parameter.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": required for hyperband: the int or double parameter the algorithm sets "
                     "(e.g. epochs)"));
  }
  for (int i = 0; i < space.size(); ++i) {
    const ParameterSpec& p = space.parameters()[i];
    if (p.name != options.resource_parameter) continue;
    Resource r;
    r.index = i;
    if (const auto* d = std::get_if<DoubleDomain>(&p.domain)) {
      r.min = d->min;
      r.max = d->max;
    } else if (const auto* n = std::get_if<IntDomain>(&p.domain)) {
      r.min = static_cast<double>(n->min);
      r.max = static_cast<double>(n->max);
      r.is_int = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": parameter ", p.name, " must be an int or a double, not a list of values"));
    }
    if (!(r.min > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": parameter ", p.name, " needs min > 0 (the smallest resource), got ", r.min));
    }
    return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": no parameter named \"", options.resource_parameter, "\""));
}

enum class Status { kPending, kCompleted, kFailed };

struct Entry {
  int64_t id = 0;
  Status status = Status::kPending;
  double loss = 0;
  Assignment assignment;
};

class HyperbandSampler final : public Sampler {
 public:
  HyperbandSampler(Resource resource, std::vector<HyperbandBracket> brackets, uint64_t seed)
      : resource_(resource), brackets_(std::move(brackets)), seed_(seed) {}

  std::vector<Assignment> Propose(const SamplerInput& input, int n) override {
    std::vector<Assignment> out;
    if (n <= 0) return out;
    std::vector<Entry> entries;
    for (const KnownTrial& t : input.trials) {
      Entry e;
      e.id = t.id;
      e.status = t.state == KnownTrial::State::kCompleted ? Status::kCompleted
                 : t.state == KnownTrial::State::kFailed  ? Status::kFailed
                                                          : Status::kPending;
      e.loss = t.loss;
      e.assignment = *t.assignment;
      entries.push_back(std::move(e));
    }
    const size_t known = entries.size();
    size_t k = 0;  // The slot being laid out; slots below `known` are history.
    // Each round adds at least one slot per bracket, so the walk reaches the
    // end of the history and then either fills n proposals or waits.
    for (;;) {
      for (const HyperbandBracket& bracket : brackets_) {
        std::vector<size_t> previous;
        for (size_t rung = 0; rung < bracket.sizes.size(); ++rung) {
          std::vector<size_t> ranking;
          int size = bracket.sizes[rung];
          if (rung > 0) {
            bool waiting = false;
            for (size_t p : previous) {
              if (entries[p].status == Status::kCompleted) ranking.push_back(p);
              waiting |= entries[p].status == Status::kPending;
            }
            // History may run past a rung that was open when it was
            // written (trials registered by hand); only new proposals wait.
            if (waiting && k >= known) return out;
            std::stable_sort(ranking.begin(), ranking.end(),
                             [&](size_t a, size_t b) { return entries[a].loss < entries[b].loss; });
            size = std::min(size, static_cast<int>(ranking.size()));
          }
          if (size == 0) break;
          std::vector<size_t> current;
          for (int j = 0; j < size; ++j, ++k) {
            current.push_back(k);
            if (k < known) continue;
            if (static_cast<int>(out.size()) == n) return out;
            Assignment a =
                rung == 0 ? RandomConfig(*input.space, k) : entries[ranking[j]].assignment;
            a[resource_.index] = ResourceValue(bracket.resources[rung]);
            Entry e;
            e.assignment = a;
            entries.push_back(std::move(e));
            out.push_back(std::move(a));
          }
          previous = std::move(current);
        }
      }
    }
  }

 private:
  Assignment RandomConfig(const SearchSpace& space, uint64_t slot) const {
    std::mt19937_64 rng = StreamRng(seed_, kConfigPurpose, slot);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    UnitPoint u(space.size());
    for (double& x : u) x = uniform(rng);
    return space.Decode(u);
  }

  ParameterValue ResourceValue(double r) const {
    r = std::clamp(r, resource_.min, resource_.max);
    if (resource_.is_int) {
      return std::clamp(static_cast<int64_t>(std::llround(r)), static_cast<int64_t>(resource_.min),
                        static_cast<int64_t>(resource_.max));
    }
    return r;
  }

  Resource resource_;
  std::vector<HyperbandBracket> brackets_;
  uint64_t seed_;
};

}  // namespace

absl::StatusOr<std::vector<HyperbandBracket>> HyperbandSchedule(const SearchSpace& space,
                                                                const HyperbandOptions& options) {
  const double eta = options.reduction_factor;
  if (!(eta >= 2 && eta <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm.settings.reductionFactor: must be between 2 and 100, got ", eta));
  }
  absl::StatusOr<Resource> resource = FindResource(space, options);
  if (!resource.ok()) return resource.status();
  // The small epsilon keeps R / r = eta^k exact powers from losing a bracket
  // to rounding (log(81) / log(3) = 3.9999...).
  const int s_max =
      static_cast<int>(std::floor(std::log(resource->max / resource->min) / std::log(eta) + 1e-9));
  // The first bracket has about R / r trials in its first rung.
  if (std::pow(eta, s_max) > 100'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm.settings.resourceParameter: max / min of ",
                     options.resource_parameter, " is ", resource->max / resource->min,
                     "; hyperband's first bracket would need more than 100000 trials"));
  }
  std::vector<HyperbandBracket> out;
  for (int s = s_max; s >= 0; --s) {
    HyperbandBracket b;
    const int n0 = static_cast<int>(std::ceil((s_max + 1.0) / (s + 1.0) * std::pow(eta, s) - 1e-9));
    for (int i = 0; i <= s; ++i) {
      b.sizes.push_back(std::max(1, static_cast<int>(std::floor(n0 * std::pow(eta, -i) + 1e-9))));
      b.resources.push_back(resource->max * std::pow(eta, i - s));
    }
    out.push_back(std::move(b));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Sampler>> MakeHyperbandSampler(const SearchSpace& space,
                                                              const HyperbandOptions& options,
                                                              uint64_t seed) {
  absl::StatusOr<std::vector<HyperbandBracket>> brackets = HyperbandSchedule(space, options);
  if (!brackets.ok()) return brackets.status();
  return std::make_unique<HyperbandSampler>(*FindResource(space, options), *std::move(brackets),
                                            seed);
}

}  // namespace gangway::tuner
