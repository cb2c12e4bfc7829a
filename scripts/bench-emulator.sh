#!/usr/bin/env bash
# Benchmark of the emulator itself . Prints the figures and writes
# results/bench-emulator.json.
#  1. Throughput of one forwarding unit with the no-delay topology (every modelled duration zero,
#     so the figure is the implementation's own speed; each request still opens a new connection
#     to a worker, as the original did), 64 keep-alive connections, wrk.
#  2. Memory (VmRSS / VmHWM of the `cmdunit serve` process) at 1000 concurrent connections:
#     a) 1000 idle keep-alive connections that each got an answer (no-delay topology);
#     b) 1000 requests in flight at once (default topology, machines awake, time scale 1).
# Targets: >= 5,000 requests/s and < 100 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10}
OUT=results/bench-emulator.json

if ! command -v wrk >/dev/null 2>&1; then
    apt-get update && apt-get install -y wrk
fi
cargo build --release --quiet
BIN=target/release/cmdunit
mkdir -p results
ulimit -n "$(ulimit -Hn)"

PID=""
HOLDER=""
cleanup() {
    [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null || true
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

# start_serve ARGS...: runs `cmdunit serve --port 0 ARGS`, sets PID and URL (first unit).
start_serve() {
    local log
    log=$(mktemp)
    "$BIN" serve --port 0 "$@" >"$log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do grep -q "Ctrl-C" "$log" && break; sleep 0.1; done
    URL=$(grep -m1 "forwarding unit" "$log" | grep -o 'http://[0-9.:]*')
    [ -n "$URL" ] || { cat "$log"; echo "serve did not start" >&2; exit 1; }
}
stop_serve() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
status_n() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }

echo "== host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared machine)"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

# 1. Throughput.
start_serve --topology topologies/no-delay.toml --awake
IDLE_RSS_KB=$(status_kb VmRSS)
wrk -t2 -c64 -d2s "$URL/work" >/dev/null # warm-up
WRK=$(wrk -t2 -c64 -d"${DURATION}s" --latency "$URL/work")
echo "$WRK"
RPS=$(echo "$WRK" | awk '/Requests\/sec/ {print $2}')
P50=$(echo "$WRK" | awk '$1 == "50%" {print $2}')
P99=$(echo "$WRK" | awk '$1 == "99%" {print $2}')
NON2XX=$(echo "$WRK" | awk '/Non-2xx/ {print $NF}')
SOCKERR=$(echo "$WRK" | awk '/Socket errors/ {print $0}')
STATS=$(curl -s "$URL/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["served"], s["failed"])')
stop_serve

# 2a. Memory, 1000 idle keep-alive connections.
start_serve --topology topologies/no-delay.toml --awake
HOLD_LOG=$(mktemp)
python3 scripts/hold-connections.py "${URL#http://}" 1000 answered 30 >"$HOLD_LOG" &
HOLDER=$!
for _ in $(seq 300); do grep -q ready "$HOLD_LOG" && break; sleep 0.1; done
sleep 0.5
IDLE_HELD=$(cat "$HOLD_LOG")
KA_RSS_KB=$(status_kb VmRSS); KA_HWM_KB=$(status_kb VmHWM); KA_THREADS=$(status_n Threads)
kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; HOLDER=""
stop_serve

# 2b. Memory, 1000 requests in flight (waiting in the forwarding unit's stage or at a worker).
start_serve --awake --time-scale 1
python3 scripts/hold-connections.py "${URL#http://}" 1000 inflight 30 >"$HOLD_LOG" &
HOLDER=$!
for _ in $(seq 300); do grep -q ready "$HOLD_LOG" && break; sleep 0.1; done
sleep 2
INFLIGHT_HELD=$(cat "$HOLD_LOG")
IF_RSS_KB=$(status_kb VmRSS); IF_HWM_KB=$(status_kb VmHWM); IF_THREADS=$(status_n Threads)
IF_OPEN=$(curl -s --max-time 5 "$URL/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["connections"]["open"], s["in_flight"])' || echo "? ?")
kill "$HOLDER" 2>/dev/null || true; wait "$HOLDER" 2>/dev/null || true; HOLDER=""
stop_serve

python3 - "$OUT" <<PY
import json, sys
mb = lambda kb: round(int(kb) / 1024, 1)
r = {
    "host": {"cores": $(nproc), "load_average_1m_before": float("$LOAD_BEFORE")},
    "throughput": {
        "topology": "topologies/no-delay.toml",
        "tool": "wrk -t2 -c64 -d${DURATION}s (keep-alive)",
        "requests_per_s": float("$RPS"),
        "latency_p50": "$P50", "latency_p99": "$P99",
        "non_2xx": int("${NON2XX:-0}"), "socket_errors": "$SOCKERR".strip(),
        "served_failed_per_stats": "$STATS",
        "target_requests_per_s": 5000,
    },
    "memory": {
        "idle_rss_mb": mb("$IDLE_RSS_KB"),
        "keepalive_1000": {"holder": "$IDLE_HELD", "rss_mb": mb("$KA_RSS_KB"),
                            "hwm_mb": mb("$KA_HWM_KB"), "threads": int("$KA_THREADS")},
        "inflight_1000": {"holder": "$INFLIGHT_HELD", "rss_mb": mb("$IF_RSS_KB"),
                           "hwm_mb": mb("$IF_HWM_KB"), "threads": int("$IF_THREADS"),
                           "open_and_in_flight_per_stats": "$IF_OPEN"},
        "target_mb": 100,
    },
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
t, m = r["throughput"], r["memory"]
print()
print(f"throughput (no-delay, 64 keep-alive connections): {t['requests_per_s']:.0f} requests/s "
      f"(p50 {t['latency_p50']}, p99 {t['latency_p99']}; target >= 5000)")
print(f"memory, idle: {m['idle_rss_mb']} MB RSS")
print(f"memory, 1000 keep-alive connections: {m['keepalive_1000']['rss_mb']} MB RSS, "
      f"{m['keepalive_1000']['hwm_mb']} MB peak, {m['keepalive_1000']['threads']} threads ({m['keepalive_1000']['holder']})")
print(f"memory, 1000 requests in flight: {m['inflight_1000']['rss_mb']} MB RSS, "
      f"{m['inflight_1000']['hwm_mb']} MB peak, {m['inflight_1000']['threads']} threads ({m['inflight_1000']['holder']}; "
      f"open, in flight per /stats: {m['inflight_1000']['open_and_in_flight_per_stats']}; target < 100 MB)")
print(f"written to {sys.argv[1]}")
PY
