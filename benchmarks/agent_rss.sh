#!/usr/bin/env bash
# Idle RSS of one gangway-agent connected to a coordinator, after it has
# registered and heartbeated for a few seconds.
#   benchmarks/agent_rss.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
state=$(mktemp -d)
trap 'kill $coord $agent 2>/dev/null || true; wait 2>/dev/null; rm -rf "$state"' EXIT
"$build/coordinator/gangway-coordinator" --listen 127.0.0.1:0 --state "$state/c" --log-level warn > "$state/c.out" &
coord=$!
for _ in $(seq 100); do grep -q listening "$state/c.out" 2>/dev/null && break; sleep 0.05; done
addr=$(awk '/listening/ {print $2}' "$state/c.out")
"$build/agent/gangway-agent" --coordinator "$addr" --name rss-node --state "$state/a" --log-level warn &
agent=$!
for _ in $(seq 100); do
  "$build/cli/gangway" --coordinator "$addr" nodes 2>/dev/null | grep -q 'rss-node *Ready' && break
  sleep 0.05
done
sleep 3
echo "agent $(grep VmRSS /proc/$agent/status)"
echo "agent $(grep VmHWM /proc/$agent/status)"
echo "agent $(grep Threads /proc/$agent/status)"
