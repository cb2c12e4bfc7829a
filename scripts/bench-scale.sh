#!/usr/bin/env bash
# One command unit over K forwarding units. For N = 1000 and 5000 and K = 1, 2, 3, 5, 8
# emulated units over the same five workers (`--emulate --forwarders K`), runs the best policy
# (auto, which names what it ran) and prints makespan, throughput, efficiency against the lower
# bound, and which layer limits: the forwarding units (N passes of ~17 ms shared by K units) or
# the machines (five machines at ~22 ms each, behind 310-540 ms trips). Writes
# results/bench-scale.{json,md}.
# Acceptance: K = 5, N = 1000 at least 3.3x faster than K = 1 with all ok; efficiency never
# above 1 (the bound is respected, also at K = 8 where the machines are the limit).
#
# Time scale: 1.0 (why: see scripts/bench-policies.sh). Each measured run starts from what a
# first, unmeasured batch of 500 against the same system learned (a cache of its own, as a user's
# second run would), so the comparison over K is of a controller that knows the system.
# Environment: NS, KS, POLICY, SCALE_SMALL, SCALE_LARGE, SEED; REPORT_ONLY=1 rewrites the
# table from results/bench-scale.json without running anything.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v jq >/dev/null || { echo "bench-scale.sh needs jq" >&2; exit 1; }

NS=${NS:-"1000 5000"}
KS=${KS:-"1 2 3 5 8"}
POLICY=${POLICY:-auto}
SCALE_SMALL=${SCALE_SMALL:-1.0}
SCALE_LARGE=${SCALE_LARGE:-1.0}
SEED=${SEED:-1}
RUNS=results/runs/bench-scale
mkdir -p "$RUNS" results
LINES="$RUNS/results.jsonl"

if [ -z "${REPORT_ONLY:-}" ]; then
cargo build --release --quiet
BIN=target/release/cmdunit
: >"$LINES"
CACHE=$(mktemp -d -t bench-scale-cache.XXXXXX)
trap 'rm -rf "$CACHE"' EXIT
for n in $NS; do
  if [ "$n" -ge 5000 ]; then scale=$SCALE_LARGE; else scale=$SCALE_SMALL; fi
  for k in $KS; do
    XDG_CACHE_HOME=$CACHE $BIN 500 --emulate --awake --forwarders "$k" --time-scale "$scale" \
      --policy "$POLICY" --seed "$SEED" --quiet --format json --no-charts \
      --out "$RUNS/seed-$n-k$k" >/dev/null
    json=$(XDG_CACHE_HOME=$CACHE $BIN "$n" --emulate --awake --forwarders "$k" --time-scale "$scale" \
      --policy "$POLICY" --seed "$SEED" --quiet --format json --out "$RUNS/$n-k$k")
    echo "$json" | jq -c --argjson k "$k" --argjson scale "$scale" '{
        n, forwarders: $k, policy: .policy, ok, failed, makespan_ms, lower_bound_ms,
        machines_bound_ms, forwarders_bound_ms, efficiency,
        throughput_per_s: (.ok / .makespan_ms * 1000),
        limit: (if .forwarders_bound_ms >= .machines_bound_ms then "forwarding units" else "machines" end),
        per_forwarder: [.per_forwarder[]], calibration_ms, time_scale: $scale
      }' | tee -a "$LINES" | jq -r '"N=\(.n) K=\(.forwarders): \(.makespan_ms|round) ms, \(.throughput_per_s*10|round/10)/s, efficiency \(.efficiency*1000|round/1000), limit: \(.limit)"'
  done
done
jq -s '.' "$LINES" >results/bench-scale.json
fi

jq -r '
  . as $all
  | "| N | K | Policy ran | Ok | Makespan | Throughput | Lower bound | Efficiency | Speed-up vs K = 1 | Limit (bound) |",
  "|---:|---:|:---|---:|---:|---:|---:|---:|---:|:---|",
  (group_by(.n)[] as $g
    | ([$g[] | select(.forwarders == 1)][0].makespan_ms) as $one
    | $g[]
    | "| \(.n) | \(.forwarders) | `\(.policy)` | \(.ok)/\(.n) | \(.makespan_ms | round) ms | \(.throughput_per_s * 10 | round / 10)/s | \(.lower_bound_ms | round) ms | \(.efficiency * 1000 | round / 10) % | \(if $one then "\($one / .makespan_ms * 100 | round / 100)x" else "-" end) | \(.limit) |"),
  "",
  "Where the machines take over (first K whose forwarding-unit bound falls below the machines bound):",
  (group_by(.n)[] | "- N = \(.[0].n): " + ([.[] | select(.limit == "machines")]
    | if length == 0 then "not within the Ks measured"
      else min_by(.forwarders) | "K = \(.forwarders) (machines bound \(.machines_bound_ms | round) ms, forwarding units \(.forwarders_bound_ms | round) ms)" end)),
  "",
  "Acceptance:",
  ([.[] | select(.n == 1000)] as $r
    | ([$r[] | select(.forwarders == 1)][0]) as $k1 | ([$r[] | select(.forwarders == 5)][0]) as $k5
    | if $k1 and $k5 then
        "- K = 5 vs K = 1 at N = 1000: \($k1.makespan_ms / $k5.makespan_ms * 100 | round / 100)x faster (target >= 3.3x), \($k5.ok)/1000 ok: "
        + (if ($k1.makespan_ms / $k5.makespan_ms) >= 3.3 and $k5.ok == 1000 then "met" else "NOT met" end)
      else "- K = 5 vs K = 1 at N = 1000: not measured" end),
  ([.[] | select(.forwarders == 8)] as $k8
    | "- K = 8 no faster than the bound allows (efficiency <= 1): "
      + (if ($k8 | length) == 0 then "not measured"
         else ($k8 | map("N = \(.n) \(.efficiency * 1000 | round / 10) %") | join(", "))
           + (if ($k8 | map(select(.efficiency > 1)) | length) == 0 then ": met" else ": NOT met" end) end)),
  "- efficiency above 1 in any run: " + ([.[] | select(.efficiency > 1)]
    | if length == 0 then "none (max \(1000 * ([$all[] | .efficiency] | max) | round / 10) %)"
      else map("N = \(.n) K = \(.forwarders) \(.efficiency * 10000 | round / 100) %") | join(", ") end)
' results/bench-scale.json >results/bench-scale.md

cat results/bench-scale.md
