#!/usr/bin/env bash
# The one command that regenerates everything under results/:
#   1. scripts/sweep.sh: every policy × N × repetition on the default and no-ceiling systems,
#      the fault comparison (slow-machine, machine-down), K forwarding units, and the time-scale
#      validation (N = 1000 per-region-queues at scale 1 and at the sweep's scale);
#   2. cmdunit limits --emulate: the system's limits (results/limits/);
#   3. cmdunit report: results/charts/, results/REPORT.md, results/report.pdf.
# Release build. Resumable: finished runs and an existing limits.json are kept; FRESH=1 starts
# over (removes results/sweep, scale, timescale, limits, charts). Settings of the sweep pass
# through the environment (see scripts/sweep.sh); LIMITS_SCALE sets the limits' time scale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/cmdunit
LIMITS_SCALE=${LIMITS_SCALE:-0.5}
if [[ "${FRESH:-0}" == 1 ]]; then
    rm -rf results/sweep results/scale results/timescale results/limits results/charts
fi
started=$(date +%s)
CMDUNIT=$BIN scripts/sweep.sh
if [[ ! -f results/limits/limits.json ]]; then
    echo "== limits (time scale $LIMITS_SCALE)"
    "$BIN" limits --emulate --time-scale "$LIMITS_SCALE" --out results/limits >/dev/null
fi
echo "== report"
"$BIN" report --from results
echo "report.sh: done in $(($(date +%s) - started)) s"
