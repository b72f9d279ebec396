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

With --versus, only the like-for-like table instead: each gangway sampler
beside Optuna's implementation of the same algorithm (tpe / tpe, multivariate-
tpe / tpe_mv, cmaes / cmaes) at each budget, the seeds both have, medians,
and a one-sided Mann-Whitney U test of "gangway's regret is larger"
(normal approximation with tie and continuity correction, as scipy's
mannwhitneyu(alternative="greater", method="asymptotic")).

The default --optuna path is ../shared/bench/ relative to the repository
root.
"""

import argparse
import gzip
import json
import os
import sys

import math

import numpy as np

PUBLIC = ["branin", "hartmann3", "hartmann6", "rosenbrock4", "ackley5", "levy5", "digits_svc"]
HELD_OUT = ["styblinski4", "michalewicz5", "camel6", "ackley5_offset", "rosenbrock6_offset",
            "diabetes_svr", "shekel4", "levy8_offset", "rastrigin5_offset", "griewank6_offset",
            "powell8_offset"]
FUNCTIONS = PUBLIC + HELD_OUT
# Held-out f* (no Optuna baseline for these).
HELD_OUT_FSTAR = {"styblinski4": -39.16616570377142 * 4, "michalewicz5": -4.687658179,
                  "camel6": -1.0316284534898774, "ackley5_offset": 0.0,
                  "rosenbrock6_offset": 0.0, "shekel4": -10.53644315348353,
                  "levy8_offset": 0.0, "rastrigin5_offset": 0.0, "griewank6_offset": 0.0,
                  "powell8_offset": 0.0}
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


# gangway algorithm -> Optuna sampler of the same algorithm.
SAME = {"tpe": "tpe", "multivariate-tpe": "tpe_mv", "cmaes": "cmaes"}


def mann_whitney_greater(x, y):
    """One-sided p of "x tends to be larger than y": U statistic of x, p."""
    n1, n2 = len(x), len(y)
    allv = np.concatenate([np.asarray(x, float), np.asarray(y, float)])
    order = np.argsort(allv, kind="stable")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    ties = 0.0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    u1 = float(np.sum(ranks[:n1]) - n1 * (n1 + 1) / 2)
    n = n1 + n2
    mu = n1 * n2 / 2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sd == 0:
        return u1, 1.0
    z = (u1 - mu - 0.5) / sd
    return u1, 0.5 * math.erfc(z / math.sqrt(2))


def versus(groups, fstar, budgets, w):
    """Like-for-like: gangway's sampler against Optuna's of the same name."""
    w("Cell: gangway median [25th - 75th] / Optuna median [25th - 75th]; p: one-sided "
      "Mann-Whitney U of \"gangway's regret is larger\" (small p: gangway worse).")
    w("")
    for gs, os_ in SAME.items():
        if not any(k[1] == "gangway:" + gs for k in groups):
            continue
        w("#### %s (gangway) vs %s (Optuna)" % (gs, os_))
        w("")
        w("| function | seeds | " + " | ".join("@%d | p" % b for b in budgets) + " |")
        w("|---" * (2 * len(budgets) + 2) + "|")
        for f in FUNCTIONS:
            ga, op = groups.get((f, "gangway:" + gs)), groups.get((f, "optuna:" + os_))
            if not ga or not op:
                continue
            fs = fstar.get(f) or 0.0
            cells = []
            for b in budgets:
                x = [ba[b] - fs for ba, _ in ga if b in ba]
                y = [ba[b] - fs for ba, _ in op if b in ba]
                if not x or not y:
                    cells.append("- | -")
                    continue
                mx, lx, hx = q(x)
                my, ly, hy = q(y)
                _, pv = mann_whitney_greater(x, y)
                mark = "**" if pv < 0.05 else ""
                cells.append("%s [%s - %s] / %s [%s - %s] | %s%.2f%s" % (
                    g(mx), g(lx), g(hx), g(my), g(ly), g(hy), mark, pv, mark))
            w("| %s | %d / %d | %s |" % (f, len(ga), len(op), " | ".join(cells)))
        w("")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gangway", nargs="+")
    p.add_argument("--optuna", default=DEFAULT_OPTUNA, help="Optuna results; several: comma-separated")
    p.add_argument("--budgets", default="10,25,50,100")
    p.add_argument("--optuna-more", help="Optuna results (optuna_baseline.py run) for budgets the "
                   "main file lacks, e.g. @100; used per (function, sampler, seed)")
    p.add_argument("--md", help="also write the tables to this file")
    p.add_argument("--versus", action="store_true",
                   help="only each gangway sampler against Optuna's same algorithm, with a "
                   "one-sided Mann-Whitney U test")
    a = p.parse_args()
    budgets = [int(b) for b in a.budgets.split(",")]
    # Several Optuna files (comma-separated, e.g. seeds split over two
    # processes) are one set of runs.
    paths = a.optuna.split(",")
    opt = load(paths[0])
    for path in paths[1:]:
        opt["runs"] = opt["runs"] + load(path)["runs"]
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
    if a.versus:
        versus(groups, fstar, budgets, w)
        text = "\n".join(out)
        print(text)
        if a.md:
            open(a.md, "w").write(text + "\n")
        return
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
