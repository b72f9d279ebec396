#include "tuner/tuner.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "tuner/parego.h"

namespace gangway::tuner {

absl::StatusOr<Algorithm> ParseAlgorithm(std::string_view name) {
  const std::string n = absl::AsciiStrToLower(std::string(name));
  if (n == "grid") return Algorithm::kGrid;
  if (n == "random") return Algorithm::kRandom;
  if (n == "sobol") return Algorithm::kSobol;
  if (n == "bayesian" || n == "bayesianoptimization") return Algorithm::kBayesian;
  if (n == "tpe") return Algorithm::kTpe;
  if (n == "multivariate-tpe") return Algorithm::kMultivariateTpe;
  if (n == "cmaes") return Algorithm::kCmaEs;
  if (n == "hyperband") return Algorithm::kHyperband;
  if (n == "nsga2" || n == "nsga-ii") return Algorithm::kNsga2;
  if (n == "pbt") return Algorithm::kPbt;
  return absl::InvalidArgumentError(absl::StrCat(
      "algorithm: unknown \"", std::string(name),
      "\" (known: grid, random, sobol, bayesian, tpe, multivariate-tpe, cmaes, hyperband, "
      "nsga2, pbt)"));
}

std::string_view AlgorithmName(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kGrid:
      return "grid";
    case Algorithm::kRandom:
      return "random";
    case Algorithm::kSobol:
      return "sobol";
    case Algorithm::kBayesian:
      return "bayesian";
    case Algorithm::kTpe:
      return "tpe";
    case Algorithm::kMultivariateTpe:
      return "multivariate-tpe";
    case Algorithm::kCmaEs:
      return "cmaes";
    case Algorithm::kHyperband:
      return "hyperband";
    case Algorithm::kNsga2:
      return "nsga2";
    case Algorithm::kPbt:
      return "pbt";
  }
  return "unknown";
}

absl::StatusOr<Tuner> Tuner::Create(SearchSpace space, TunerOptions options) {
  if (const auto* m = std::get_if<MedianStoppingOptions>(&options.early_stopping)) {
    if (absl::Status s = Validate(*m); !s.ok()) return s;
  }
  if (const auto* a = std::get_if<AshaOptions>(&options.early_stopping)) {
    if (absl::Status s = Validate(*a); !s.ok()) return s;
  }
  if (options.objectives.size() >= 2) {
    if (options.objectives.size() > kMaxObjectives) {
      return absl::InvalidArgumentError(absl::StrCat("objectives: at most ", kMaxObjectives,
                                                     ", got ", options.objectives.size()));
    }
    switch (options.algorithm) {
      case Algorithm::kGrid:
      case Algorithm::kRandom:
      case Algorithm::kSobol:
      case Algorithm::kNsga2:
      case Algorithm::kBayesian:  // ParEGO (tuner/parego.h).
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "algorithm.name: ", std::string(AlgorithmName(options.algorithm)),
            " optimizes one objective; with several use nsga2, bayesian, random, sobol or grid"));
    }
    if (!std::holds_alternative<std::monostate>(options.early_stopping)) {
      return absl::InvalidArgumentError(
          "earlyStopping: not available with several objectives (which one would it judge?)");
    }
  }
  std::unique_ptr<Sampler> sampler;
  switch (options.algorithm) {
    case Algorithm::kGrid: {
      auto s = MakeGridSampler(space, options.grid);
      if (!s.ok()) return s.status();
      sampler = *std::move(s);
      break;
    }
    case Algorithm::kRandom:
      sampler = MakeRandomSampler(options.seed);
      break;
    case Algorithm::kSobol: {
      auto s = MakeSobolSampler(space, options.seed);
      if (!s.ok()) return s.status();
      sampler = *std::move(s);
      break;
    }
    case Algorithm::kBayesian:
      if (options.bayesian.initial_points < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "algorithm.initialPoints: must be >= 0, got ", options.bayesian.initial_points));
      }
      if (!(options.bayesian.trust_region_min_length > 0 &&
            options.bayesian.trust_region_min_length < 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("bayesian trust_region_min_length: must be in (0, 1), got ",
                         options.bayesian.trust_region_min_length));
      }
      sampler = options.objectives.size() >= 2
                    ? MakeParEgoSampler(options.bayesian, options.seed)
                    : MakeBayesianSampler(space, options.bayesian, options.seed);
      break;
    case Algorithm::kTpe:
    case Algorithm::kMultivariateTpe: {
      if (options.tpe.startup_trials < 0 || options.tpe.ei_candidates < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("algorithm: tpe needs startupTrials >= 0 and eiCandidates >= 1, got ",
                         options.tpe.startup_trials, " and ", options.tpe.ei_candidates));
      }
      TpeOptions tpe = options.tpe;
      tpe.multivariate = options.algorithm == Algorithm::kMultivariateTpe;
      sampler = MakeTpeSampler(space, tpe, options.seed);
      break;
    }
    case Algorithm::kCmaEs:
      if (options.cmaes.population < 0 || !(options.cmaes.sigma0 > 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("algorithm: cmaes needs population >= 0 and sigma0 > 0, got ",
                         options.cmaes.population, " and ", options.cmaes.sigma0));
      }
      sampler = MakeCmaEsSampler(space, options.cmaes, options.seed);
      break;
    case Algorithm::kNsga2:
      if (options.nsga2.population < 2 || options.nsga2.population > 10'000) {
        return absl::InvalidArgumentError(
            absl::StrCat("algorithm.settings.population: must be between 2 and 10000, got ",
                         options.nsga2.population));
      }
      sampler = MakeNsga2Sampler(space, options.nsga2, options.seed);
      break;
    case Algorithm::kPbt: {
      const PbtOptions& p = options.pbt;
      if (p.population < 2 || p.population > 1000) {
        return absl::InvalidArgumentError(absl::StrCat(
            "algorithm.settings.population: must be between 2 and 1000, got ", p.population));
      }
      if (!(p.truncation > 0 && p.truncation <= 0.5)) {
        return absl::InvalidArgumentError(
            absl::StrCat("algorithm.settings.truncationPercent: must be between 1 and 50, got ",
                         p.truncation * 100));
      }
      if (!(p.resample_probability >= 0 && p.resample_probability <= 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("algorithm.settings.resamplePercent: must be between 0 and 100, got ",
                         p.resample_probability * 100));
      }
      sampler = MakePbtSampler(space, p, options.seed);
      break;
    }
    case Algorithm::kHyperband: {
      auto s = MakeHyperbandSampler(space, options.hyperband, options.seed);
      if (!s.ok()) return s.status();
      sampler = *std::move(s);
      break;
    }
  }
  return Tuner(std::move(space), std::move(options), std::move(sampler));
}

Tuner::Tuner(SearchSpace space, TunerOptions options, std::unique_ptr<Sampler> sampler)
    : space_(std::move(space)), options_(std::move(options)), sampler_(std::move(sampler)) {}
Tuner::Tuner(Tuner&&) noexcept = default;
Tuner& Tuner::operator=(Tuner&&) noexcept = default;
Tuner::~Tuner() = default;

absl::StatusOr<std::vector<Proposal>> Tuner::Ask(int n) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("ask: n must be >= 0, got ", n));
  std::vector<Proposal> out;
  if (n == 0) return out;
  SamplerInput input;
  input.space = &space_;
  input.trial_count = trials_.size();
  for (const auto& [id, t] : trials_) {
    input.all.push_back(&t.assignment);
    input.trials.push_back({id, &t.assignment,
                            t.state == State::kCompleted ? KnownTrial::State::kCompleted
                            : t.state == State::kFailed  ? KnownTrial::State::kFailed
                                                         : KnownTrial::State::kPending,
                            t.loss, t.state == State::kCompleted ? &t.losses : nullptr});
    if (t.state == State::kCompleted) input.completed.push_back({t.unit, t.loss});
    if (t.state == State::kPending) input.pending.push_back(t.unit);
  }
  std::vector<Assignment> assignments = sampler_->Propose(input, n);
  std::vector<std::optional<int64_t>> parents = sampler_->TakeParents();
  parents.resize(assignments.size());
  for (size_t j = 0; j < assignments.size(); ++j) {
    Assignment& a = assignments[j];
    Trial t;
    t.unit = space_.Encode(a);
    t.assignment = a;
    const int64_t id = next_id_++;
    trials_.emplace(id, std::move(t));
    out.push_back({id, std::move(a), parents[j]});
  }
  return out;
}

absl::Status Tuner::Register(int64_t trial_id, const Assignment& assignment) {
  if (trials_.count(trial_id) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("trial ", trial_id, " is already known"));
  }
  if (absl::Status s = space_.Check(assignment); !s.ok()) return s;
  Trial t;
  t.assignment = assignment;
  t.unit = space_.Encode(assignment);
  trials_.emplace(trial_id, std::move(t));
  next_id_ = std::max(next_id_, trial_id + 1);
  return absl::OkStatus();
}

absl::Status Tuner::Amend(int64_t trial_id, const Assignment& assignment) {
  if (absl::Status s = space_.Check(assignment); !s.ok()) return s;
  absl::StatusOr<Trial*> t = FindPending(trial_id);
  if (!t.ok()) return t.status();
  (*t)->assignment = assignment;
  (*t)->unit = space_.Encode(assignment);
  return absl::OkStatus();
}

absl::StatusOr<Tuner::Trial*> Tuner::FindPending(int64_t trial_id) {
  auto it = trials_.find(trial_id);
  if (it == trials_.end()) {
    return absl::NotFoundError(absl::StrCat("trial ", trial_id, " is unknown"));
  }
  if (it->second.state != State::kPending) {
    return absl::FailedPreconditionError(absl::StrCat("trial ", trial_id, " has already finished"));
  }
  return &it->second;
}

absl::Status Tuner::Tell(int64_t trial_id, double objective) {
  return Tell(trial_id, std::span<const double>(&objective, 1));
}

absl::Status Tuner::Tell(int64_t trial_id, std::span<const double> objectives) {
  if (static_cast<int>(objectives.size()) != objective_count()) {
    return absl::InvalidArgumentError(absl::StrCat("trial ", trial_id, ": ", objectives.size(),
                                                   " objective values for ", objective_count(),
                                                   " objectives"));
  }
  for (double objective : objectives) {
    if (!std::isfinite(objective)) {
      return absl::InvalidArgumentError(absl::StrCat("trial ", trial_id, ": objective ", objective,
                                                     " is not finite; tell it failed"));
    }
  }
  absl::StatusOr<Trial*> t = FindPending(trial_id);
  if (!t.ok()) return t.status();
  (*t)->state = State::kCompleted;
  (*t)->losses.clear();
  for (size_t i = 0; i < objectives.size(); ++i) {
    (*t)->losses.push_back(ToLoss(objectives[i], static_cast<int>(i)));
  }
  (*t)->loss = (*t)->losses[0];
  return absl::OkStatus();
}

absl::Status Tuner::TellFailed(int64_t trial_id) {
  absl::StatusOr<Trial*> t = FindPending(trial_id);
  if (!t.ok()) return t.status();
  (*t)->state = State::kFailed;
  return absl::OkStatus();
}

absl::StatusOr<Decision> Tuner::ReportIntermediate(int64_t trial_id, int64_t step, double value) {
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("trial ", trial_id, ": intermediate value ", value, " is not finite"));
  }
  absl::StatusOr<Trial*> found = FindPending(trial_id);
  if (!found.ok()) return found.status();
  Trial& t = **found;
  t.series.emplace_back(step, ToLoss(value));
  if (t.stopped) return Decision::kStop;
  Decision d = Decision::kContinue;
  std::vector<const Series*> others;
  if (const auto* m = std::get_if<MedianStoppingOptions>(&options_.early_stopping)) {
    for (const auto& [id, o] : trials_) {
      if (id != trial_id && o.state == State::kCompleted) others.push_back(&o.series);
    }
    d = MedianStoppingDecision(*m, t.series, others);
  } else if (const auto* a = std::get_if<AshaOptions>(&options_.early_stopping)) {
    for (const auto& [id, o] : trials_) {
      if (id != trial_id) others.push_back(&o.series);
    }
    d = AshaDecision(*a, t.series, others);
  }
  if (d == Decision::kStop) t.stopped = true;
  return d;
}

absl::Status Tuner::RestartTrial(int64_t trial_id) {
  absl::StatusOr<Trial*> found = FindPending(trial_id);
  if (!found.ok()) return found.status();
  (*found)->series.clear();
  return absl::OkStatus();
}

bool Tuner::exhausted() const { return sampler_->exhausted(); }

int Tuner::pending_count() const {
  int n = 0;
  for (const auto& [id, t] : trials_) n += t.state == State::kPending;
  return n;
}

int Tuner::completed_count() const {
  int n = 0;
  for (const auto& [id, t] : trials_) n += t.state == State::kCompleted;
  return n;
}

std::optional<BestTrial> Tuner::best() const {
  std::optional<BestTrial> best;
  if (objective_count() > 1) return best;
  double best_loss = 0;
  for (const auto& [id, t] : trials_) {
    if (t.state != State::kCompleted) continue;
    if (!best || t.loss < best_loss) {
      best_loss = t.loss;
      best = BestTrial{id, t.assignment, ToLoss(t.loss), {ToLoss(t.loss)}};
    }
  }
  return best;
}

std::vector<BestTrial> Tuner::pareto_front() const {
  std::vector<const std::pair<const int64_t, Trial>*> done;
  std::vector<Losses> points;
  for (const auto& entry : trials_) {
    if (entry.second.state != State::kCompleted) continue;
    done.push_back(&entry);
    points.push_back(entry.second.losses);
  }
  std::vector<BestTrial> out;
  if (points.empty()) return out;
  const std::vector<std::vector<int>> fronts = NonDominatedFronts(points);
  for (int i : fronts[0]) {
    const auto& [id, t] = *done[i];
    BestTrial b{id, t.assignment, ToLoss(t.loss), {}};
    for (size_t k = 0; k < t.losses.size(); ++k) {
      b.objectives.push_back(ToLoss(t.losses[k], static_cast<int>(k)));
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace gangway::tuner
