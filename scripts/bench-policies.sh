#!/usr/bin/env bash
# Every policy's makespan and efficiency (lower bound / makespan) for
# N in {1, 10, 100, 1000, 5000}, with the default topology (the forwarding unit's ~17 ms handling
# stage is the limit) and with topologies/no-ceiling.toml (no handling stage: the machines are the
# limit), against the embedded emulator. Writes results/bench-policies.{json,md} and prints the
# tables. Targets: auto within 10% of the bound at every N; per-region-queues and
# least-outstanding within 10% for N >= 100.
#
# Time scale (model ms per wall ms): 1.0, real time. On a loaded 2-core box a burst of ~100
# simultaneous requests costs each one 30-90 wall ms of scheduling on top of the model (measured
# as client latency - response_time, 13 ms in the model): at scale 1 that is a few percent of a
# 900 ms batch, at scale 0.1 most of it. And the calibration's service-time estimates, which the
# bound is computed from, ran ~0.5 ms high at scale 0.5 (asia 22.5-22.6 ms against a true 22.0):
# over 1000 jobs a machine that is a 500 ms error, enough to put a run "above" its bound.
# Override with SCALE_SMALL (N < 5000) / SCALE_LARGE (N = 5000).
#
# Every policy of a topology plans with the same calibration: one full calibration per topology
# and scale (a 200-request batch with --recalibrate), reused by every run while fresh, so the
# policies are compared on the same picture of the system.
#
# Environment: NS (batch sizes), POLICIES, TOPOLOGIES, SCALE_SMALL, SCALE_LARGE, SEED;
# REPORT_ONLY=1 rewrites the tables from results/bench-policies.json without running anything;
# MERGE=1 keeps the rows of results/bench-policies.json for policies not in POLICIES (rerun a
# policy after changing it; its runs then have their own calibration, said in the table).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "bench-policies.sh needs jq" >&2; exit 1; }

NS=${NS:-"1 10 100 1000 5000"}
POLICIES=${POLICIES:-}
TOPOLOGIES=${TOPOLOGIES:-"default no-ceiling"}
SCALE_SMALL=${SCALE_SMALL:-1.0}
SCALE_LARGE=${SCALE_LARGE:-1.0}
SEED=${SEED:-1}
RUNS=results/runs/bench-policies
mkdir -p "$RUNS" results
LINES="$RUNS/results.jsonl"

if [ -z "${REPORT_ONLY:-}" ]; then
cargo build --release --quiet
BIN=target/release/cmdunit
# Every policy the binary lists, in its order (the same list sweep.sh runs).
[ -n "$POLICIES" ] || POLICIES=$($BIN policies | awk '{print $1}' | tr '\n' ' ')
: >"$LINES"
scale_for() { if [ "$1" -ge 5000 ]; then echo "$SCALE_LARGE"; else echo "$SCALE_SMALL"; fi; }

for topo in $TOPOLOGIES; do
  for n in $NS; do
    scale=$(scale_for "$n")
    cal="$RUNS/$topo-scale-$scale.calibration.json"
    # One full calibration per topology and scale, refreshed when a block starts.
    $BIN 200 --emulate --awake --time-scale "$scale" --topology "topologies/$topo.toml" \
      --policy fastest --seed "$SEED" --quiet --format json --recalibrate --calibration "$cal" --no-cache \
      --out "$RUNS/$topo/calibrate-$scale" >/dev/null
    for p in $POLICIES; do
      out="$RUNS/$topo/$n-$p"
      json=$($BIN "$n" --emulate --awake --time-scale "$scale" --topology "topologies/$topo.toml" \
        --policy "$p" --seed "$SEED" --quiet --format json --calibration "$cal" --no-cache --out "$out")
      echo "$json" | jq -c --arg topo "$topo" --arg asked "$p" --argjson scale "$scale" '{
          topology: $topo, n, policy: $asked, ran: .policy, ok, failed,
          makespan_ms, lower_bound_ms, efficiency, predicted_makespan_ms, time_scale: $scale, reason
        }' | tee -a "$LINES" | jq -r '"\(.topology) N=\(.n) \(.policy): \(.makespan_ms|round) ms, efficiency \(.efficiency*1000|round/1000)"'
    done
  done
done

if [ -n "${MERGE:-}" ] && [ -f results/bench-policies.json ]; then
  jq -s --slurpfile old results/bench-policies.json \
    '. as $new | ($new | map(.policy) | unique) as $rerun
     | [$old[0][] | select(.policy as $p | $rerun | index($p) | not)] + map(. + {rerun: true})' \
    "$LINES" >results/bench-policies.json.tmp
  mv results/bench-policies.json.tmp results/bench-policies.json
else
  jq -s '.' "$LINES" >results/bench-policies.json
fi
fi
ALL_POLICIES=$(target/release/cmdunit policies 2>/dev/null | awk '{print $1}' | tr '\n' ' ')
[ -n "$ALL_POLICIES" ] || ALL_POLICIES=$(jq -r '[.[].policy] | unique | join(" ")' results/bench-policies.json)

# The tables: one per topology, a row per policy, "makespan ms (efficiency)" per N.
jq -r --arg ns "$NS" --arg policies "$ALL_POLICIES" '
  ($ns | split(" ") | map(select(length > 0) | tonumber)) as $ns
  | ($policies | split(" ") | map(select(length > 0))) as $order
  | group_by(.topology)[] as $g
  | $g[0].topology as $t
  | "### Topology `\($t)`\n",
    "| Policy | " + ($ns | map("N = \(.)") | join(" | ")) + " |",
    "|:---|" + ($ns | map("---:") | join("|")) + "|",
    ($g | group_by(.policy) | sort_by(.[0].policy as $p | $order | index($p))[] as $rows
      | "| `\($rows[0].policy)`\(if $rows[0].rerun then " (rerun)" else "" end) | "
        + ($ns | map(. as $n | ($rows[] | select(.n == $n)) as $r
            | "\($r.makespan_ms | round) ms (\($r.efficiency * 1000 | round / 10) %)"
              + (if $r.ok < $r.n then ", \($r.n - $r.ok) failed" else "" end)) | join(" | "))
        + " |"),
    "| auto ran | " + ($ns | map(. as $n | [$g[] | select(.policy == "auto" and .n == $n)][0].ran // "-" ) | join(" | ")) + " |",
    "| lower bound | " + ($ns | map(. as $n | [$g[] | select(.n == $n)][0].lower_bound_ms | round | "\(.) ms") | join(" | ")) + " |",
    (if [$g[] | select(.rerun)] | length > 0 then "\n(rerun): measured again after a change to that policy, each N with its own fresh calibration (the bound shown is the first row'"'"'s)." else empty end),
    ""
' results/bench-policies.json >results/bench-policies.md

# The targets, checked on what was measured.
jq -r '
  def target(p; from): [.[] | select(.policy == p and .n >= from)]
    | . as $runs | map(select(.efficiency < 0.9 or .ok < .n)) as $miss
    | if ($runs | length) == 0 then "- `\(p)`: not measured"
      elif ($miss | length) == 0 then "- `\(p)` (N >= \(from)): met, efficiency >= 0.90 in every run"
      else "- `\(p)` (N >= \(from)): NOT met: " + ($miss | map("\(.topology) N=\(.n) \(.efficiency * 100 | round) %") | join(", ")) end;
  "Targets (efficiency = lower bound / makespan >= 0.90, all ok):",
  target("auto"; 1), target("per-region-queues"; 100), target("least-outstanding"; 100),
  "",
  "Runs faster than their bound (efficiency > 100 %, the bound being computed from the run'"'"'s own calibration): "
    + ([.[] | select(.efficiency > 1)] | if length == 0 then "none"
       else map("\(.topology) N=\(.n) `\(.policy)` \(.efficiency * 1000 | round / 10) %") | join(", ") end)
' results/bench-policies.json >>results/bench-policies.md

cat results/bench-policies.md
