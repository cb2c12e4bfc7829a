#!/usr/bin/env bash
# Engine benchmark: how fast cmdunit itself sends requests and how much memory it needs, against
# a server that costs next to nothing (nginx-light answering every /work path with a fixed JSON,
# scripts/nginx/static.conf.template), with wrk on the same server as the reference.
#
# Usage: scripts/bench-engine.sh            (the full run: a few minutes, writes the figures)
#        BENCH_ENGINE_QUICK=1 scripts/bench-engine.sh   (smoke test, figures to a temp file)
#
# Steps, all in one run, each under a timeout:
#  1. wrk -t2 -c64 -d5s URL/work/us/0                      requests/s (the reference)
#  2. cmdunit 200000 --policy machine-rr -f URL ...        requests/s = N / wall s
#  3. cmdunit 200000 --policy auto ...                     same
#  4. cmdunit 1000000 (auto) under GNU time -f '%e %M'     peak RSS and wall
#  5. cmdunit 100000000 (auto), stopped after 10 s         RSS from /proc at 10 s, requests done
#                                                          by then (or its exit 2 message if it
#                                                          refuses such an N)
# Walls are measured from outside (date +%s.%N before the exec and after the exit), with every
# run's `--format json --quiet --no-charts --out TMP`. Prints a table with ratios to wrk and writes
# results/bench-engine.json (figures, nproc, load average at start, tool versions) and the same
# figures with the acceptance checks as results/bench-engine.md.
#
# Environment:
#   BENCH_ENGINE_QUICK=1     N 20000 / 20000 / 50000, wrk 2 s, the 10^8 run stopped after 3 s;
#                            output to a temp file unless BENCH_ENGINE_OUT is set
#   BENCH_ENGINE_OUT         output JSON (default results/bench-engine.json)
#   BENCH_ENGINE_N_RR, BENCH_ENGINE_N_AUTO, BENCH_ENGINE_N_BIG, BENCH_ENGINE_N_HUGE,
#   BENCH_ENGINE_WRK_SECS, BENCH_ENGINE_HUGE_SECS   override each figure above
#   BENCH_ENGINE_STEP_TIMEOUT   seconds per cmdunit step (default 900; quick 180)
#   BENCH_ENGINE_NGINX_PROCESSES  nginx worker processes (default 1: the client gets the other core)
#   CMDUNIT                  the binary (default target/release/cmdunit, built with cargo)
# Needs nginx-light, wrk and GNU time: installed with apt-get when run as root, else it says how.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/nginx/common.sh
. scripts/nginx/common.sh

QUICK=${BENCH_ENGINE_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    d_rr=20000 d_auto=20000 d_big=50000 d_wrk=2 d_huge_secs=3 d_timeout=180
else
    d_rr=200000 d_auto=200000 d_big=1000000 d_wrk=5 d_huge_secs=10 d_timeout=900
fi
N_RR=${BENCH_ENGINE_N_RR:-$d_rr}
N_AUTO=${BENCH_ENGINE_N_AUTO:-$d_auto}
N_BIG=${BENCH_ENGINE_N_BIG:-$d_big}
N_HUGE=${BENCH_ENGINE_N_HUGE:-100000000}
WRK_SECS=${BENCH_ENGINE_WRK_SECS:-$d_wrk}
HUGE_SECS=${BENCH_ENGINE_HUGE_SECS:-$d_huge_secs}
STEP_TIMEOUT=${BENCH_ENGINE_STEP_TIMEOUT:-$d_timeout}
PROCESSES=${BENCH_ENGINE_NGINX_PROCESSES:-1}
TMP=$(mktemp -d -t bench-engine.XXXXXX)
if [ -n "${BENCH_ENGINE_OUT:-}" ]; then
    OUT=$BENCH_ENGINE_OUT
elif [ "$QUICK" = 1 ]; then
    OUT=$TMP/bench-engine.json # a smoke test's figures are not results
else
    OUT=results/bench-engine.json
fi

HUGE_PID=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$HUGE_PID" ]; then
        kill -KILL "$HUGE_PID" 2>/dev/null || true
        wait "$HUGE_PID" 2>/dev/null || true
    fi
    nginx_stop
    if [ "$QUICK" = 1 ] && [ -z "${BENCH_ENGINE_OUT:-}" ] && [ -f "$OUT" ]; then
        echo "bench-engine: quick run, figures not kept (set BENCH_ENGINE_OUT to keep them)" >&2
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench-engine: $*" >&2
    exit 1
}

# Tools: nginx-light, wrk, GNU time (not the shell keyword), python3 for the JSON.
TIME_BIN=$(type -P time || true)
missing=()
nginx_find || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -n "$TIME_BIN" ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bench-engine: installing ${missing[*]}" >&2
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
        NGINX=""
        nginx_find || die "nginx still not found after installing nginx-light"
        TIME_BIN=$(type -P time || true)
    else
        die "missing ${missing[*]}: as root, apt-get install -y nginx-light wrk time"
    fi
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed to write the JSON"
if [ -z "${CMDUNIT:-}" ]; then
    cargo build --release --quiet >&2
    CMDUNIT=target/release/cmdunit
fi
[ -x "$CMDUNIT" ] || die "cmdunit binary not found: $CMDUNIT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# jline K=V...: one JSON object; integers and decimals become numbers, `null` null, the rest text.
jline() {
    python3 -c '
import json, re, sys
o = {}
for a in sys.argv[1:]:
    k, v = a.split("=", 1)
    if v == "null":
        o[k] = None
    elif re.fullmatch(r"-?[0-9]+", v):
        o[k] = int(v)
    elif re.fullmatch(r"-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?", v):
        o[k] = float(v)
    else:
        o[k] = v
print(json.dumps(o))' "$@"
}
# field FILE KEY: a top-level field of a JSON object in FILE, or null.
field() {
    python3 -c '
import json, sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2])
except Exception:
    v = None
print("null" if v is None else v)' "$1" "$2"
}

# Machine and tools, before anything runs.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
NPROC=$(nproc)
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM_KB=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
V_CMDUNIT=$("$CMDUNIT" --version 2>&1 | head -n1)
V_NGINX=$("$NGINX" -v 2>&1 | head -n1)
V_WRK=$(wrk -v 2>&1 | head -n1 || true)
V_TIME=$("$TIME_BIN" --version 2>&1 | head -n1 || true)
echo "== host: $NPROC cores ($CPU), load average $LOAD_START" >&2

# The server.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/nginx"
nginx_render scripts/nginx/static.conf.template "$TMP/nginx" \
    "BIND=127.0.0.1" "PORT=$PORT" "WORKER_PROCESSES=$PROCESSES"
nginx_start "$TMP/nginx" "$TMP/nginx.log"
URL="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
    curl --noproxy '*' -fsS -o /dev/null --max-time 1 "$URL/" 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx.log" >&2; die "nginx exited"; }
    sleep 0.1
done
curl --noproxy '*' -fsS -o /dev/null "$URL/work/us/0" || { cat "$TMP/nginx.log" >&2; die "nginx does not answer"; }

RUNS=$TMP/runs.jsonl
: >"$RUNS"

# 1. wrk.
echo "== wrk -t2 -c64 -d${WRK_SECS}s $URL/work/us/0" >&2
WRK_OUT=$(timeout -k 5 $((WRK_SECS + 30)) wrk -t2 -c64 -d"${WRK_SECS}s" "$URL/work/us/0" 2>&1) || true
echo "$WRK_OUT" >&2
WRK_RPS=$(echo "$WRK_OUT" | awk '/^Requests\/sec:/ {print $2}')
WRK_NON2XX=$(echo "$WRK_OUT" | awk '/Non-2xx/ {print $NF}')
WRK_RPS=${WRK_RPS:-null}
WRK_NON2XX=${WRK_NON2XX:-0}

# 2-4. cmdunit batches. run_cmdunit STEP N POLICY MEASURE_RSS(0/1)
run_cmdunit() {
    local step=$1 n=$2 policy=$3 rss=$4
    local out=$TMP/run-$step js=$TMP/$step.json err=$TMP/$step.err tf=$TMP/$step.time
    local t0 t1 rc=0 wall rps peak="null" time_wall="null"
    local cmd=("$CMDUNIT" "$n" --policy "$policy" -f "$URL" --format json --quiet --no-charts
        --out "$out")
    [ "$rss" = 1 ] && cmd=("$TIME_BIN" -f '%e %M' -o "$tf" "${cmd[@]}")
    echo "== $step: cmdunit $n --policy $policy" >&2
    t0=$(now)
    timeout -k 5 "$STEP_TIMEOUT" "${cmd[@]}" </dev/null >"$js" 2>"$err" || rc=$?
    t1=$(now)
    rm -rf "$out"
    wall=$(elapsed "$t0" "$t1")
    rps=$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')
    if [ "$rss" = 1 ] && [ -s "$tf" ]; then
        # GNU time writes "Command exited with non-zero status N" first when it fails.
        read -r time_wall peak < <(tail -n1 "$tf")
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "   timed out after ${STEP_TIMEOUT} s" >&2
        rps=null
    elif [ "$rc" != 0 ]; then
        echo "   exit $rc: $(tail -n3 "$err")" >&2
        rps=null
    fi
    jline "step=$step" "n=$n" "policy=$policy" "exit_code=$rc" "wall_s=$wall" \
        "requests_per_s=$rps" "peak_rss_kb=$peak" "time_wall_s=$time_wall" \
        "ok=$(field "$js" ok)" "failed=$(field "$js" failed)" \
        "policy_run=$(field "$js" policy)" "cmdunit_wall_ms=$(field "$js" wall_ms)" \
        "stderr=$(tail -c 300 "$err" | tr '\n' ' ')" >>"$RUNS"
    echo "   wall ${wall} s, ${rps} requests/s$([ "$peak" != null ] && echo ", peak RSS ${peak} kB")" >&2
}
run_cmdunit machine-rr "$N_RR" machine-rr 0
run_cmdunit auto "$N_AUTO" auto 0
run_cmdunit big "$N_BIG" auto 1

# 5. N = 10^8: stopped after HUGE_SECS; RSS and progress sampled from /proc and requests.csv.
echo "== huge: cmdunit $N_HUGE (auto), stopped after ${HUGE_SECS} s" >&2
HUGE_OUT=$TMP/run-huge
t0=$(now)
"$CMDUNIT" "$N_HUGE" -f "$URL" --format json --quiet --no-charts --out "$HUGE_OUT" \
    </dev/null >"$TMP/huge.json" 2>"$TMP/huge.err" &
HUGE_PID=$!
state=running rc=null rss=null hwm=null rows=null
while :; do
    if ! kill -0 "$HUGE_PID" 2>/dev/null; then
        state=exited
        rc=0
        wait "$HUGE_PID" || rc=$?
        HUGE_PID=""
        break
    fi
    if [ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -ge "$HUGE_SECS" ]; then
        rss=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$HUGE_PID/status" 2>/dev/null || echo null)
        hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$HUGE_PID/status" 2>/dev/null || echo null)
        [ -f "$HUGE_OUT/requests.csv" ] && rows=$(($(wc -l <"$HUGE_OUT/requests.csv") - 1))
        kill -KILL "$HUGE_PID" 2>/dev/null || true
        wait "$HUGE_PID" 2>/dev/null || true
        HUGE_PID=""
        break
    fi
    sleep 0.1
done
huge_wall=$(elapsed "$t0" "$(now)")
rm -rf "$HUGE_OUT"
jline "step=huge" "n=$N_HUGE" "policy=auto" "state=$state" "exit_code=$rc" \
    "sampled_at_s=$HUGE_SECS" "wall_s=$huge_wall" "rss_kb=${rss:-null}" "hwm_kb=${hwm:-null}" \
    "requests_written=$rows" "stderr=$(tail -c 300 "$TMP/huge.err" | tr '\n' ' ')" >>"$RUNS"

# Output: the JSON and a table.
mkdir -p "$(dirname "$OUT")"
MACHINE=$(jline "nproc=$NPROC" "cpu=$CPU" "mem_total_kb=$MEM_KB" "load_average_start=$LOAD_START" \
    "load_average_end=$(cut -d' ' -f1-3 /proc/loadavg)" "kernel=$(uname -r)")
TOOLS=$(jline "cmdunit=$V_CMDUNIT" "nginx=$V_NGINX" "wrk=$V_WRK" "time=$V_TIME")
WRK=$(jline "threads=2" "connections=64" "duration_s=$WRK_SECS" "path=/work/us/0" \
    "requests_per_s=$WRK_RPS" "non_2xx=$WRK_NON2XX")
python3 - "$OUT" "$QUICK" "$PROCESSES" "$MACHINE" "$TOOLS" "$WRK" "$RUNS" <<'EOF'
import json, sys, time
out, quick, processes, machine, tools, wrk, runs = sys.argv[1:]
wrk = json.loads(wrk)
steps = [json.loads(l) for l in open(runs) if l.strip()]
ref = wrk["requests_per_s"]
for s in steps:
    if "requests_per_s" in s:
        rps = s["requests_per_s"]
        s["ratio_to_wrk"] = round(rps / ref, 4) if rps and ref else None
doc = {
    "benchmark": "engine",
    "quick": quick == "1",
    "date_unix_s": int(time.time()),
    "machine": json.loads(machine),
    "tools": json.loads(tools),
    "server": {"nginx_worker_processes": int(processes),
               "template": "scripts/nginx/static.conf.template"},
    "wrk": wrk,
    "runs": [s for s in steps if s["step"] != "huge"],
    "huge": next((s for s in steps if s["step"] == "huge"), None),
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

def num(v, fmt):
    return "-" if v is None else format(v, fmt)

print(f"{'step':<12} {'N':>11} {'policy':<11} {'wall s':>8} {'req/s':>10} {'x wrk':>7} {'peak RSS MB':>12}")
print(f"{'wrk':<12} {'':>11} {'':<11} {num(wrk['duration_s'], '8.1f')} {num(ref, '10.0f')} {'1.000':>7} {'':>12}")
for s in doc["runs"]:
    rss = s["peak_rss_kb"] / 1024 if s.get("peak_rss_kb") else None
    print(f"{s['step']:<12} {s['n']:>11} {s['policy']:<11} {num(s['wall_s'], '8.1f')} "
          f"{num(s['requests_per_s'], '10.0f')} {num(s['ratio_to_wrk'], '7.3f')} {num(rss, '12.1f')}")
h = doc["huge"]
if h:
    if h["state"] == "running":
        rss = h["rss_kb"] / 1024 if h["rss_kb"] else None
        print(f"{'huge':<12} {h['n']:>11} {'auto':<11} stopped after {h['sampled_at_s']} s: "
              f"RSS {num(rss, '.1f')} MB, {num(h['requests_written'], 'd')} requests written")
    else:
        print(f"{'huge':<12} {h['n']:>11} {'auto':<11} exited {h['exit_code']} "
              f"before {h['sampled_at_s']} s: {h['stderr'].strip()}")

# The same figures as a Markdown page next to the JSON (what the docs link to), with the checks.
big = next((s for s in doc["runs"] if s["step"] == "big"), None)
best = max((s.get("ratio_to_wrk") or 0 for s in doc["runs"] if s["step"] != "big"), default=0)
checks = [
    (f"cmdunit >= 0.3x wrk's requests/s (best {best:.3f}x)", best >= 0.3),
]
if big:
    rss_mb = (big.get("peak_rss_kb") or 0) / 1024
    checks.append((f"N = {big['n']:,}: peak RSS <= 50 MB ({rss_mb:.1f} MB) and wall <= 40 s "
                   f"({num(big['wall_s'], '.1f')} s)",
                   bool(big.get("peak_rss_kb")) and rss_mb <= 50 and (big["wall_s"] or 1e9) <= 40))
if h and h["state"] == "running" and h["rss_kb"]:
    checks.append((f"N = {h['n']:,}: RSS after {h['sampled_at_s']} s <= 100 MB "
                   f"({h['rss_kb'] / 1024:.1f} MB)", h["rss_kb"] / 1024 <= 100))
m = doc["machine"]
lines = [
    "# The engine against a zero-cost server (`scripts/bench-engine.sh`)",
    "",
    f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(doc['date_unix_s']))} by "
    f"`scripts/bench-engine.sh`{' (quick mode)' if doc['quick'] else ''}; {m['nproc']} cores "
    f"({m['cpu']}), load average {m['load_average_start']} at the start. nginx-light "
    f"({processes} worker process) answers every `/work` path with a fixed JSON; wrk "
    f"(2 threads, 64 connections, {wrk['duration_s']} s) is the reference.",
    "",
    "| Step | N | Policy | Wall [s] | Requests/s | × wrk | Peak RSS [MB] |",
    "|:---|---:|:---|---:|---:|---:|---:|",
    f"| wrk | | | {num(wrk['duration_s'], '.1f')} | {num(ref, ',.0f')} | 1.000 | |",
]
for s in doc["runs"]:
    rss = s["peak_rss_kb"] / 1024 if s.get("peak_rss_kb") else None
    lines.append(f"| {s['step']} | {s['n']:,} | `{s['policy']}` | {num(s['wall_s'], '.1f')} | "
                 f"{num(s['requests_per_s'], ',.0f')} | {num(s['ratio_to_wrk'], '.3f')} | "
                 f"{num(rss, '.1f')} |")
if h and h["state"] == "running":
    rss = h["rss_kb"] / 1024 if h["rss_kb"] else None
    lines.append(f"| huge | {h['n']:,} | `auto` | stopped after {h['sampled_at_s']} s | "
                 f"{num(h['requests_written'], ',d')} written | | {num(rss, '.1f')} (RSS then) |")
lines += ["", "Checks:"]
lines += [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks]
md = out[:-5] + ".md" if out.endswith(".json") else out + ".md"
with open(md, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"written: {out}, {md}")
EOF
