#!/usr/bin/env bash
# How much one run of a small batch varies: the tables of bench-policies.sh hold one run per
# cell, and a batch of 10 or 100 ends with its slowest answer, which the emulator's per-request
# jitter (0-40 ms on every trip) and the order a burst reaches the forwarding unit move by tens of
# milliseconds. This runs chosen cells REPS times (seeds 1..REPS) against the embedded emulator
# at time scale 1, every run of a cell from the same full calibration (as bench-policies.sh
# does), and writes the spread: results/bench-spread.{json,md}.
#
# Environment: CELLS (topology:N:policy ...), REPS, SEED_CAL (the calibration's seed);
# REPORT_ONLY=1 rewrites the table from results/bench-spread.json.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "bench-spread.sh needs jq" >&2; exit 1; }

CELLS=${CELLS:-"default:10:auto default:10:per-region-queues default:10:least-outstanding \
default:10:region-rr default:10:machine-rr default:10:p2c-ewma \
no-ceiling:100:auto no-ceiling:100:p2c-ewma no-ceiling:100:weighted"}
REPS=${REPS:-8}
SEED_CAL=${SEED_CAL:-1}
RUNS=results/runs/bench-spread
LINES="$RUNS/results.jsonl"

if [ -z "${REPORT_ONLY:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/cmdunit
  mkdir -p "$RUNS"
  : >"$LINES"
  MACHINE=$(jq -nc --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson cores "$(nproc)" \
    --argjson load "$(cut -d' ' -f1 /proc/loadavg)" '{written_at: $at, cores: $cores, load_at_start: $load}')
  for topo in $(for c in $CELLS; do echo "${c%%:*}"; done | sort -u); do
    cal="$RUNS/$topo.calibration.json"
    $BIN 200 --emulate --awake --topology "topologies/$topo.toml" --policy fastest \
      --seed "$SEED_CAL" --quiet --format json --recalibrate --calibration "$cal" --no-cache \
      --no-charts --out "$RUNS/$topo-calibrate" >/dev/null
    for c in $CELLS; do
      [ "${c%%:*}" = "$topo" ] || continue
      rest=${c#*:}; n=${rest%%:*}; p=${rest#*:}
      for seed in $(seq 1 "$REPS"); do
        $BIN "$n" --emulate --awake --topology "topologies/$topo.toml" --policy "$p" \
          --seed "$seed" --quiet --format json --calibration "$cal" --no-cache --no-charts \
          --out "$RUNS/$topo/$n-$p-$seed" \
          | jq -c --arg topo "$topo" --arg p "$p" --argjson seed "$seed" --argjson machine "$MACHINE" \
              '{topology: $topo, n, policy: $p, seed: $seed, ok, makespan_ms, lower_bound_ms} + $machine' \
          | tee -a "$LINES" | jq -r '"\(.topology) N=\(.n) \(.policy) seed \(.seed): \(.makespan_ms | round) ms"'
      done
    done
  done
  jq -s '.' "$LINES" >results/bench-spread.json
fi

jq -r '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  "Written \(.[0].written_at // "-") on \(.[0].cores // "-") cores, load \(.[0].load_at_start // "-") at the start; makespans in model ms, each run of a cell from the same calibration.\n",
  (
  "| Topology | N | Policy | runs | min | median | max | max / min | bound |",
  "|:---|---:|:---|---:|---:|---:|---:|---:|---:|",
  (group_by([.topology, .n, .policy])
   | sort_by(.[0].topology, .[0].n)[]
   | (map(.makespan_ms)) as $m
   | "| \(.[0].topology) | \(.[0].n) | `\(.[0].policy)` | \(length) | \($m | min | round) ms | \($m | median | round) ms | \($m | max | round) ms | \(($m | max) / ($m | min) * 100 | round / 100) | \(.[0].lower_bound_ms | round) ms |"))
' results/bench-spread.json >results/bench-spread.md
cat results/bench-spread.md
