#!/usr/bin/python3
"""Side-by-side table: gangway's samplers next to the Optuna baseline.

Reads gangway traces written by tuner_compare (one or more JSON files) and
Optuna's optuna_baseline_results.json, and prints, per function, the median
[25th - 75th percentile] over seeds of simple regret (best CV error for
digits_svc) after 10/25/50 evaluations, plus mean ms per suggestion. The
last table scores bayesian against Optuna's default TPE and random search
at the final budget.

Quantiles as in optuna_baseline.py (numpy median / percentile, linear).

  /usr/bin/python3 compare.py gangway_results.json [more.json ...] \
      [--optuna /work/shared/bench/optuna_baseline_results.json] [--md out.md]
"""

import argparse
import json
import sys

import numpy as np

FUNCTIONS = ["branin", "hartmann3", "hartmann6", "rosenbrock4", "ackley5", "levy5", "digits_svc"]
OPTUNA = ["random", "tpe", "tpe_mv", "cmaes", "qmc"]


def q(xs):
    a = np.asarray(xs, dtype=float)
    return float(np.median(a)), float(np.percentile(a, 25)), float(np.percentile(a, 75))


def g(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return "%.2e" % v
    return "%.3g" % v


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gangway", nargs="+")
    p.add_argument("--optuna", default="/work/shared/bench/optuna_baseline_results.json")
    p.add_argument("--budgets", default="10,25,50")
    p.add_argument("--md", help="also write the tables to this file")
    a = p.parse_args()
    budgets = [int(b) for b in a.budgets.split(",")]
    opt = json.load(open(a.optuna))
    fstar = {f: s["fstar"] for f, s in opt["spaces"].items()}
    groups = {}  # (function, sampler) -> list of (best_at dict, suggest_ms list)
    for r in opt["runs"]:
        ba = {int(k): v for k, v in r["best_at"].items()}
        groups.setdefault((r["function"], "optuna:" + r["sampler"]), []).append((ba, r["suggest_ms"]))
    gang_samplers = []
    for path in a.gangway:
        for r in json.load(open(path))["runs"]:
            trace = np.minimum.accumulate(np.asarray(r["values"], dtype=float))
            ba = {b: float(trace[b - 1]) for b in budgets if b <= len(trace)}
            name = "gangway:" + r["sampler"]
            if name not in gang_samplers:
                gang_samplers.append(name)
            groups.setdefault((r["function"], name), []).append((ba, r["suggest_ms"]))
    order = gang_samplers + ["optuna:" + s for s in OPTUNA]
    out = []
    w = out.append
    stats = {}
    for f in FUNCTIONS:
        rows = [s for s in order if (f, s) in groups]
        if not any(s.startswith("gangway:") for s in rows):
            continue
        fs = fstar.get(f) or 0.0
        metric = "regret" if fstar.get(f) is not None else "best CV error"
        w("### %s (%s; median [25th - 75th percentile] over seeds)" % (f, metric))
        w("")
        w("| sampler | seeds | " + " | ".join("@%d" % b for b in budgets) + " | ms/suggest |")
        w("|---" * (len(budgets) + 3) + "|")
        for s in rows:
            rs = groups[(f, s)]
            cells = []
            for b in budgets:
                vals = [ba[b] - fs for ba, _ in rs if b in ba]
                if len(vals) == 0:
                    cells.append("-")
                    continue
                m, lo, hi = q(vals)
                stats[(f, s, b)] = (m, lo, hi)
                cells.append("%s [%s - %s]" % (g(m), g(lo), g(hi)))
            ms = float(np.mean([v for _, sm in rs for v in sm]))
            w("| %s | %d | %s | %.2f |" % (s, len(rs), " | ".join(cells), ms))
        w("")
    final = budgets[-1]
    bayes = [s for s in gang_samplers if s not in ("gangway:random", "gangway:sobol")]
    if bayes:
        w("### Score at @%d: median regret, bayesian vs Optuna TPE (default) and random" % final)
        w("")
        w("| function | " + " | ".join(bayes) + " | optuna:tpe | optuna:random | gangway:random |")
        w("|---" * (len(bayes) + 4) + "|")
        wins = {b: [0, 0, 0] for b in bayes}
        for f in FUNCTIONS:
            if not any((f, b, final) in stats for b in bayes):
                continue
            tpe = stats.get((f, "optuna:tpe", final), (float("nan"),))[0]
            rnd = stats.get((f, "optuna:random", final), (float("nan"),))[0]
            grnd = stats.get((f, "gangway:random", final), (float("nan"),))[0]
            cells = []
            for b in bayes:
                m = stats.get((f, b, final), (float("nan"),))[0]
                beat = m < tpe
                wins[b][0] += beat
                wins[b][1] += 1
                wins[b][2] += m > min(rnd, grnd) if not np.isnan(grnd) else m > rnd
                cells.append("%s%s" % (g(m), " (beats TPE)" if beat else ""))
            w("| %s | %s | %s | %s | %s |" % (f, " | ".join(cells), g(tpe), g(rnd), g(grnd)))
        w("")
        for b in bayes:
            w("%s: beats TPE's median on %d of %d functions; worse than random search on %d."
              % (b, wins[b][0], wins[b][1], wins[b][2]))
        w("")
    text = "\n".join(out)
    print(text)
    if a.md:
        open(a.md, "w").write(text + "\n")


if __name__ == "__main__":
    sys.exit(main() or 0)
