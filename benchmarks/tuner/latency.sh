#!/usr/bin/env bash
# Suggestion latency, gangway's samplers (tuner_bench) and Optuna's
# (latency_optuna.py) in one run, for README.md section 1.
#   BUILD_DIR=build scripts/build tuner_bench && benchmarks/tuner/latency.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
date -u +"%Y-%m-%d %H:%M UTC"; uptime
"${BUILD_DIR:-build}/benchmarks/tuner/tuner_bench" 2>&1 | grep -E "^(BM_|Load)"
/usr/bin/python3 benchmarks/tuner/latency_optuna.py "$@"
uptime
