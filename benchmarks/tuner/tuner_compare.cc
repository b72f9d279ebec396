// Runs gangway's samplers on the functions of the Optuna baseline
// (../shared/bench from the repository root) with the same seeds and
// budgets, sequential ask/tell, and writes the traces as JSON for
// compare.py: values, ms per ask/tell, and each trial's point in the unit
// cube (for the share of coordinates on a bound of the box). Held-out
// functions (functions.h) run the same way.
//
//   tuner_compare --samplers random,sobol,bayesian --seeds 20 --trials 100
//       --out gangway_results.json [--digits-script digits_eval.py]
//
// digits_svc (public) and diabetes_svr (held out) are evaluated by
// digits_eval.py / diabetes_eval.py in a child process over pipes (one line
// per trial), so the C++ side needs no Python embedding.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "benchmarks/tuner/functions.h"
#include "tuner/tuner.h"

namespace gangway::tuner::bench {
namespace {

struct Args {
  std::vector<std::string> functions = {"branin",      "hartmann3", "hartmann6",
                                        "rosenbrock4", "ackley5",   "levy5"};
  std::vector<std::string> samplers = {"random", "sobol", "bayesian"};
  int seeds = 20;
  int seed0 = 0;
  int trials = 100;
  std::string out = "gangway_results.json";
  std::string python = "/usr/bin/python3";
  std::string digits_script;
  std::string diabetes_script;
  std::string label;  // Name recorded for the bayesian sampler.
  int initial_points = 0;
  std::string transform = "";
  double ls_prior_mean = std::nan("");
  int restarts = -1;
  int full_fit_every = -1;
  int centre_first = -1;
  int reflect_local = -1;
  int trust_region = -1;
  double trust_region_length = 0;
  int global_every = -1;
  // TPE ablation: false records tpe / multivariate-tpe with the normalised
  // kernel density as "<name>-normalised".
  bool tpe_optuna31_density = true;
  double tr_max_ratio = 0;
  std::string tr_restart;  // none|global|sobol; empty: the default.
  double tr_min_length = 0;
  bool quiet = false;
};

// A child process answering one objective value per input line.
class PipeEvaluator {
 public:
  bool Start(const std::string& python, const std::string& script) {
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) return false;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      close(to_child[1]);
      close(from_child[0]);
      execl(python.c_str(), python.c_str(), script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(to_child[1], "w");
    out_ = fdopen(from_child[0], "r");
    return in_ != nullptr && out_ != nullptr;
  }
  bool Eval(const std::vector<double>& x, double* y) {
    for (size_t i = 0; i < x.size(); ++i) std::fprintf(in_, i ? " %.17g" : "%.17g", x[i]);
    std::fprintf(in_, "\n");
    std::fflush(in_);
    char buf[256];
    if (std::fgets(buf, sizeof buf, out_) == nullptr) return false;
    *y = std::strtod(buf, nullptr);
    return true;
  }
  ~PipeEvaluator() {
    if (in_) std::fclose(in_);
    if (out_) std::fclose(out_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }

 private:
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

struct Run {
  std::string function, sampler;
  int seed = 0;
  std::vector<double> values, suggest_ms, tell_ms;
  std::vector<UnitPoint> unit;
  int model_from = 0;  // First trial the model proposed (bayesian).
};

absl::StatusOr<SearchSpace> SpaceFor(const std::string& name, const TestFunction* f) {
  std::vector<ParameterSpec> ps;
  if (name == "diabetes_svr") {
    ps.push_back(ParameterSpec::Double("C", 1e-2, 1e4, Scale::kLog));
    ps.push_back(ParameterSpec::Double("gamma", 1e-4, 1e1, Scale::kLog));
    ps.push_back(ParameterSpec::Double("epsilon", 1e-2, 1e2, Scale::kLog));
  } else if (name == "digits_svc") {
    ps.push_back(ParameterSpec::Double("C", 1e-2, 1e3, Scale::kLog));
    ps.push_back(ParameterSpec::Double("gamma", 1e-4, 1e1, Scale::kLog));
    ps.push_back(ParameterSpec::Int("n_components", 2, 64));
    ps.push_back(ParameterSpec::Double("tol", 1e-5, 1e-1, Scale::kLog));
  } else {
    for (int i = 0; i < f->dims; ++i) {
      const double lo = f->lo_each.empty() ? f->lo : f->lo_each[i];
      const double hi = f->hi_each.empty() ? f->hi : f->hi_each[i];
      ps.push_back(ParameterSpec::Double("x" + std::to_string(i), lo, hi));
    }
  }
  return SearchSpace::Create(std::move(ps));
}

std::vector<double> Numbers(const Assignment& a) {
  std::vector<double> x;
  for (const auto& v : a) {
    if (const double* d = std::get_if<double>(&v)) x.push_back(*d);
    if (const int64_t* i = std::get_if<int64_t>(&v)) x.push_back(static_cast<double>(*i));
  }
  return x;
}

int Main(const Args& args) {
  auto synthetic = SyntheticFunctions();
  for (auto& f : HeldOutFunctions()) synthetic.push_back(std::move(f));
  std::vector<Run> runs;
  using Clock = std::chrono::steady_clock;
  for (const std::string& fname : args.functions) {
    const TestFunction* f = nullptr;
    for (const auto& t : synthetic) {
      if (t.name == fname) f = &t;
    }
    // Real objectives run in a Python child, one per function.
    const bool piped = fname == "digits_svc" || fname == "diabetes_svr";
    if (f == nullptr && !piped) {
      std::cerr << "unknown function " << fname << "\n";
      return 2;
    }
    std::unique_ptr<PipeEvaluator> child;
    if (piped) {
      const std::string& script = fname == "digits_svc" ? args.digits_script : args.diabetes_script;
      child = std::make_unique<PipeEvaluator>();
      if (script.empty() || !child->Start(args.python, script)) {
        std::cerr << fname << ": cannot start " << args.python << " " << script << "\n";
        return 2;
      }
    }
    for (const std::string& sname : args.samplers) {
      for (int seed = args.seed0; seed < args.seed0 + args.seeds; ++seed) {
        absl::StatusOr<SearchSpace> space = SpaceFor(fname, f);
        if (!space.ok()) {
          std::cerr << space.status() << "\n";
          return 2;
        }
        TunerOptions opts;
        opts.algorithm = *ParseAlgorithm(sname);
        opts.seed = static_cast<uint64_t>(seed);
        opts.bayesian.initial_points = args.initial_points;
        if (args.transform == "copula") opts.bayesian.transform = OutputTransform::kCopula;
        if (args.transform == "logshift") opts.bayesian.transform = OutputTransform::kLogShift;
        if (args.transform == "auto") opts.bayesian.transform = OutputTransform::kAuto;
        if (args.transform == "standardize") {
          opts.bayesian.transform = OutputTransform::kStandardize;
        }
        if (!std::isnan(args.ls_prior_mean)) {
          opts.bayesian.gp.log_lengthscale_prior_mean = args.ls_prior_mean;
        }
        if (args.restarts >= 0) opts.bayesian.gp.random_restarts = args.restarts;
        if (args.full_fit_every >= 0) opts.bayesian.full_fit_every = args.full_fit_every;
        if (args.centre_first >= 0) opts.bayesian.centre_first = args.centre_first != 0;
        if (args.reflect_local >= 0) opts.bayesian.reflect_local = args.reflect_local != 0;
        if (args.trust_region >= 0) {
          opts.bayesian.trust_region = args.trust_region > 0;
          if (args.trust_region > 0) opts.bayesian.trust_region_min_dims = args.trust_region;
        }
        if (args.global_every >= 0) opts.bayesian.trust_region_global_every = args.global_every;
        opts.tpe.optuna31_density = args.tpe_optuna31_density;
        if (args.tr_max_ratio > 0) opts.bayesian.trust_region_max_ratio = args.tr_max_ratio;
        if (args.trust_region_length > 0) {
          opts.bayesian.trust_region_length = args.trust_region_length;
        }
        if (args.tr_restart == "none")
          opts.bayesian.trust_region_restart = TrustRegionRestart::kNone;
        if (args.tr_restart == "global") {
          opts.bayesian.trust_region_restart = TrustRegionRestart::kGlobal;
        }
        if (args.tr_restart == "sobol") {
          opts.bayesian.trust_region_restart = TrustRegionRestart::kSobol;
        }
        if (args.tr_min_length > 0) opts.bayesian.trust_region_min_length = args.tr_min_length;
        absl::StatusOr<Tuner> tuner = Tuner::Create(*std::move(space), opts);
        if (!tuner.ok()) {
          std::cerr << tuner.status() << "\n";
          return 2;
        }
        Run run;
        run.function = fname;
        run.sampler = sname == "bayesian" && !args.label.empty() ? args.label : sname;
        if (!args.tpe_optuna31_density && sname.find("tpe") != std::string::npos) {
          run.sampler = sname + "-normalised";
        }
        run.seed = seed;
        if (opts.algorithm == Algorithm::kBayesian) {
          run.model_from = opts.bayesian.initial_points > 0
                               ? opts.bayesian.initial_points
                               : DefaultInitialPoints(tuner->space().size());
        }
        for (int t = 0; t < args.trials; ++t) {
          const auto t0 = Clock::now();
          auto p = tuner->Ask(1);
          const auto t1 = Clock::now();
          if (!p.ok() || p->empty()) {
            std::cerr << "ask failed\n";
            return 1;
          }
          const std::vector<double> x = Numbers((*p)[0].assignment);
          double y = 0;
          if (f != nullptr) {
            y = f->f(x);
          } else if (!child->Eval(x, &y)) {
            std::cerr << fname << " evaluator died\n";
            return 1;
          }
          const auto t2 = Clock::now();
          if (absl::Status s = tuner->Tell((*p)[0].trial_id, y); !s.ok()) {
            std::cerr << s << "\n";
            return 1;
          }
          const auto t3 = Clock::now();
          run.values.push_back(y);
          run.unit.push_back(tuner->space().Encode((*p)[0].assignment));
          run.suggest_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          run.tell_ms.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
        }
        if (!args.quiet) {
          double best = run.values[0];
          for (double v : run.values) best = std::min(best, v);
          std::cerr << fname << " " << run.sampler << " seed " << seed << " best "
                    << best - (f ? f->fstar : 0.0) << "\n";
        }
        runs.push_back(std::move(run));
      }
    }
  }
  std::ofstream out(args.out);
  out.precision(17);
  out << "{\"schema\": \"gangway_tuner_compare/1\", \"runs\": [\n";
  auto list = [&](const std::vector<double>& v) {
    out << "[";
    for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
    out << "]";
  };
  for (size_t r = 0; r < runs.size(); ++r) {
    const Run& run = runs[r];
    out << "{\"function\": \"" << run.function << "\", \"sampler\": \"" << run.sampler
        << "\", \"seed\": " << run.seed << ", \"values\": ";
    list(run.values);
    out << ", \"suggest_ms\": ";
    list(run.suggest_ms);
    out << ", \"tell_ms\": ";
    list(run.tell_ms);
    out << ", \"model_from\": " << run.model_from << ", \"unit\": [";
    for (size_t i = 0; i < run.unit.size(); ++i) {
      out << (i ? ", " : "");
      list(run.unit[i]);
    }
    out << "]}" << (r + 1 < runs.size() ? ",\n" : "\n");
  }
  out << "]}\n";
  return 0;
}

}  // namespace
}  // namespace gangway::tuner::bench

int main(int argc, char** argv) {
  gangway::tuner::bench::Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--functions") {
      args.functions = absl::StrSplit(next(), ',');
    } else if (a == "--samplers") {
      args.samplers = absl::StrSplit(next(), ',');
    } else if (a == "--seeds") {
      args.seeds = std::stoi(next());
    } else if (a == "--seed0") {
      args.seed0 = std::stoi(next());
    } else if (a == "--trials") {
      args.trials = std::stoi(next());
    } else if (a == "--out") {
      args.out = next();
    } else if (a == "--python") {
      args.python = next();
    } else if (a == "--digits-script") {
      args.digits_script = next();
    } else if (a == "--diabetes-script") {
      args.diabetes_script = next();
    } else if (a == "--label") {
      args.label = next();
    } else if (a == "--initial-points") {
      args.initial_points = std::stoi(next());
    } else if (a == "--transform") {
      args.transform = next();
    } else if (a == "--ls-prior-mean") {
      args.ls_prior_mean = std::stod(next());
    } else if (a == "--restarts") {
      args.restarts = std::stoi(next());
    } else if (a == "--full-fit-every") {
      args.full_fit_every = std::stoi(next());
    } else if (a == "--centre-first") {
      args.centre_first = std::stoi(next());
    } else if (a == "--reflect-local") {
      args.reflect_local = std::stoi(next());
    } else if (a == "--global-every") {
      args.global_every = std::stoi(next());
    } else if (a == "--tpe-density") {
      const std::string d = next();
      if (d != "optuna31" && d != "normalised") {
        std::cerr << "--tpe-density: expected optuna31 or normalised, got " << d << "\n";
        return 2;
      }
      args.tpe_optuna31_density = d == "optuna31";
    } else if (a == "--tr-max-ratio") {
      args.tr_max_ratio = std::stod(next());
    } else if (a == "--trust-region-length") {
      args.trust_region_length = std::stod(next());
    } else if (a == "--trust-region") {
      args.trust_region = std::stoi(next());
    } else if (a == "--tr-restart") {
      args.tr_restart = next();
      if (args.tr_restart != "none" && args.tr_restart != "global" && args.tr_restart != "sobol") {
        std::cerr << "--tr-restart: expected none, global or sobol, got " << args.tr_restart
                  << "\n";
        return 2;
      }
    } else if (a == "--tr-min-length") {
      args.tr_min_length = std::stod(next());
    } else if (a == "--quiet") {
      args.quiet = true;
    } else {
      std::cerr << "unknown flag " << a
                << "\nflags: --functions --samplers --seeds --seed0 --trials --out --python "
                   "--digits-script --diabetes-script --label --initial-points --transform "
                   "--ls-prior-mean "
                   "--restarts --full-fit-every --centre-first 0|1 --reflect-local 0|1 "
                   "--trust-region MIN_DIMS|0 --trust-region-length L --tr-max-ratio R "
                   "--global-every K --tr-restart none|global|sobol --tr-min-length L "
                   "--tpe-density optuna31|normalised --quiet\n";
      return 2;
    }
  }
  return gangway::tuner::bench::Main(args);
}
