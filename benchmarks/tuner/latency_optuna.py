#!/usr/bin/python3
"""Optuna's suggestion latency with tuner_bench's protocol, for the table in
README.md section 1 (run both with latency.sh, so they share the machine's
state).

Six parameters on [0, 1], a history of n Hartmann-6 values at random points,
one untimed step, then `iterations` steps: ask with all six parameters
(timed: wall and this thread's CPU time) and tell (not timed), so the
history grows by one per step, as in tuner_bench. Debian's Optuna is 3.1,
which has no GP sampler (GPSampler arrived in 3.6; BoTorchSampler needs
BoTorch, which Debian does not package): TPE, multivariate TPE, CMA-ES and
random are timed.
"""
import argparse
import json
import random
import time

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from scheduler_optuna import hartmann6  # the same Hartmann-6 as functions.h

DISTS = {f"x{i}": FloatDistribution(0.0, 1.0) for i in range(6)}


def sampler(name):
    s = optuna.samplers
    return {
        "tpe": lambda: s.TPESampler(seed=1),
        "multivariate-tpe": lambda: s.TPESampler(multivariate=True, seed=1),
        "cmaes": lambda: s.CmaEsSampler(seed=1),
        "random": lambda: s.RandomSampler(seed=1),
    }[name]()


def step(study):
    t0, c0 = time.perf_counter(), time.thread_time()
    trial = study.ask(DISTS)
    x = [trial.params[f"x{i}"] for i in range(6)]
    wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
    study.tell(trial, hartmann6(x))
    return wall * 1e3, cpu * 1e3


def run(name, n, iterations):
    study = optuna.create_study(sampler=sampler(name))
    rng = random.Random(5)
    for _ in range(n):
        x = [rng.random() for _ in range(6)]
        study.add_trial(create_trial(params={f"x{i}": v for i, v in enumerate(x)},
                                     distributions=DISTS, value=hartmann6(x)))
    step(study)
    times = [step(study) for _ in range(iterations)]
    walls = [w for w, _ in times]
    cpus = [c for _, c in times]
    return {"sampler": name, "observations": n, "iterations": iterations,
            "mean_ms": sum(walls) / len(walls), "mean_cpu_ms": sum(cpus) / len(cpus),
            "max_ms": max(walls), "max_cpu_ms": max(cpus)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samplers", default="tpe,multivariate-tpe,cmaes,random")
    ap.add_argument("--observations", default="50,200,1000")
    ap.add_argument("--iterations", type=int, default=32)
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"optuna {optuna.__version__}")
    for name in args.samplers.split(","):
        for n in (int(v) for v in args.observations.split(",")):
            r = run(name, n, args.iterations)
            if args.json:
                print(json.dumps(r), flush=True)
            else:
                print(f"optuna {name:17s} n={n:5d}  mean {r['mean_ms']:8.2f} ms wall "
                      f"{r['mean_cpu_ms']:8.2f} ms CPU  max {r['max_ms']:8.2f} / "
                      f"{r['max_cpu_ms']:8.2f} ms", flush=True)


if __name__ == "__main__":
    main()
