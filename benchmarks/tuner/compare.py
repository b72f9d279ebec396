#!/usr/bin/python3
"""Side-by-side table: gangway's samplers next to the Optuna baseline.

Reads gangway traces written by tuner_compare (one or more JSON files) and
Optuna's optuna_baseline_results.json, and prints, per function, the median
[25th - 75th percentile] over seeds of simple regret (best CV error for
digits_svc) after 10/25/50/100 evaluations, plus mean ms per suggestion.
Then, per budget, each model-based gangway sampler against the best Optuna
sampler at that budget (lowest median; the recorded baseline stops at 50
evaluations: --optuna-more adds a fresh optuna_baseline.py run for @100) and
against gangway's random search; and the share of proposed coordinates
that sit exactly on a bound of the box, after the initial design.

Quantiles as in optuna_baseline.py (numpy median / percentile, linear).

  /usr/bin/python3 compare.py gangway_results.json [more.json ...] \
      [--optuna ../shared/bench/optuna_baseline_results.json] [--md out.md]

The default --optuna path is ../shared/bench/ relative to the repository
root.
"""

import argparse
import gzip
import json
import os
import sys

import numpy as np

PUBLIC = ["branin", "hartmann3", "hartmann6", "rosenbrock4", "ackley5", "levy5", "digits_svc"]
HELD_OUT = ["styblinski4", "michalewicz5", "camel6", "ackley5_offset", "rosenbrock6_offset",
            "diabetes_svr", "shekel4", "levy8_offset"]
FUNCTIONS = PUBLIC + HELD_OUT
# Held-out f* (no Optuna baseline for these).
HELD_OUT_FSTAR = {"styblinski4": -39.16616570377142 * 4, "michalewicz5": -4.687658179,
                  "camel6": -1.0316284534898774, "ackley5_offset": 0.0,
                  "rosenbrock6_offset": 0.0, "shekel4": -10.53644315348353,
                  "levy8_offset": 0.0}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OPTUNA = os.path.join(os.path.dirname(REPO), "shared", "bench", "optuna_baseline_results.json")
OPTUNA = ["random", "tpe", "tpe_mv", "cmaes", "qmc"]


def load(path):
    """JSON, gzipped when the name ends in .gz."""
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
        return json.load(f)


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
    p.add_argument("--optuna", default=DEFAULT_OPTUNA)
    p.add_argument("--budgets", default="10,25,50,100")
    p.add_argument("--optuna-more", help="Optuna results (optuna_baseline.py run) for budgets the "
                   "main file lacks, e.g. @100; used per (function, sampler, seed)")
    p.add_argument("--md", help="also write the tables to this file")
    a = p.parse_args()
    budgets = [int(b) for b in a.budgets.split(",")]
    opt = load(a.optuna)
    fstar = {f: s["fstar"] for f, s in opt["spaces"].items()}
    fstar.update(HELD_OUT_FSTAR)
    edges = {}  # (function, sampler) -> [coordinates on a bound, coordinates]
    groups = {}  # (function, sampler) -> list of (best_at dict, suggest_ms list)
    more = {}
    if a.optuna_more:
        for r in load(a.optuna_more)["runs"]:
            more[(r["function"], r["sampler"], r["seed"])] = r["best_at"]
    for r in opt["runs"]:
        ba = {int(k): v for k, v in r["best_at"].items()}
        for k, v in more.get((r["function"], r["sampler"], r["seed"]), {}).items():
            ba.setdefault(int(k), v)
        groups.setdefault((r["function"], "optuna:" + r["sampler"]), []).append((ba, r["suggest_ms"]))
    gang_samplers = []
    for path in a.gangway:
        for r in load(path)["runs"]:
            trace = np.minimum.accumulate(np.asarray(r["values"], dtype=float))
            ba = {b: float(trace[b - 1]) for b in budgets if b <= len(trace)}
            name = "gangway:" + r["sampler"]
            if name not in gang_samplers:
                gang_samplers.append(name)
            groups.setdefault((r["function"], name), []).append((ba, r["suggest_ms"]))
            if "unit" in r:
                u = np.asarray(r["unit"][r.get("model_from", 0):], dtype=float)
                e = edges.setdefault((r["function"], name), [0, 0, 0])
                e[0] += int(np.sum((u <= 1e-9) | (u >= 1 - 1e-9)))
                e[1] += u.size
                e[2] += int(np.sum((u <= 0.01) | (u >= 0.99)))
    order = gang_samplers + ["optuna:" + s for s in OPTUNA]
    out = []
    w = out.append
    stats = {}
    for f in FUNCTIONS:
        rows = [s for s in order if (f, s) in groups]
        if not any(s.startswith("gangway:") for s in rows):
            continue
        fs = fstar.get(f) or 0.0
        metric = "regret" if fstar.get(f) is not None else (
            "best CV MSE" if f == "diabetes_svr" else "best CV error")
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
    bayes = [s for s in gang_samplers if s not in ("gangway:random", "gangway:sobol")]
    for b in bayes:
        w("### %s at each budget: median regret vs the best Optuna sampler and gangway random" % b)
        w("")
        w("Cell: gangway median / best Optuna median (sampler) / gangway random median; "
          "`=` no worse than the best Optuna sampler, `<` strictly better, `>` worse, "
          "`!` worse than gangway random.")
        w("")
        w("| function | " + " | ".join("@%d" % x for x in budgets) + " |")
        w("|---" * (len(budgets) + 1) + "|")
        tally = {x: [0, 0, 0, 0] for x in budgets}  # no worse, strictly better, worse than random, n
        for f in FUNCTIONS:
            if not any((f, b, x) in stats for x in budgets):
                continue
            cells = []
            for x in budgets:
                if (f, b, x) not in stats:
                    cells.append("-")
                    continue
                m = stats[(f, b, x)][0]
                opts = [(stats[(f, "optuna:" + o, x)][0], o) for o in OPTUNA
                        if (f, "optuna:" + o, x) in stats]
                grnd = stats.get((f, "gangway:random", x), (float("nan"),))[0]
                mark = ""
                cell = g(m)
                t = tally[x]
                if opts:
                    bo, bname = min(opts)
                    mark = "<" if m < bo else ("=" if m == bo else ">")
                    t[0] += m <= bo
                    t[1] += m < bo
                    t[3] += 1
                    cell += " / %s (%s)" % (g(bo), bname)
                if not np.isnan(grnd):
                    cell += " / %s" % g(grnd)
                    if m > grnd:
                        mark += "!"
                        t[2] += 1
                cells.append("%s %s" % (mark, cell))
            w("| %s | %s |" % (f, " | ".join(cells)))
        w("")
        for x in budgets:
            t = tally[x]
            w("- @%d: no worse than the best Optuna sampler on %d of %d, strictly better on %d; "
              "worse than gangway random on %d." % (x, t[0], t[3], t[1], t[2]))
        w("")
    if edges:
        w("### Share of proposed coordinates on a bound of the box (after the initial design)")
        w("")
        w("Cell: exactly on a bound (within 1e-9 of the unit range) / within 1% of a bound "
          "(uniform sampling: 0% / 2%).")
        w("")
        w("| function | " + " | ".join(s for s in order if any((f, s) in edges for f in FUNCTIONS)) + " |")
        cols = [s for s in order if any((f, s) in edges for f in FUNCTIONS)]
        w("|---" * (len(cols) + 1) + "|")
        for f in FUNCTIONS:
            if not any((f, s) in edges for s in cols):
                continue
            cells = []
            for s_ in cols:
                e = edges.get((f, s_))
                cells.append("%.1f%% / %.1f%%" % (100.0 * e[0] / e[1], 100.0 * e[2] / e[1])
                             if e and e[1] else "-")
            w("| %s | %s |" % (f, " | ".join(cells)))
        w("")
    text = "\n".join(out)
    print(text)
    if a.md:
        open(a.md, "w").write(text + "\n")


if __name__ == "__main__":
    sys.exit(main() or 0)
