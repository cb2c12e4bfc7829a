#!/usr/bin/env bash
# End-to-end comparison: how long N requests take with cmdunit (empty cache, warm cache) and with
# the naive client (scripts/naive-client.py), against the true lower bound, on several systems.
#
# Usage: scripts/bench-e2e.sh                      (the full run: long at time scale 1)
#        BENCH_E2E_QUICK=1 scripts/bench-e2e.sh    (smoke test: scale 0.1, N 1 10 100, temp output)
#
# Systems (BENCH_E2E_SYSTEMS, default all, in this order):
#   default        cmdunit serve, topologies/default.toml, one forwarding unit
#   default-5fwd   the same with --forwarders 5 (cmdunit gets every unit: -f URL -f URL ...)
#   no-ceiling, slow-machine, machine-down, stage-after   cmdunit serve --topology topologies/NAME.toml
#                  (stage-after is skipped with a warning when its file is absent)
#   nginx          scripts/nginx-forwarder.sh: nginx in front of five cmdunit workers
# Every system runs with its machines awake, at time scale BENCH_E2E_SCALE; cmdunit is told the
# same --time-scale. The naive client talks to the first forwarding unit only (the students had one).
#
# BENCH_E2E_ASLEEP=1: cold starts instead. Every client run meets the machines asleep (the system
# is restarted before it, on the same port, so the warm cache still applies). Systems by default:
# default, no-ceiling, slow-machine, stage-after (one emulated unit each; nginx and default-5fwd
# are not supported here). The bound is still the awake one (the model's bound leaves the boot
# out), so bound/wall is shown but not checked; the naive check stands. Output:
# bench-e2e-asleep.{json,md}.
#
# For each system and each N (BENCH_E2E_NS, default "1 10 100 1000 5000"), BENCH_E2E_REPS times
# (default 1), the three clients run one after the other, their order rotated from one (N, rep) to
# the next, each once the system is idle again (no request admitted and not done, per /stats):
#   cmdunit-empty  XDG_CACHE_HOME = a new empty folder (nothing learned before)
#   cmdunit-warm   XDG_CACHE_HOME = the system's own folder, seeded by one unmeasured cmdunit run of
#                  BENCH_E2E_SEED_N requests (default 500) when the system starts
#   naive          python3 -S scripts/naive-client.py N --url URL --window BENCH_E2E_WINDOW (100)
# Each wall time is measured the same way, from outside: date +%s.%N just before the exec and just
# after the exit. The true lower bound: see true_bound below (null while cmdunit cannot give it).
#
# Output: BENCH_E2E_OUT_DIR/bench-e2e.json (one record per run: system, n, client, wall_ms, ok,
# failed, bound_ms, ratio = bound/wall) and bench-e2e.md (per system and N: the three walls,
# cmdunit/naive, bound/wall); the table and the acceptance checks are printed too:
#   every system, N >= 10: cmdunit-empty wall <= 1.02 x naive wall
#   bound/wall >= 0.90 at N >= 1000 and >= 0.80 at N = 100 (cmdunit-empty),
#               >= 0.95 and >= 0.90 (cmdunit-warm)
# Exit status: 0 all checks pass (or cannot be judged: no bound), 3 a check fails, 1 an error.
#
# Environment: BENCH_E2E_SCALE (1.0; quick 0.1), BENCH_E2E_NS, BENCH_E2E_SYSTEMS, BENCH_E2E_REPS,
# BENCH_E2E_SEED_N, BENCH_E2E_WINDOW, BENCH_E2E_RUN_TIMEOUT (s per client run, 900),
# BENCH_E2E_SETTLE_TIMEOUT (s to wait for an idle system, 300), BENCH_E2E_OUT_DIR (results; quick:
# a temp folder, removed), CMDUNIT (default target/release/cmdunit, built with cargo).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${BENCH_E2E_QUICK:-0}
if [ "$QUICK" = 1 ]; then
    d_scale=0.1 d_ns="1 10 100" d_seed=100
else
    d_scale=1.0 d_ns="1 10 100 1000 5000" d_seed=500
fi
SCALE=${BENCH_E2E_SCALE:-$d_scale}
NS=${BENCH_E2E_NS:-$d_ns}
ASLEEP=${BENCH_E2E_ASLEEP:-0}
if [ "$ASLEEP" = 1 ]; then
    SYSTEMS=${BENCH_E2E_SYSTEMS:-default no-ceiling slow-machine stage-after}
    NAME=bench-e2e-asleep
else
    SYSTEMS=${BENCH_E2E_SYSTEMS:-default default-5fwd no-ceiling slow-machine machine-down stage-after nginx}
    NAME=bench-e2e
fi
REPS=${BENCH_E2E_REPS:-1}
SEED_N=${BENCH_E2E_SEED_N:-$d_seed}
WINDOW=${BENCH_E2E_WINDOW:-100}
RUN_TIMEOUT=${BENCH_E2E_RUN_TIMEOUT:-900}
SETTLE_TIMEOUT=${BENCH_E2E_SETTLE_TIMEOUT:-300}
TMP=$(mktemp -d -t bench-e2e.XXXXXX)
if [ -n "${BENCH_E2E_OUT_DIR:-}" ]; then
    OUT_DIR=$BENCH_E2E_OUT_DIR
elif [ "$QUICK" = 1 ]; then
    OUT_DIR=$TMP/out # a smoke test's figures are not results
else
    OUT_DIR=results
fi

SYS_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap (shellcheck 0.9 thinks it unreachable)
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_system
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
    echo "bench-e2e: $*" >&2
    exit 1
}
say() { echo "bench-e2e: $*" >&2; }
now() { date +%s.%N; }

command -v python3 >/dev/null 2>&1 || die "python3 is needed (the naive client, the JSON)"
# The naive client runs on the interpreter itself, not through a version manager's shim, and
# without site-packages (-S: it uses the standard library only): ~10 ms to start instead of ~200.
PYTHON=$(python3 -c 'import sys; print(sys.executable)')
if [ -z "${CMDUNIT:-}" ]; then
    cargo build --release --quiet >&2
    CMDUNIT=target/release/cmdunit
fi
[ -x "$CMDUNIT" ] || die "cmdunit binary not found: $CMDUNIT"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_E2E_REPS must be >= 1"
for n in $NS; do [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_E2E_NS: '$n' is not a positive integer"; done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Python helpers: a JSON line from K=V pairs, a field of a JSON file, waiting for an idle system.
cat >"$TMP/helpers.py" <<'EOF'
import json, re, sys, time, urllib.request

def jline(args):
    o = {}
    for a in args:
        k, v = a.split("=", 1)
        if v == "null":
            o[k] = None
        elif re.fullmatch(r"-?[0-9]+", v):
            o[k] = int(v)
        elif re.fullmatch(r"-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?", v):
            o[k] = float(v)
        else:
            o[k] = v
    print(json.dumps(o))

def field(path, key):
    try:
        v = json.load(open(path)).get(key)
    except Exception:
        v = None
    print("null" if v is None else v)

def settle(timeout, forwarders, workers):
    """Until no worker has a request admitted and not done, and no emulated unit one in flight.
    A worker that does not answer (a machine down) counts as idle."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    def stats(u):
        try:
            with opener.open(u + "/stats", timeout=5) as r:
                return json.load(r)
        except Exception:
            return None
    deadline = time.monotonic() + float(timeout)
    while True:
        busy = [u for u in workers.split() if (stats(u) or {}).get("admitted_not_done", 0) > 0]
        busy += [u for u in forwarders.split() if (stats(u) or {}).get("in_flight", 0) > 0]
        if not busy:
            return
        if time.monotonic() > deadline:
            sys.exit("still busy after %s s: %s" % (timeout, " ".join(busy)))
        time.sleep(0.2)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"jline": lambda: jline(args), "field": lambda: field(*args),
     "settle": lambda: settle(*args)}[cmd]()
EOF
jline() { python3 "$TMP/helpers.py" jline "$@"; }
field() { python3 "$TMP/helpers.py" field "$1" "$2"; }

# Whether this cmdunit has a subcommand (its --help lists it under "Commands:").
has_subcommand() {
    "$CMDUNIT" --help 2>/dev/null |
        awk '/^Commands:/ {f = 1; next} f && /^[^ ]/ {f = 0} f {print $1}' | grep -qx "$1"
}

# ---- The systems. start_system NAME sets SYS_PID, SYS_KIND, SYS_TOPOLOGY, SYS_K, FWD_URLS,
# WORKER_URLS; returns 1 (with a warning) when the system cannot run here.
FWD_URLS=()
WORKER_URLS=()
start_system() {
    local name=$1 log=$TMP/system.log
    SYS_KIND=emulated SYS_K=1
    case $name in
    default) SYS_TOPOLOGY=topologies/default.toml ;;
    default-5fwd) SYS_TOPOLOGY=topologies/default.toml SYS_K=5 ;;
    nginx) SYS_KIND=nginx SYS_TOPOLOGY=topologies/default.toml ;;
    *) SYS_TOPOLOGY=topologies/$name.toml ;;
    esac
    if [ ! -f "$SYS_TOPOLOGY" ]; then
        say "warning: $SYS_TOPOLOGY not found; system $name skipped"
        return 1
    fi
    FWD_URLS=()
    WORKER_URLS=()
    : >"$log"
    local t_end=$((SECONDS + 60))
    if [ "$SYS_KIND" = nginx ]; then
        [ "$ASLEEP" = 1 ] && die "BENCH_E2E_ASLEEP: the nginx system is not supported"
        local port urlfile=$TMP/system.url
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        : >"$urlfile"
        CMDUNIT=$CMDUNIT scripts/nginx-forwarder.sh --port "$port" --time-scale "$SCALE" --awake \
            --topology "$SYS_TOPOLOGY" </dev/null >"$urlfile" 2>"$log" &
        SYS_PID=$!
        until [ -s "$urlfile" ]; do
            kill -0 "$SYS_PID" 2>/dev/null || { cat "$log" >&2; die "nginx-forwarder.sh exited"; }
            [ $SECONDS -lt $t_end ] || { cat "$log" >&2; die "nginx-forwarder.sh did not start"; }
            sleep 0.2
        done
        FWD_URLS=("$(head -n1 "$urlfile")")
        mapfile -t WORKER_URLS < <(awk '/^nginx-forwarder: worker / {print $4}' "$log")
    else
        local wake=(--awake --port 0)
        if [ "$ASLEEP" = 1 ]; then
            [ "$SYS_K" = 1 ] || die "BENCH_E2E_ASLEEP: system $name has several units"
            # One port per system, so that a restart keeps the unit's URL (the cache's key); below
            # the ephemeral range, where the clients' own connections cannot hold it.
            [ -n "${SYS_PORT:-}" ] || SYS_PORT=$((20000 + RANDOM % 10000))
            wake=(--port "$SYS_PORT")
        fi
        serve() {
            "$CMDUNIT" serve "${wake[@]}" --topology "$SYS_TOPOLOGY" --forwarders "$SYS_K" \
                --time-scale "$SCALE" </dev/null >"$log" 2>&1 &
            SYS_PID=$!
        }
        serve
        until grep -q '^Ctrl-C to stop' "$log"; do
            if ! kill -0 "$SYS_PID" 2>/dev/null; then
                # A fixed port can be briefly held after a restart (asleep mode): try again.
                if [ "$ASLEEP" = 1 ] && grep -q 'Address already in use' "$log" &&
                    [ $SECONDS -lt $t_end ]; then
                    sleep 0.5
                    serve
                    continue
                fi
                cat "$log" >&2
                die "cmdunit serve exited"
            fi
            [ $SECONDS -lt $t_end ] || { cat "$log" >&2; die "cmdunit serve did not start"; }
            sleep 0.1
        done
        mapfile -t FWD_URLS < <(awk '/^forwarding unit/ {print $NF}' "$log")
        mapfile -t WORKER_URLS < <(awk '/^worker / {print $3}' "$log")
    fi
    [ ${#FWD_URLS[@]} -gt 0 ] || die "no forwarding unit URL for $name"
    say "$name: ${FWD_URLS[*]} (workers: ${#WORKER_URLS[@]})"
}

stop_system() {
    if [ -n "$SYS_PID" ]; then
        kill -TERM "$SYS_PID" 2>/dev/null || true
        wait "$SYS_PID" 2>/dev/null || true
        SYS_PID=""
    fi
}

settle() {
    local fwd=""
    [ "$SYS_KIND" = emulated ] && fwd="${FWD_URLS[*]}"
    # A system still busy after the timeout is measured anyway (said on stderr): stopping a long
    # benchmark over it would lose every figure so far.
    python3 "$TMP/helpers.py" settle "$SETTLE_TIMEOUT" "$fwd" "${WORKER_URLS[*]}" ||
        say "warning: the system is still busy; the next run starts anyway"
}

# ---- true_bound SYSTEM N: the true lower bound of N requests on the running system, in WALL ms
# (the model's ms times the time scale), or null when cmdunit cannot give it yet.
#   emulated systems: from the model, `cmdunit bound --topology FILE --forwarders K N --format json`
#   nginx:            measured once per system start with `cmdunit calibrate -f URL --out FILE`
#                     (bursts through the unit and at each machine), then
#                     `cmdunit bound --calibration FILE N --format json`
# Both read `lower_bound_ms` (model ms). NOT the lower_bound_ms of a run's own summary: that one
# comes from the run's calibration, i.e. from what the client under test believed.
true_bound() {
    local system=$1 n=$2 js model fargs=() u
    if [ "$system" = nginx ]; then
        has_subcommand calibrate || { echo null; return; }
        local cal=$TMP/nginx-calibration.json
        if [ ! -s "$cal" ]; then
            for u in "${FWD_URLS[@]}"; do fargs+=(-f "$u"); done
            settle
            "$CMDUNIT" calibrate "${fargs[@]}" --time-scale "$SCALE" --out "$cal" \
                >/dev/null 2>&1 </dev/null || { echo null; return; }
        fi
        js=$("$CMDUNIT" bound --calibration "$cal" "$n" --format json 2>/dev/null </dev/null) ||
            { echo null; return; }
    else
        has_subcommand bound || { echo null; return; }
        js=$("$CMDUNIT" bound --topology "$SYS_TOPOLOGY" --forwarders "$SYS_K" "$n" \
            --format json 2>/dev/null </dev/null) || { echo null; return; }
    fi
    model=$(printf '%s' "$js" | python3 -c '
import json, sys
try:
    v = json.load(sys.stdin).get("lower_bound_ms")
except Exception:
    v = None
print("null" if v is None else v)')
    if [ "$model" = null ]; then
        echo null
    else
        awk -v m="$model" -v s="$SCALE" 'BEGIN { printf "%.3f", m * s }'
    fi
}

# ---- One client run, measured from outside. run_client SYSTEM N CLIENT REP BOUND
RECORDS=$TMP/records.jsonl
: >"$RECORDS"
WARM=""
run_client() {
    local system=$1 n=$2 client=$3 rep=$4 bound=$5
    local out=$TMP/run js=$TMP/client.json err=$TMP/client.err xdg rc=0 t0 t1 wall cmd fargs=() u
    for u in "${FWD_URLS[@]}"; do fargs+=(-f "$u"); done
    case $client in
    cmdunit-empty | cmdunit-warm)
        cmd=("$CMDUNIT" "$n" "${fargs[@]}" --time-scale "$SCALE" --format json --quiet --no-charts
            --out "$out")
        ;;
    naive) cmd=("$PYTHON" -S scripts/naive-client.py "$n" --url "${FWD_URLS[0]}" --window "$WINDOW") ;;
    esac
    if [ "$client" = cmdunit-warm ]; then
        xdg=$WARM
    else
        xdg=$(mktemp -d "$TMP/xdg-empty.XXXXXX")
    fi
    if [ "$ASLEEP" = 1 ]; then
        # Machines asleep again: a new system on the same port.
        stop_system
        start_system "$system" >/dev/null || die "system $system did not restart"
    else
        settle
    fi
    rm -rf "$out"
    t0=$(now)
    XDG_CACHE_HOME=$xdg timeout -k 5 "$RUN_TIMEOUT" "${cmd[@]}" </dev/null >"$js" 2>"$err" || rc=$?
    t1=$(now)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')
    [ "$xdg" = "$WARM" ] || rm -rf "$xdg"
    rm -rf "$out"
    [ "$rc" = 0 ] || say "  $client exit $rc: $(tail -n2 "$err" | tr '\n' ' ')"
    jline "system=$system" "n=$n" "client=$client" "rep=$rep" "wall_ms=$wall" \
        "ok=$(field "$js" ok)" "failed=$(field "$js" failed)" "exit_code=$rc" "bound_ms=$bound" \
        "client_wall_ms=$(field "$js" wall_ms)" "policy=$(field "$js" policy)" \
        "makespan_ms=$(field "$js" makespan_ms)" >>"$RECORDS"
    say "  $system N=$n $client: ${wall} ms, ok $(field "$js" ok)"
}

# ---- The runs.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "scale $SCALE, N: $NS, systems: $SYSTEMS, reps $REPS; $(nproc) cores, load $LOAD_START"
CLIENTS=(cmdunit-empty cmdunit-warm naive)
RAN=()
for system in $SYSTEMS; do
    case $system in
    default | default-5fwd | no-ceiling | slow-machine | machine-down | stage-after | nginx) ;;
    *) die "unknown system '$system'" ;;
    esac
    SYS_PORT=""
    start_system "$system" || continue
    RAN+=("$system")
    WARM=$(mktemp -d "$TMP/xdg-warm.XXXXXX")
    settle
    fargs=()
    for u in "${FWD_URLS[@]}"; do fargs+=(-f "$u"); done
    say "$system: seeding the warm cache with cmdunit $SEED_N"
    XDG_CACHE_HOME=$WARM timeout -k 5 "$RUN_TIMEOUT" "$CMDUNIT" "$SEED_N" "${fargs[@]}" \
        --time-scale "$SCALE" --format json --quiet --no-charts --out "$TMP/seed" \
        </dev/null >/dev/null 2>"$TMP/seed.err" || say "warning: seed run failed: $(tail -n2 "$TMP/seed.err")"
    rm -rf "$TMP/seed"
    i=0
    for n in $NS; do
        settle
        bound=$(true_bound "$system" "$n")
        for rep in $(seq "$REPS"); do
            for k in 0 1 2; do
                run_client "$system" "$n" "${CLIENTS[$(((i + rep + k) % 3))]}" "$rep" "$bound"
            done
        done
        i=$((i + 1))
    done
    stop_system
    rm -rf "$WARM" "$TMP/nginx-calibration.json"
done
[ ${#RAN[@]} -gt 0 ] || die "no system ran"

# ---- Output and checks.
mkdir -p "$OUT_DIR"
check_status=0
python3 - "$OUT_DIR" "$RECORDS" "$SCALE" "$REPS" "$NS" "${RAN[*]}" "$LOAD_START" "$NAME" "$ASLEEP" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$("$CMDUNIT" --version 2>&1 | head -n1)" \
    "$(has_subcommand bound && echo yes || echo no)" \
    "$(has_subcommand calibrate && echo yes || echo no)" <<'EOF' || check_status=$?
import json, os, statistics, sys, time
(out_dir, records, scale, reps, ns, systems, load0, name, asleep, load1, version, has_bound,
 has_cal) = sys.argv[1:]
asleep = asleep == "1"
recs = [json.loads(l) for l in open(records) if l.strip()]
for r in recs:
    b, w = r["bound_ms"], r["wall_ms"]
    r["ratio"] = round(b / w, 4) if b is not None and w else None
clients = ["cmdunit-empty", "cmdunit-warm", "naive"]

def med(system, n, client, key="wall_ms"):
    xs = [r[key] for r in recs if (r["system"], r["n"], r["client"]) == (system, n, client)
          and r[key] is not None]
    return statistics.median(xs) if xs else None

def all_ok(system, n, client):
    rs = [r for r in recs if (r["system"], r["n"], r["client"]) == (system, n, client)]
    return bool(rs) and all(r["ok"] == n and r["exit_code"] == 0 for r in rs)

checks = []
for system in systems.split():
    for n in sorted({r["n"] for r in recs if r["system"] == system}):
        empty, warm, naive = (med(system, n, c) for c in clients)
        bound = med(system, n, "cmdunit-empty", "bound_ms")
        if n >= 10:
            ok = empty is not None and naive is not None and empty <= 1.02 * naive
            checks.append({"system": system, "n": n, "check": "cmdunit-empty <= 1.02 x naive",
                           "value": round(empty / naive, 4) if empty and naive else None,
                           "pass": ok and all_ok(system, n, "cmdunit-empty")})
        for client, wall, hi, mid in (("cmdunit-empty", empty, 0.90, 0.80),
                                      ("cmdunit-warm", warm, 0.95, 0.90)):
            need = hi if n >= 1000 else mid if n == 100 else None
            if need is None or asleep:
                continue
            value = round(bound / wall, 4) if bound is not None and wall else None
            checks.append({"system": system, "n": n, "check": f"{client} bound/wall >= {need}",
                           "value": value,
                           "pass": None if value is None else value >= need and all_ok(system, n, client)})

doc = {
    "benchmark": "e2e",
    "machines": "asleep at the start of every client run" if asleep else "awake",
    "date_unix_s": int(time.time()),
    "time_scale": float(scale),
    "reps": int(reps),
    "ns": [int(x) for x in ns.split()],
    "systems": systems.split(),
    "machine": {"nproc": os.cpu_count(), "load_average_start": load0, "load_average_end": load1},
    "cmdunit": version,
    "bound_source": {"emulated": "cmdunit bound" if has_bound == "yes" else None,
                     "nginx": "cmdunit calibrate" if has_cal == "yes" else None},
    "units": "wall milliseconds; bound_ms = the model's lower bound x time scale",
    "records": recs,
    "checks": checks,
}
with open(os.path.join(out_dir, name + ".json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

def ms(v):
    return "-" if v is None else f"{v:,.0f}"

def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.3f}"

lines = [
    "# End-to-end: cmdunit against the naive client and the true lower bound",
    "",
    f"`scripts/bench-e2e.sh`, time scale {scale} (wall ms; the bound is the model's x the scale), "
    f"{reps} run(s) per client (median), "
    + ("machines asleep at the start of every client run (the bound is the awake one: it leaves "
       "the boot out, so bound/wall is not checked), " if asleep else "machines awake, ")
    + f"load average {load0} at start, "
    f"{os.cpu_count()} cores. Bound: "
    + ("`cmdunit bound`" if has_bound == "yes" else "not available (`cmdunit bound` missing)")
    + " for emulated systems, "
    + ("`cmdunit calibrate`" if has_cal == "yes" else "not available (`cmdunit calibrate` missing)")
    + " for nginx.",
    "",
    "| system | N | cmdunit empty | cmdunit warm | naive | empty/naive | warm/naive "
    "| bound | bound/wall empty | bound/wall warm | all ok |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
]
for system in systems.split():
    for n in sorted({r["n"] for r in recs if r["system"] == system}):
        empty, warm, naive = (med(system, n, c) for c in clients)
        bound = med(system, n, "cmdunit-empty", "bound_ms")
        oks = "/".join("yes" if all_ok(system, n, c) else "NO" for c in clients)
        lines.append(f"| {system} | {n} | {ms(empty)} | {ms(warm)} | {ms(naive)} | "
                     f"{ratio(empty, naive)} | {ratio(warm, naive)} | {ms(bound)} | "
                     f"{ratio(bound, empty)} | {ratio(bound, warm)} | {oks} |")
lines += ["", "all ok: every request answered 200, for cmdunit empty / warm / naive.", "",
          "## Acceptance checks", ""]
failed = 0
for c in checks:
    verdict = "n/a (no bound)" if c["pass"] is None else "PASS" if c["pass"] else "FAIL"
    failed += c["pass"] is False
    v = "-" if c["value"] is None else f"{c['value']:.3f}"
    lines.append(f"- {verdict}: {c['system']} N={c['n']}: {c['check']} (value {v})")
text = "\n".join(lines) + "\n"
with open(os.path.join(out_dir, name + ".md"), "w") as f:
    f.write(text)
print(text)
print(f"{failed} check(s) failed; written: {out_dir}/{name}.json, {out_dir}/{name}.md")
sys.exit(3 if failed else 0)
EOF
if [ "$QUICK" = 1 ] && [ -z "${BENCH_E2E_OUT_DIR:-}" ]; then
    say "quick run: figures not kept (set BENCH_E2E_OUT_DIR to keep them)"
fi
exit "$check_status"
