// The tuner: one incremental ask/tell object per sweep.
//
// Pure library: no RPC, threads, clock or logging; every random choice is
// derived from TunerOptions::seed and the trial history, so the same calls
// give the same proposals.
//
// Trial lifecycle inside the tuner:
//
//   Ask() / Register() ──▶ Pending ──Tell()──────▶ Completed
//                            │  ▲
//                            │  └─ ReportIntermediate() (continue | stop)
//                            └────TellFailed()───▶ Failed
//
// Pending trials are known to the samplers (the bayesian one fantasizes
// their results), so a batch asked while others run does not pile onto one
// point. History is never resent: the coordinator tells each result once.
// After a coordinator restart (or to extend a finished sweep) it replays
// the history with Register() + Tell()/TellFailed() and asks on; the
// samplers use the replayed trials like their own.
//
// Thread: not thread-safe; the sweep controller owns one per sweep.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tuner/bayesian.h"
#include "tuner/cmaes.h"
#include "tuner/early_stopping.h"
#include "tuner/hyperband.h"
#include "tuner/nsga2.h"
#include "tuner/pareto.h"
#include "tuner/pbt.h"
#include "tuner/search_space.h"
#include "tuner/tpe.h"

namespace gangway::tuner {

enum class Direction { kMinimize, kMaximize };
inline constexpr size_t kMaxObjectives = 4;
enum class Algorithm {
  kGrid,
  kRandom,
  kSobol,
  kBayesian,
  kTpe,
  kMultivariateTpe,
  kCmaEs,
  kHyperband,
  kNsga2,
  kPbt
};

// "grid", "random", "sobol", "bayesian" (also Katib's "bayesianoptimization"),
// "tpe", "multivariate-tpe", "cmaes", "hyperband", "nsga2", "pbt".
absl::StatusOr<Algorithm> ParseAlgorithm(std::string_view name);
std::string_view AlgorithmName(Algorithm algorithm);

using EarlyStoppingOptions = std::variant<std::monostate, MedianStoppingOptions, AshaOptions>;

struct TunerOptions {
  Algorithm algorithm = Algorithm::kRandom;
  Direction direction = Direction::kMinimize;
  // Two or more: a multi-objective tuner (`direction` is then unused); Tell
  // takes one value per objective. Grid, random, sobol and nsga2 take
  // several objectives; the others optimize one.
  std::vector<Direction> objectives;
  uint64_t seed = 0;
  GridOptions grid;
  BayesianOptions bayesian;
  // tpe and multivariate-tpe (the algorithm decides `multivariate`).
  TpeOptions tpe;
  CmaEsOptions cmaes;
  HyperbandOptions hyperband;
  Nsga2Options nsga2;
  PbtOptions pbt;
  EarlyStoppingOptions early_stopping;
};

struct Proposal {
  int64_t trial_id = 0;
  Assignment assignment;
  // pbt: the trial whose checkpoint this one starts from.
  std::optional<int64_t> parent;
};

struct BestTrial {
  int64_t trial_id = 0;
  Assignment assignment;
  double objective = 0;            // The first objective's value.
  std::vector<double> objectives;  // Every objective's value.
};

class Tuner {
 public:
  // Errors: INVALID_ARGUMENT for bad options (e.g. grid over a double
  // without step, early-stopping settings out of range).
  static absl::StatusOr<Tuner> Create(SearchSpace space, TunerOptions options);

  Tuner(Tuner&&) noexcept;
  Tuner& operator=(Tuner&&) noexcept;
  ~Tuner();

  // Up to n new pending trials; fewer (maybe none) only once the grid is
  // exhausted, or while hyperband waits for a rung to finish. Ids are new and increasing.
  // INVALID_ARGUMENT if n < 0.
  absl::StatusOr<std::vector<Proposal>> Ask(int n);

  // Adds a trial the tuner did not propose (replayed history, a sweep being
  // extended, a user's own point) as pending. ALREADY_EXISTS for a known id,
  // INVALID_ARGUMENT for an assignment outside the space.
  absl::Status Register(int64_t trial_id, const Assignment& assignment);
  // Replaces a pending trial's assignment with the caller's form of it
  // (values printed and parsed back), so that what later proposals derive
  // from it (pbt's continued and perturbed parameters, nsga2's children)
  // is what a replay from the stored values derives. Errors as Register's
  // and for Tell.
  absl::Status Amend(int64_t trial_id, const Assignment& assignment);

  // The final objective of a pending trial. NOT_FOUND for an unknown id,
  // FAILED_PRECONDITION if it already finished, INVALID_ARGUMENT for a
  // non-finite value (tell such a trial failed instead).
  absl::Status Tell(int64_t trial_id, double objective);
  // One value per objective; INVALID_ARGUMENT for the wrong count. The
  // single-value Tell is this with one value.
  absl::Status Tell(int64_t trial_id, std::span<const double> objectives);
  absl::Status TellFailed(int64_t trial_id);

  // An intermediate objective value at `step`; the decision of the
  // configured early-stopping rule (always continue without one). A trial
  // told to stop keeps getting kStop; the caller stops it and then tells
  // its objective (or failure) as usual. Errors as for Tell.
  absl::StatusOr<Decision> ReportIntermediate(int64_t trial_id, int64_t step, double value);
  // The pending trial runs again from the beginning (its job restarted):
  // its intermediate values so far are dropped, so the rule judges the new
  // run alone. Errors as for Tell.
  absl::Status RestartTrial(int64_t trial_id);

  // True once the grid has proposed every point; never for other samplers.
  bool exhausted() const;
  int pending_count() const;
  int completed_count() const;
  // The best completed trial (lowest id among equals); for several
  // objectives, nullopt: see pareto_front().
  std::optional<BestTrial> best() const;
  // The completed trials no other completed trial dominates, in id order
  // (with one objective: the best, and any trial equal to it).
  std::vector<BestTrial> pareto_front() const;
  int objective_count() const {
    return options_.objectives.size() >= 2 ? static_cast<int>(options_.objectives.size()) : 1;
  }
  const SearchSpace& space() const { return space_; }
  const TunerOptions& options() const { return options_; }

 private:
  enum class State { kPending, kCompleted, kFailed };
  struct Trial {
    Assignment assignment;
    UnitPoint unit;
    State state = State::kPending;
    double loss = 0;
    std::vector<double> losses;  // Every objective's; loss is the first.
    Series series;               // Losses.
    bool stopped = false;
  };

  Tuner(SearchSpace space, TunerOptions options, std::unique_ptr<Sampler> sampler);
  absl::StatusOr<Trial*> FindPending(int64_t trial_id);
  Direction DirectionOf(int objective) const {
    return options_.objectives.size() >= 2 ? options_.objectives[objective] : options_.direction;
  }
  double ToLoss(double objective, int index = 0) const {
    return DirectionOf(index) == Direction::kMinimize ? objective : -objective;
  }

  SearchSpace space_;
  TunerOptions options_;
  std::unique_ptr<Sampler> sampler_;
  std::map<int64_t, Trial> trials_;
  int64_t next_id_ = 0;
};

}  // namespace gangway::tuner
