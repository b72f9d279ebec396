// Suggestion latency of the samplers vs. the number of observations
// (6 parameters, Hartmann-6 values at random points).
//
// Each iteration is one steady-state step of a sequential sweep: Ask(1)
// (timed) and Tell (untimed), so the history grows by one per iteration.
//  - BM_BayesianSuggest: the default policy. Beyond 64 results the
//    hyperparameters are refit only after 1/16 growth; between refits an
//    ask extends the kept Cholesky factor by the new result (O(n^2)). The
//    iteration counts cover whole refit cycles (N=200: 26 asks, 2 refits;
//    N=1000: 64 asks, 1 refit; N=2000: 128 asks, 1 refit), so the mean is the amortized cost per
//    suggestion. Counters max_ms / max_cpu_ms: the slowest ask (one with a
//    refit), wall and this thread's CPU time.
//  - BM_BayesianRefitEveryAsk: full hyperparameter and output-warp fits
//    with restarts on every ask, as the default does up to 64 results.
//  - BM_TpeSuggest (independent), BM_MultivariateTpeSuggest, BM_CmaEsSuggest,
//    BM_RandomSuggest: the other samplers. latency_optuna.py times Optuna's
//    with the same protocol.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "benchmark/benchmark.h"
#include "benchmarks/tuner/functions.h"
#include "tuner/tuner.h"

namespace gangway::tuner::bench {
namespace {

// This thread's CPU time: on a shared machine the slowest ask's wall time
// is mostly time spent preempted.
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// A tuner on 6 parameters in [0, 1] told n results at random points:
// Hartmann-6, and for each further objective k, x0 * k - x1.
Tuner WithHistory(TunerOptions o, int n) {
  std::vector<ParameterSpec> ps;
  for (int i = 0; i < 6; ++i) ps.push_back(ParameterSpec::Double("x" + std::to_string(i), 0, 1));
  o.seed = 1;
  Tuner t = *Tuner::Create(*SearchSpace::Create(ps), o);
  const int objectives = std::max<int>(1, static_cast<int>(o.objectives.size()));
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u;
  for (int i = 0; i < n; ++i) {
    std::vector<double> x(6);
    Assignment a;
    for (double& v : x) {
      v = u(rng);
      a.emplace_back(v);
    }
    (void)t.Register(i, a);
    std::vector<double> f(objectives, Hartmann6(x));
    for (int k = 1; k < objectives; ++k) f[k] = x[0] * k - x[1];
    (void)t.Tell(i, f);
  }
  return t;
}

Tuner Prepared(int n, Algorithm algorithm, bool refit_every_ask) {
  TunerOptions o;
  o.algorithm = algorithm;
  if (refit_every_ask) o.bayesian.refit_every_below = 1 << 30;
  Tuner t = WithHistory(o, n);
  // One untimed step, so timed ones are warm-started like a running sweep.
  auto p = t.Ask(1);
  (void)t.Tell((*p)[0].trial_id, 0.0);
  return t;
}

void Step(benchmark::State& state, Algorithm algorithm, bool refit_every_ask = false) {
  Tuner t = Prepared(static_cast<int>(state.range(0)), algorithm, refit_every_ask);
  double max_ms = 0, max_cpu_ms = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = ThreadCpuMs();
    auto p = t.Ask(1);
    benchmark::DoNotOptimize(p);
    state.PauseTiming();
    max_cpu_ms = std::max(max_cpu_ms, ThreadCpuMs() - c0);
    max_ms = std::max(
        max_ms,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::vector<double> x;
    for (const auto& v : (*p)[0].assignment) x.push_back(std::get<double>(v));
    (void)t.Tell((*p)[0].trial_id, Hartmann6(x));
    state.ResumeTiming();
  }
  state.counters["observations"] = static_cast<double>(t.completed_count());
  state.counters["max_ms"] = max_ms;
  state.counters["max_cpu_ms"] = max_cpu_ms;
}

void BM_BayesianSuggest(benchmark::State& state) { Step(state, Algorithm::kBayesian); }
void BM_BayesianRefitEveryAsk(benchmark::State& state) { Step(state, Algorithm::kBayesian, true); }
void BM_RandomSuggest(benchmark::State& state) { Step(state, Algorithm::kRandom); }
void BM_TpeSuggest(benchmark::State& state) { Step(state, Algorithm::kTpe); }
void BM_MultivariateTpeSuggest(benchmark::State& state) {
  Step(state, Algorithm::kMultivariateTpe);
}
void BM_CmaEsSuggest(benchmark::State& state) { Step(state, Algorithm::kCmaEs); }

// One batch ask of the bayesian sampler after a history of random results:
// args objectives (2: ParEGO, a GP fit per proposal), history, batch. What
// the coordinator's AskPace spreads over its ticks.
void BM_BayesianBatch(benchmark::State& state) {
  const int objectives = static_cast<int>(state.range(0));
  const int history = static_cast<int>(state.range(1));
  const int batch = static_cast<int>(state.range(2));
  for (auto _ : state) {
    state.PauseTiming();
    TunerOptions o;
    o.algorithm = Algorithm::kBayesian;
    o.objectives.assign(objectives, Direction::kMinimize);
    Tuner t = WithHistory(o, history);
    state.ResumeTiming();
    auto p = t.Ask(batch);
    benchmark::DoNotOptimize(p);
  }
}

BENCHMARK(BM_BayesianSuggest)->Arg(50)->Iterations(20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BayesianSuggest)->Arg(200)->Iterations(26)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BayesianSuggest)->Arg(1000)->Iterations(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BayesianSuggest)->Arg(2000)->Iterations(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BayesianRefitEveryAsk)->Arg(200)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BayesianBatch)
    ->Args({1, 200, 32})
    ->Args({2, 20, 8})
    ->Args({2, 200, 8})
    ->Args({2, 200, 32})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RandomSuggest)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TpeSuggest)->Arg(200)->Arg(1000)->Iterations(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MultivariateTpeSuggest)
    ->Arg(200)
    ->Arg(1000)
    ->Iterations(32)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CmaEsSuggest)->Arg(200)->Arg(1000)->Iterations(32)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gangway::tuner::bench

BENCHMARK_MAIN();
