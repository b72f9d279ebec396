// Quality of gangway's schedulers (hyperband, pbt) against random search at
// equal total resource, on synthetic objectives cheap enough to run many
// seeds. See schedulers.md for the figures.
//
//   scheduler_compare hyperband [--seeds 20] [--budgets 10,30,100] [--tail 1] [--adverse 0]
//       [--trace F]
//   scheduler_compare pbt [--seeds 20] [--population 8] [--generations 20] [--steps 4]
//       [--lr 0.01]
//
// hyperband: hartmann6 on [0,1]^6 as a learning curve,
//   loss(x, r) = f(x) + g(x) * r^-a(x) + noise,  r in 1..81 (epochs),
// where g and a depend on x, so a trial's early loss ranks it well but not
// perfectly (a slow starter with small f is misjudged at r = 1). Hyperband
// (eta 3, s_max 4), random search at r = 81 and random search with ASHA
// early stopping run until they have spent B x 81 epochs; the score is the noise-free loss at r =
// 81 of the configuration each would pick (the best observed among its trials at r = 81). Budgets
// are nested, so one run per seed serves every budget.
// --trace writes each trial (method, seed, trial id, resource, x, observed
// loss); scheduler_optuna.py runs Optuna on the same objective and noise
// (its curve and noise reproduce a trace to 1e-15).
//
// pbt: the toy of Jaderberg et al. 2017, section 4.1: theta starts at
// (0.9, 0.9); each trial takes `steps` gradient-ascent steps on the
// surrogate Q^(theta | h) = 1.2 - (h0 theta0^2 + h1 theta1^2) from its
// parent's checkpoint and reports the true Q(theta) = 1.2 - |theta|^2.
// Random search trains `population` members with fixed random h for the
// same total steps. The score is the best Q any trial reached.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "benchmarks/tuner/functions.h"
#include "tuner/tuner.h"

namespace gangway::tuner::bench {
namespace {

constexpr int kMaxResource = 81;
constexpr double kNoiseSd = 0.02;

// Shared with scheduler_optuna.py: a noise draw must be the same function
// of (seed, trial, resource) on both sides.
uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Noise(uint64_t seed, uint64_t trial, uint64_t r) {
  const uint64_t h1 = SplitMix64(seed * 1000003ULL + trial * 131ULL + r);
  const uint64_t h2 = SplitMix64(h1);
  const double u1 = (static_cast<double>(h1 >> 11) + 0.5) / 9007199254740992.0;
  const double u2 = static_cast<double>(h2 >> 11) / 9007199254740992.0;
  return kNoiseSd * std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

// The learning curve without noise. g in [0.5, 2.5] and a in [0.4, 1.2]
// depend on coordinates hartmann6 also uses, so the start of a curve says
// something, not everything, about its end. `tail` scales g: larger, and
// early losses say less (--tail). `adverse` adds to g in proportion to how
// good hartmann6 is there, so the best configurations start slow and early
// losses mislead (--adverse; 1 hides f from the first epoch entirely).
struct Shape {
  double tail = 1;
  double adverse = 0;
};

double Curve(const std::vector<double>& x, double r, const Shape& shape) {
  const double f = Hartmann6(x);
  const double g = shape.tail * (0.5 + 2 * std::abs(x[0] - x[3])) - shape.adverse * f;
  const double a = 0.4 + 0.8 * x[4];
  return f + g * std::pow(r, -a);
}

struct Pick {
  double observed = INFINITY;  // Best observed loss at max resource so far.
  double true_final = NAN;     // Its noise-free loss at max resource.
};

struct Args {
  std::string mode;
  int seeds = 20;
  int seed0 = 0;
  std::vector<int> budgets = {10, 30, 100};
  std::string trace;
  Shape shape;
  int population = 8;
  int generations = 20;
  int steps = 4;
  double lr = 0.01;
};

std::vector<double> Xs(const Assignment& a) {
  std::vector<double> x;
  for (const auto& v : a) {
    if (const double* d = std::get_if<double>(&v)) x.push_back(*d);
  }
  return x;
}

struct Quartiles {
  double q1, median, q3;
};

Quartiles Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    const double pos = p * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
  };
  return {at(0.25), at(0.5), at(0.75)};
}

enum class Method { kRandomFull, kHyperband, kRandomAsha };

const char* MethodName(Method m) {
  switch (m) {
    case Method::kRandomFull:
      return "random@81";
    case Method::kHyperband:
      return "hyperband";
    case Method::kRandomAsha:
      return "random+asha";
  }
  return "?";
}

// One seed of one method up to the largest budget; the pick at each budget.
// kRandomFull trains every trial at max resource; kRandomAsha reports every
// epoch to the tuner's ASHA rule (min 1, eta 3, max 81) and stops when told.
absl::StatusOr<std::vector<Pick>> RunCurve(Method method, int seed, const Args& args,
                                           std::ofstream* trace) {
  const bool hyperband = method == Method::kHyperband;
  std::vector<ParameterSpec> ps;
  for (int i = 0; i < 6; ++i) ps.push_back(ParameterSpec::Double("x" + std::to_string(i), 0, 1));
  if (hyperband) ps.push_back(ParameterSpec::Int("epochs", 1, kMaxResource));
  absl::StatusOr<SearchSpace> space = SearchSpace::Create(std::move(ps));
  if (!space.ok()) return space.status();
  TunerOptions opts;
  opts.algorithm = hyperband ? Algorithm::kHyperband : Algorithm::kRandom;
  opts.seed = static_cast<uint64_t>(seed);
  opts.hyperband.resource_parameter = "epochs";
  opts.hyperband.reduction_factor = 3;
  if (method == Method::kRandomAsha) {
    opts.early_stopping =
        AshaOptions{.min_resource = 1, .reduction_factor = 3, .max_resource = kMaxResource};
  }
  absl::StatusOr<Tuner> tuner = Tuner::Create(*space, opts);
  if (!tuner.ok()) return tuner.status();

  std::vector<Pick> picks;
  Pick pick;
  int64_t used = 0;
  // Marks the pick at every budget that `more` epochs would overrun; false
  // once the largest is reached.
  auto fits = [&](int64_t more) {
    while (picks.size() < args.budgets.size() &&
           used + more > int64_t{args.budgets[picks.size()]} * kMaxResource) {
      picks.push_back(pick);
    }
    return picks.size() < args.budgets.size();
  };
  auto noisy = [seed, &shape = args.shape](int64_t id, const std::vector<double>& x, int64_t r) {
    return Curve(x, static_cast<double>(r), shape) +
           Noise(static_cast<uint64_t>(seed), static_cast<uint64_t>(id), static_cast<uint64_t>(r));
  };
  while (picks.size() < args.budgets.size()) {
    absl::StatusOr<std::vector<Proposal>> asked = tuner->Ask(1);
    if (!asked.ok()) return asked.status();
    if (asked->empty()) return absl::InternalError("sequential ask returned nothing");
    const Proposal& p = asked->front();
    const std::vector<double> x = Xs(p.assignment);
    int64_t r = hyperband ? std::get<int64_t>(p.assignment.back()) : kMaxResource;
    double y = 0;
    if (method == Method::kRandomAsha) {
      // Epoch by epoch: a trial cut off by the budget never finishes.
      for (int64_t step = 1; step <= kMaxResource; ++step) {
        if (!fits(1)) return picks;
        ++used;
        y = noisy(p.trial_id, x, step);
        r = step;
        absl::StatusOr<Decision> d = tuner->ReportIntermediate(p.trial_id, step, y);
        if (!d.ok()) return d.status();
        if (*d == Decision::kStop) break;
      }
    } else {
      // A trial that would overrun a budget is not run within it.
      if (!fits(r)) return picks;
      used += r;
      y = noisy(p.trial_id, x, r);
    }
    if (absl::Status s = tuner->Tell(p.trial_id, y); !s.ok()) return s;
    if (r == kMaxResource && y < pick.observed) {
      pick.observed = y;
      pick.true_final = Curve(x, kMaxResource, args.shape);
    }
    if (trace != nullptr) {
      *trace << MethodName(method) << " " << seed << " " << p.trial_id << " " << r;
      for (double v : x) *trace << " " << v;
      *trace << " " << y << "\n";
    }
  }
  return picks;
}

// Spearman rank correlation of the noise-free loss at r and at the max
// resource over uniform points: how informative an early rung is.
double RankCorrelation(double r, int n, const Shape& shape) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> early(n), final(n);
  for (int i = 0; i < n; ++i) {
    std::vector<double> x(6);
    for (double& v : x) v = u(rng);
    early[i] = Curve(x, r, shape);
    final[i] = Curve(x, kMaxResource, shape);
  }
  auto ranks = [n](const std::vector<double>& v) {
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return v[a] < v[b]; });
    std::vector<double> rank(n);
    for (int i = 0; i < n; ++i) rank[order[i]] = i;
    return rank;
  };
  const std::vector<double> a = ranks(early), b = ranks(final);
  double d2 = 0;
  for (int i = 0; i < n; ++i) d2 += (a[i] - b[i]) * (a[i] - b[i]);
  const double nn = n;
  return 1 - 6 * d2 / (nn * (nn * nn - 1));
}

int MainHyperband(const Args& args) {
  std::printf("rank correlation of loss at r and at r=%d (10000 uniform points):", kMaxResource);
  for (int r : {1, 3, 9, 27}) std::printf(" r=%d %.3f", r, RankCorrelation(r, 10000, args.shape));
  std::printf("\n");
  std::ofstream trace;
  if (!args.trace.empty()) {
    trace.open(args.trace);
    trace.precision(17);
  }
  // [method][budget] -> per-seed noise-free final loss of the pick.
  std::map<std::string, std::vector<std::vector<double>>> scores;
  for (const Method m : {Method::kRandomFull, Method::kHyperband, Method::kRandomAsha}) {
    auto& s = scores[MethodName(m)];
    s.assign(args.budgets.size(), {});
    for (int seed = args.seed0; seed < args.seed0 + args.seeds; ++seed) {
      absl::StatusOr<std::vector<Pick>> picks =
          RunCurve(m, seed, args, trace.is_open() ? &trace : nullptr);
      if (!picks.ok()) {
        std::cerr << picks.status() << "\n";
        return 1;
      }
      for (size_t b = 0; b < picks->size(); ++b) s[b].push_back((*picks)[b].true_final);
    }
  }
  std::printf("final loss at r=%d of the picked configuration (hartmann6 min -3.3224 + tail)\n",
              kMaxResource);
  std::printf("median [q1, q3] over %d seeds (%d..%d)\n", args.seeds, args.seed0,
              args.seed0 + args.seeds - 1);
  std::printf("%-12s", "budget xR");
  for (int b : args.budgets) std::printf("  %-26d", b);
  std::printf("\n");
  for (const auto& [name, per_budget] : scores) {
    std::printf("%-12s", name.c_str());
    for (const auto& v : per_budget) {
      const Quartiles q = Summarize(v);
      std::printf("  %7.4f [%7.4f, %7.4f]", q.median, q.q1, q.q3);
    }
    std::printf("\n");
  }
  // Paired: seeds where hyperband's pick is better than the other's.
  for (const auto& [other, label] :
       {std::pair{"random@81", "hb<random@81"}, std::pair{"random+asha", "hb<rand+asha"}}) {
    std::printf("%-12s", label);
    for (size_t b = 0; b < args.budgets.size(); ++b) {
      int wins = 0;
      for (int i = 0; i < args.seeds; ++i) {
        wins += scores["hyperband"][b][i] < scores[other][b][i];
      }
      std::printf("  %d/%-24d", wins, args.seeds);
    }
    std::printf("\n");
  }
  // Per seed, for paired comparisons (scheduler_optuna.py --gangway).
  for (const auto& [name, per_budget] : scores) {
    for (size_t b = 0; b < args.budgets.size(); ++b) {
      std::printf("seeds %s %d:", name.c_str(), args.budgets[b]);
      for (double v : per_budget[b]) std::printf(" %.6f", v);
      std::printf("\n");
    }
  }
  return 0;
}

double TrueQ(const std::vector<double>& t) { return 1.2 - (t[0] * t[0] + t[1] * t[1]); }

// `steps` gradient-ascent steps on the surrogate from `theta`.
std::vector<double> Train(std::vector<double> theta, const std::vector<double>& h, int steps,
                          double lr) {
  for (int i = 0; i < steps; ++i) {
    for (int j = 0; j < 2; ++j) theta[j] -= lr * 2 * h[j] * theta[j];
  }
  return theta;
}

// A model trained in intervals from a checkpointed state. `train` runs one
// interval of `trial` (the interval's index within its member's history,
// for noise) from `state`; `score` is higher-better.
struct PbtTask {
  std::vector<ParameterSpec> params;
  std::vector<double> start;
  std::function<std::vector<double>(std::vector<double> state, const Assignment& a, int64_t trial,
                                    int interval)>
      train;
  std::function<double(const std::vector<double>&)> score;
};

PbtTask ToyTask(const Args& args) {
  return {{ParameterSpec::Double("h0", 0, 1), ParameterSpec::Double("h1", 0, 1)},
          {0.9, 0.9},
          [&args](std::vector<double> theta, const Assignment& a, int64_t, int) {
            return Train(std::move(theta), Xs(a), args.steps, args.lr);
          },
          TrueQ};
}

constexpr int kSgdDims = 10;

// SGD on mean(theta^2) / 2 with unit gradient noise: a large learning rate
// converges fast but to a noise floor about lr / 2, so a decaying schedule
// beats every fixed rate. Score: -mean(theta^2), the true loss.
PbtTask SgdTask(const Args& args, int seed) {
  return {
      {ParameterSpec::Double("lr", 1e-3, 1, Scale::kLog)},
      std::vector<double>(kSgdDims, 3.0),
      [&args, seed](std::vector<double> theta, const Assignment& a, int64_t trial, int interval) {
        const double lr = std::get<double>(a[0]);
        std::mt19937_64 rng(SplitMix64(static_cast<uint64_t>(seed) * 1000003ULL +
                                       static_cast<uint64_t>(trial) * 131ULL +
                                       static_cast<uint64_t>(interval)));
        std::normal_distribution<double> normal;
        for (int i = 0; i < args.steps; ++i) {
          for (double& t : theta) t -= lr * (t + normal(rng));
        }
        return theta;
      },
      [](const std::vector<double>& theta) {
        double sum = 0;
        for (double t : theta) sum += t * t;
        return -sum / static_cast<double>(theta.size());
      }};
}

absl::StatusOr<double> RunPbt(bool pbt, int seed, const Args& args, const PbtTask& task) {
  absl::StatusOr<SearchSpace> space = SearchSpace::Create(task.params);
  if (!space.ok()) return space.status();
  TunerOptions opts;
  opts.algorithm = pbt ? Algorithm::kPbt : Algorithm::kRandom;
  opts.direction = Direction::kMaximize;
  opts.seed = static_cast<uint64_t>(seed);
  opts.pbt.population = args.population;
  absl::StatusOr<Tuner> tuner = Tuner::Create(*space, opts);
  if (!tuner.ok()) return tuner.status();
  double best = -INFINITY;
  if (!pbt) {
    // Same parallelism and total steps: each member trains its own
    // parameters from the start for every generation's steps, scored after
    // each interval.
    for (int m = 0; m < args.population; ++m) {
      absl::StatusOr<std::vector<Proposal>> asked = tuner->Ask(1);
      if (!asked.ok()) return asked.status();
      const Proposal& p = asked->front();
      std::vector<double> state = task.start;
      for (int g = 0; g < args.generations; ++g) {
        state = task.train(std::move(state), p.assignment, p.trial_id, g);
        best = std::max(best, task.score(state));
      }
      if (absl::Status s = tuner->Tell(p.trial_id, task.score(state)); !s.ok()) return s;
    }
    return best;
  }
  std::map<int64_t, std::vector<double>> checkpoints;
  for (int g = 0; g < args.generations; ++g) {
    absl::StatusOr<std::vector<Proposal>> asked = tuner->Ask(args.population);
    if (!asked.ok()) return asked.status();
    if (static_cast<int>(asked->size()) != args.population) {
      return absl::InternalError("pbt asked fewer than a generation");
    }
    for (const Proposal& p : *asked) {
      std::vector<double> from = p.parent ? checkpoints.at(*p.parent) : task.start;
      checkpoints[p.trial_id] = task.train(std::move(from), p.assignment, p.trial_id, g);
    }
    for (const Proposal& p : *asked) {
      const double q = task.score(checkpoints[p.trial_id]);
      best = std::max(best, q);
      if (absl::Status s = tuner->Tell(p.trial_id, q); !s.ok()) return s;
    }
  }
  return best;
}

int MainPbt(const Args& args) {
  const bool sgd = args.mode == "pbt-sgd";
  // Regret: the best possible score minus the best reached.
  const double top = sgd ? 0 : 1.2;
  std::map<std::string, std::vector<double>> regrets;
  for (int seed = args.seed0; seed < args.seed0 + args.seeds; ++seed) {
    const PbtTask task = sgd ? SgdTask(args, seed) : ToyTask(args);
    for (const bool pbt : {false, true}) {
      absl::StatusOr<double> q = RunPbt(pbt, seed, args, task);
      if (!q.ok()) {
        std::cerr << q.status() << "\n";
        return 1;
      }
      regrets[pbt ? "pbt" : "random"].push_back(top - *q);
    }
    if (sgd) {
      // The best of 41 fixed rates on a log grid over [1e-3, 1], each run
      // as a member (its own noise), per seed: an upper bound on what any
      // fixed rate found by search can do here.
      double best = INFINITY;
      for (int i = 0; i <= 40; ++i) {
        const Assignment a = {std::pow(10.0, -3 + 3 * i / 40.0)};
        std::vector<double> state = task.start;
        for (int g = 0; g < args.generations; ++g) {
          state = task.train(std::move(state), a, 1000 + i, g);
          best = std::min(best, -task.score(state));
        }
      }
      regrets["fixed41"].push_back(best);
    }
  }
  std::printf("%s, population %d, %d generations x %d steps%s\n",
              sgd ? "loss mean(theta^2) of noisy SGD, best reached" : "regret 1.2 - best Q",
              args.population, args.generations, args.steps,
              sgd ? "" : absl::StrCat(", lr ", args.lr).c_str());
  std::printf("median [q1, q3] over %d seeds (%d..%d)\n", args.seeds, args.seed0,
              args.seed0 + args.seeds - 1);
  for (const auto& [name, v] : regrets) {
    const Quartiles q = Summarize(v);
    std::printf("%-8s %.3e [%.3e, %.3e]\n", name.c_str(), q.median, q.q1, q.q3);
  }
  if (!sgd) {
    // The best fixed schedule: h = (1, 1) throughout (the largest steps).
    std::vector<double> oracle = {0.9, 0.9};
    oracle = Train(oracle, {1, 1}, args.generations * args.steps, args.lr);
    std::printf("%-8s %.3e (h = (1, 1) for every step)\n", "fixed", 1.2 - TrueQ(oracle));
  }
  for (const char* other : {"random", "fixed41"}) {
    if (regrets.count(other) == 0) continue;
    int wins = 0;
    for (int i = 0; i < args.seeds; ++i) wins += regrets["pbt"][i] < regrets[other][i];
    std::printf("pbt better than %s on %d/%d seeds\n", other, wins, args.seeds);
  }
  return 0;
}

bool ParseArgs(int argc, char** argv, Args* args) {
  if (argc < 2) return false;
  args->mode = argv[1];
  if (args->mode != "hyperband" && args->mode != "pbt" && args->mode != "pbt-sgd") {
    std::cerr << "unknown mode " << args->mode << " (hyperband, pbt or pbt-sgd)\n";
    return false;
  }
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << flag << ": needs a value\n";
      return false;
    }
    const std::string value = argv[++i];
    try {
      if (flag == "--seeds") {
        args->seeds = std::stoi(value);
      } else if (flag == "--seed0") {
        args->seed0 = std::stoi(value);
      } else if (flag == "--tail") {
        args->shape.tail = std::stod(value);
      } else if (flag == "--adverse") {
        args->shape.adverse = std::stod(value);
      } else if (flag == "--trace") {
        args->trace = value;
      } else if (flag == "--population") {
        args->population = std::stoi(value);
      } else if (flag == "--generations") {
        args->generations = std::stoi(value);
      } else if (flag == "--steps") {
        args->steps = std::stoi(value);
      } else if (flag == "--lr") {
        args->lr = std::stod(value);
      } else if (flag == "--budgets") {
        args->budgets.clear();
        for (absl::string_view b : absl::StrSplit(value, ',')) {
          args->budgets.push_back(std::stoi(std::string(b)));
        }
        if (!std::is_sorted(args->budgets.begin(), args->budgets.end())) {
          std::cerr << "--budgets: must be ascending, got " << value << "\n";
          return false;
        }
      } else {
        std::cerr << "unknown flag " << flag << "\n";
        return false;
      }
    } catch (const std::exception&) {
      std::cerr << flag << ": not a number: " << value << "\n";
      return false;
    }
  }
  if (args->seeds < 1 || args->population < 2 || args->generations < 1 || args->steps < 1 ||
      args->budgets.empty() || args->budgets.front() < 1 || !(args->lr > 0 && args->lr < 0.5) ||
      !(args->shape.tail >= 0) || !(args->shape.adverse >= 0)) {
    std::cerr
        << "--seeds, --generations, --steps and --budgets need values >= 1, "
           "--population >= 2, --lr in (0, 0.5) (larger diverges), --tail and --adverse >= 0\n";
    return false;
  }
  return true;
}

}  // namespace
}  // namespace gangway::tuner::bench

int main(int argc, char** argv) {
  gangway::tuner::bench::Args args;
  if (!gangway::tuner::bench::ParseArgs(argc, argv, &args)) {
    std::cerr << "usage: scheduler_compare hyperband|pbt|pbt-sgd [--seeds N] [--seed0 N] "
                 "[--budgets 10,30,100] [--tail X] [--adverse X] [--trace FILE] [--population N] "
                 "[--generations N] "
                 "[--steps N] [--lr X]\n";
    return 2;
  }
  return args.mode == "hyperband" ? gangway::tuner::bench::MainHyperband(args)
                                  : gangway::tuner::bench::MainPbt(args);
}
