#!/usr/bin/python3
"""Optuna's RandomSampler + HyperbandPruner on scheduler_compare's learning
curve (same objective, noise and budgets), for the table in schedulers.md.

    /usr/bin/python3 scheduler_optuna.py [--seeds 20] [--budgets 10,30,100]
        [--tail 1] [--adverse 0] [--gangway OUT]

OUT: scheduler_compare hyperband's output for the same seeds and budgets;
then the seeds where each gangway method's pick beats Optuna's are counted.

Each trial reports its loss at every epoch 1..81 and stops when pruned; an
epoch counts against the budget whether or not the trial is later pruned.
The pick at a budget is the trial with the best observed loss at epoch 81
among those finished within it; the score is its noise-free loss at 81.
"""
import argparse
import math

import numpy as np
import optuna

MAX_RESOURCE = 81
NOISE_SD = 0.02
MASK = (1 << 64) - 1

ALPHA = [1.0, 1.2, 3.0, 3.2]
A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
     [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
     [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
     [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]


def hartmann6(x):
    total = 0.0
    for i in range(4):
        inner = sum(A[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6))
        total += ALPHA[i] * math.exp(-inner)
    return -total


def curve(x, r, tail=1.0, adverse=0.0):
    # As scheduler_compare.cc's Curve.
    f = hartmann6(x)
    g = tail * (0.5 + 2 * abs(x[0] - x[3])) - adverse * f
    a = 0.4 + 0.8 * x[4]
    return f + g * r ** -a


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def noise(seed, trial, r):
    # As scheduler_compare.cc's Noise (the same draw for the same inputs).
    h1 = splitmix64((seed * 1000003 + trial * 131 + r) & MASK)
    h2 = splitmix64(h1)
    u1 = ((h1 >> 11) + 0.5) / 9007199254740992.0
    u2 = (h2 >> 11) / 9007199254740992.0
    return NOISE_SD * math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)


class BudgetSpent(Exception):
    pass


def run(seed, budgets, tail, adverse):
    # HyperbandPruner assigns brackets by a hash of the study name and trial
    # number; the default name is a random UUID, so name it for a rerun to
    # reproduce.
    study = optuna.create_study(
        study_name="scheduler-seed-%d" % seed,
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=MAX_RESOURCE, reduction_factor=3))
    state = {"used": 0, "observed": math.inf, "true": math.nan, "next": 0}
    picks = []

    def spend():
        state["used"] += 1
        while (state["next"] < len(budgets)
               and state["used"] > budgets[state["next"]] * MAX_RESOURCE):
            picks.append(state["true"])
            state["next"] += 1
        if state["next"] == len(budgets):
            raise BudgetSpent()

    def objective(trial):
        x = [trial.suggest_float("x%d" % i, 0, 1) for i in range(6)]
        y = math.inf
        for r in range(1, MAX_RESOURCE + 1):
            spend()
            y = curve(x, r, tail, adverse) + noise(seed, trial.number, r)
            trial.report(y, r)
            if r < MAX_RESOURCE and trial.should_prune():
                raise optuna.TrialPruned()
        if y < state["observed"]:
            state["observed"] = y
            state["true"] = curve(x, MAX_RESOURCE, tail, adverse)
        return y

    try:
        study.optimize(objective, n_trials=10**7)
    except BudgetSpent:
        pass
    return picks, len(study.trials)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed0", type=int, default=0)
    parser.add_argument("--budgets", default="10,30,100")
    parser.add_argument("--tail", type=float, default=1.0,
                        help="scale of the curve's tail, as scheduler_compare --tail")
    parser.add_argument("--adverse", type=float, default=0.0,
                        help="slow start of good configurations, as scheduler_compare")
    parser.add_argument("--gangway", help="scheduler_compare hyperband output")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    scores = [[] for _ in budgets]
    trials = []
    for seed in range(args.seed0, args.seed0 + args.seeds):
        picks, n = run(seed, budgets, args.tail, args.adverse)
        trials.append(n)
        for b, v in enumerate(picks):
            scores[b].append(v)
    print("optuna %s: RandomSampler + HyperbandPruner(1, %d, 3), %d seeds (%d..%d)"
          % (optuna.__version__, MAX_RESOURCE, args.seeds, args.seed0,
             args.seed0 + args.seeds - 1))
    line = "%-16s" % "optuna-hb"
    for v in scores:
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        line += "  %7.4f [%7.4f, %7.4f]" % (med, q1, q3)
    print(line)
    print("trials started per seed at the largest budget: median %d" % np.median(trials))
    for b, v in zip(budgets, scores):
        print("seeds optuna-hb %d: %s" % (b, " ".join("%.6f" % s for s in v)))
    if args.gangway:
        gangway = {}
        with open(args.gangway) as f:
            for line in f:
                if line.startswith("seeds "):
                    head, values = line.split(":")
                    _, method, budget = head.split()
                    gangway[(method, int(budget))] = [float(v) for v in values.split()]
        for method in sorted({m for m, _ in gangway}):
            line = "%-16s" % (method + "<optuna")
            for b, v in zip(budgets, scores):
                g = gangway.get((method, b))
                if g is None or len(g) != len(v):
                    raise SystemExit("%s: no %s at budget %d for %d seeds"
                                     % (args.gangway, method, b, len(v)))
                wins = sum(x < y for x, y in zip(g, v))
                line += "  %d/%-24d" % (wins, len(v))
            print(line)


if __name__ == "__main__":
    main()
