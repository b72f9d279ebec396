#!/usr/bin/python3
"""Hypervolume of gangway's NSGA-II and ParEGO (bayesian with two objectives)
against Optuna's NSGAIISampler, same run.

For ZDT1 (30 variables) and bi-objective DTLZ2 (11 variables), seeds
0..S-1, sequential trials: runs mo_trace (gangway) and Optuna in this
process, and prints the median [25th - 75th percentile] over seeds of the
hypervolume of all trials so far after 50 and 100 evaluations. Reference
points: ZDT1 (1.1, 11), DTLZ2 (3.85, 3.85): 1.1 x the largest value each
objective can take on the box, so every trial counts.

  /usr/bin/python3 benchmarks/tuner/mo_compare.py --mo-trace build/benchmarks/tuner/mo_trace \
      [--seeds 20] [--md out.md]

Needs python3-optuna (Debian: apt-get install python3-optuna).
"""

import argparse
import json
import math
import subprocess
import time

import numpy as np
import optuna

REF = {"zdt1": (1.1, 11.0), "dtlz2": (3.85, 3.85)}
DIMS = {"zdt1": 30, "dtlz2": 11}
BUDGETS = (50, 100)


def zdt1(x):
    g = 1 + 9 * sum(x[1:]) / (len(x) - 1)
    return x[0], g * (1 - math.sqrt(x[0] / g))


def dtlz2(x):
    g = sum((v - 0.5) ** 2 for v in x[1:])
    a = x[0] * math.pi / 2
    return (1 + g) * math.cos(a), (1 + g) * math.sin(a)


def hv2(points, ref):
    """Two-objective hypervolume (minimisation) of `points` against `ref`."""
    pts = sorted(p for p in points if p[0] < ref[0] and p[1] < ref[1])
    volume, best_f2 = 0.0, ref[1]
    for f1, f2 in pts:
        if f2 < best_f2:
            volume += (ref[0] - f1) * (best_f2 - f2)
            best_f2 = f2
    return volume


def optuna_runs(problem, seeds, trials, population):
    f = zdt1 if problem == "zdt1" else dtlz2
    runs = []
    for seed in range(seeds):
        sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
        values = []

        def objective(trial):
            x = [trial.suggest_float("x%d" % i, 0, 1) for i in range(DIMS[problem])]
            v = f(x)
            values.append(list(v))
            return v

        study.optimize(objective, n_trials=trials)
        runs.append(values)
    return runs


def gangway_runs(binary, problem, sampler, seeds, trials, population):
    out = subprocess.run([binary, "--problem", problem, "--sampler", sampler, "--population",
                          str(population), "--seeds", str(seeds), "--trials", str(trials)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["runs"]


def summary(runs, problem, budget):
    hvs = [hv2(r[:budget], REF[problem]) for r in runs]
    return np.median(hvs), np.percentile(hvs, 25), np.percentile(hvs, 75)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mo-trace", required=True)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--md")
    a = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for problem in ("zdt1", "dtlz2"):
        contenders = []
        for pop in (20, 50):
            t0 = time.time()
            runs = gangway_runs(a.mo_trace, problem, "nsga2", a.seeds, max(BUDGETS), pop)
            contenders.append(("gangway nsga2 pop %d" % pop, runs, time.time() - t0))
        t0 = time.time()
        runs = gangway_runs(a.mo_trace, problem, "bayesian", a.seeds, max(BUDGETS), 20)
        contenders.append(("gangway bayesian (ParEGO)", runs, time.time() - t0))
        t0 = time.time()
        runs = gangway_runs(a.mo_trace, problem, "random", a.seeds, max(BUDGETS), 20)
        contenders.append(("gangway random", runs, time.time() - t0))
        for pop in (20, 50):
            t0 = time.time()
            runs = optuna_runs(problem, a.seeds, max(BUDGETS), pop)
            name = "optuna NSGAII pop %d%s" % (pop, " (default)" if pop == 50 else "")
            contenders.append((name, runs, time.time() - t0))
        for name, runs, secs in contenders:
            cells = []
            for b in BUDGETS:
                m, lo, hi = summary(runs, problem, b)
                cells.append("%.3f [%.3f - %.3f]" % (m, lo, hi))
            rows.append((problem, name, cells, secs))
    lines = ["| problem | sampler | HV @50 | HV @100 | wall s (all seeds) |",
             "|---|---|---|---|---|"]
    for problem, name, cells, secs in rows:
        lines.append("| %s | %s | %s | %s | %.1f |" % (problem, name, cells[0], cells[1], secs))
    text = "\n".join(lines)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
