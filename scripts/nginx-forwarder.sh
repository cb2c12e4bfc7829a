#!/usr/bin/env bash
# A real forwarding unit that is not cmdunit's code: nginx (Debian `nginx-light`) in front of
# five `cmdunit serve --role worker` processes (asia/0, asia/1, emea/0, us/0, us/1).
#
# Usage: scripts/nginx-forwarder.sh [--port P] [--time-scale F] [--awake] [--topology FILE]
#                                   [--seed S] [--machines "asia/0 asia/1 ..."]
#
#   --port P           nginx's port on 127.0.0.1 (default 5000; env NGINX_FORWARDER_PORT)
#   --time-scale F     passed to every worker (default 1.0; env NGINX_FORWARDER_TIME_SCALE)
#   --awake            workers start awake (env NGINX_FORWARDER_AWAKE=1)
#   --topology FILE    passed to every worker (env NGINX_FORWARDER_TOPOLOGY). The workers take
#                      their machines' parameters from it; nginx itself models nothing (no
#                      handling stage, no ceiling), and a machine marked down still runs.
#   --seed S           passed to every worker (default 0; env NGINX_FORWARDER_SEED)
#   --machines LIST    the workers to start (default "asia/0 asia/1 emea/0 us/0 us/1";
#                      env NGINX_FORWARDER_MACHINES); each must be in the topology
# Other environment:
#   CMDUNIT            the cmdunit binary (default target/release/cmdunit, built if missing)
#   NGINX              the nginx binary (default: `nginx` on PATH; non-root users may need
#                      /usr/sbin on PATH). Install: apt-get install -y nginx-light
#   NGINX_FORWARDER_START_TIMEOUT  seconds to wait for everything to answer (default 30)
#   NGINX_FORWARDER_KEEP=1         keep the run folder (config, logs) on exit
#
# Routes (scripts/nginx/forwarder.conf.template): GET /work (random over all machines),
# /work/<region> (random in the region), /work/<region>/<i> (that machine), other /work paths
# 404, GET / 200. Workers listen on ephemeral loopback ports.
#
# Once nginx and every worker answer, the script prints the forwarding unit's URL on stdout (one
# line, e.g. http://127.0.0.1:5000; everything else goes to stderr, among it one line
# `nginx-forwarder: worker asia/0 http://127.0.0.1:PORT` per worker) and waits. Ctrl-C, SIGTERM or
# any of its processes dying stops everything it started (nginx, its workers, the cmdunit workers)
# and removes its temporary folder. The exit status is 1 if a process died on its own.
#
# From another script, run it in the background and read the URL from a file:
#   scripts/nginx-forwarder.sh --port 5100 --awake >"$url_file" 2>"$log" &
#   fwd_pid=$!
#   until [ -s "$url_file" ]; do kill -0 "$fwd_pid" || exit 1; sleep 0.2; done
#   url=$(head -n1 "$url_file")
#   ...
#   kill -TERM "$fwd_pid"; wait "$fwd_pid" || true
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=SCRIPTDIR/nginx/common.sh
. scripts/nginx/common.sh

PORT=${NGINX_FORWARDER_PORT:-5000}
SCALE=${NGINX_FORWARDER_TIME_SCALE:-1.0}
AWAKE=${NGINX_FORWARDER_AWAKE:-0}
TOPOLOGY=${NGINX_FORWARDER_TOPOLOGY:-}
SEED=${NGINX_FORWARDER_SEED:-0}
MACHINES=${NGINX_FORWARDER_MACHINES:-asia/0 asia/1 emea/0 us/0 us/1}
START_TIMEOUT=${NGINX_FORWARDER_START_TIMEOUT:-30}
BIND=127.0.0.1
TEMPLATE=scripts/nginx/forwarder.conf.template

die() {
    echo "nginx-forwarder: $*" >&2
    exit 1
}
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --port) PORT=${2:?--port needs a value}; shift 2 ;;
    --time-scale) SCALE=${2:?--time-scale needs a value}; shift 2 ;;
    --awake) AWAKE=1; shift ;;
    --topology) TOPOLOGY=${2:?--topology needs a file}; shift 2 ;;
    --seed) SEED=${2:?--seed needs a value}; shift 2 ;;
    --machines) MACHINES=${2:?--machines needs a list}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "nginx-forwarder: unknown argument $1" >&2; usage ;;
    esac
done
if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    die "--port must be 1-65535, got '$PORT'"
fi
[ -z "$TOPOLOGY" ] || [ -f "$TOPOLOGY" ] || die "topology file not found: $TOPOLOGY"

nginx_find || die "nginx not found: $NGINX_INSTALL_HINT"
if [ -z "${CMDUNIT:-}" ]; then
    CMDUNIT=target/release/cmdunit
    [ -x "$CMDUNIT" ] || cargo build --release --quiet >&2
fi
[ -x "$CMDUNIT" ] || die "cmdunit binary not found: $CMDUNIT"

# Descriptors: nginx holds two per proxied request, the workers one per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

RUN=$(mktemp -d -t nginx-forwarder.XXXXXX)
WORKER_PIDS=()
# shellcheck disable=SC2317 # run by the EXIT trap (shellcheck 0.9 thinks it unreachable)
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # nginx first (SIGTERM: fast shutdown of the master and its worker processes), then the
    # cmdunit workers behind it.
    nginx_stop
    local pid
    for pid in "${WORKER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${WORKER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${NGINX_FORWARDER_KEEP:-0}" = 1 ]; then
        echo "nginx-forwarder: run folder kept: $RUN" >&2
    else
        rm -rf "$RUN"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
    local f
    for f in "$RUN"/*.log; do
        [ -s "$f" ] || continue
        echo "--- $f" >&2
        tail -n 20 "$f" >&2
    done
}

# 1. The workers, each on an ephemeral port read back from what it prints.
worker_args=(--bind "$BIND" --port 0 --time-scale "$SCALE" --seed "$SEED")
[ "$AWAKE" = 1 ] && worker_args+=(--awake)
[ -n "$TOPOLOGY" ] && worker_args+=(--topology "$TOPOLOGY")
names=()
for m in $MACHINES; do
    [[ $m =~ ^[a-z0-9-]+/[0-9]+$ ]] || die "machine must look like asia/0, got '$m'"
    name=${m//\//_}
    names+=("$name")
    "$CMDUNIT" serve --role worker --machine "$m" "${worker_args[@]}" \
        </dev/null >"$RUN/worker-$name.log" 2>&1 &
    WORKER_PIDS+=($!)
done
[ ${#names[@]} -gt 0 ] || die "no machines"

deadline=$((SECONDS + START_TIMEOUT))
declare -A WORKER_ADDR=()
for i in "${!names[@]}"; do
    name=${names[$i]}
    while :; do
        addr=$(grep -m1 -o 'http://[0-9.]*:[0-9]*' "$RUN/worker-$name.log" || true)
        [ -n "$addr" ] && break
        kill -0 "${WORKER_PIDS[$i]}" 2>/dev/null || { show_logs; die "worker ${name/_//} exited"; }
        [ $SECONDS -lt $deadline ] || { show_logs; die "worker ${name/_//} did not start"; }
        sleep 0.1
    done
    WORKER_ADDR[$name]=${addr#http://}
done

# 2. nginx's configuration from the template.
upstreams=""
locations=""
machine_list=""
all_servers=""
declare -A REGION_SERVERS=()
regions=()
for name in "${names[@]}"; do
    region=${name%_*}
    index=${name##*_}
    up=${region//-/_}
    server="        server ${WORKER_ADDR[$name]};"$'\n'
    upstreams+="    upstream m_${up}_$index {"$'\n'"$server        keepalive 32;"$'\n'
    upstreams+="        keepalive_timeout 60s;"$'\n'"        keepalive_requests 1000000;"$'\n'"    }"$'\n'
    locations+="        location = /work/$region/$index { proxy_pass http://m_${up}_$index; }"$'\n'
    machine_list+="${machine_list:+, }\"$region/$index\""
    all_servers+=$server
    if [ -z "${REGION_SERVERS[$region]+set}" ]; then
        regions+=("$region")
        REGION_SERVERS[$region]=""
    fi
    REGION_SERVERS[$region]+=$server
done
for region in "${regions[@]}"; do
    up=${region//-/_}
    upstreams+="    upstream r_$up {"$'\n'"        random;"$'\n'"${REGION_SERVERS[$region]}"
    upstreams+="        keepalive 64;"$'\n'"        keepalive_timeout 60s;"$'\n'
    upstreams+="        keepalive_requests 1000000;"$'\n'"    }"$'\n'
    locations+="        location = /work/$region { proxy_pass http://r_$up; }"$'\n'
done
upstreams+="    upstream all_machines {"$'\n'"        random;"$'\n'"$all_servers"
upstreams+="        keepalive 128;"$'\n'"        keepalive_timeout 60s;"$'\n'
upstreams+="        keepalive_requests 1000000;"$'\n'"    }"$'\n'
locations="        location = /work { proxy_pass http://all_machines; }"$'\n'"$locations"

if ! nginx_render "$TEMPLATE" "$RUN" "UPSTREAMS=$upstreams" "LOCATIONS=$locations" \
    "MACHINE_LIST=$machine_list" "BIND=$BIND" "PORT=$PORT" \
    "WORKER_PROCESSES=${NGINX_FORWARDER_PROCESSES:-auto}" 2>"$RUN/nginx-check.log"; then
    cat "$RUN/nginx-check.log" >&2
    die "nginx refused the generated configuration ($RUN/nginx.conf)"
fi

# 3. nginx, in the foreground of its own (background) process so that its pid is the master's.
nginx_start "$RUN" "$RUN/nginx.log"

# 4. Wait until everything answers: every worker's / directly, then nginx's /.
for i in "${!names[@]}"; do
    name=${names[$i]}
    until curl --noproxy '*' -fsS -o /dev/null --max-time 2 "http://${WORKER_ADDR[$name]}/" 2>/dev/null; do
        kill -0 "${WORKER_PIDS[$i]}" 2>/dev/null || { show_logs; die "worker ${name/_//} exited"; }
        [ $SECONDS -lt $deadline ] || { show_logs; die "worker ${name/_//} does not answer"; }
        sleep 0.1
    done
done
URL="http://$BIND:$PORT"
until curl --noproxy '*' -fsS -o /dev/null --max-time 2 "$URL/" 2>/dev/null; do
    kill -0 "$NGINX_PID" 2>/dev/null || { show_logs; die "nginx exited (port $PORT in use?)"; }
    [ $SECONDS -lt $deadline ] || { show_logs; die "nginx does not answer on $URL"; }
    sleep 0.1
done

for name in "${names[@]}"; do
    echo "nginx-forwarder: worker ${name/_//} http://${WORKER_ADDR[$name]}" >&2
done
echo "nginx-forwarder: nginx $URL over ${#names[@]} workers (time scale $SCALE$([ "$AWAKE" = 1 ] && echo ', awake'))" >&2
echo "$URL"

# 5. Wait for a signal (the traps) or for any process to die on its own.
status=0
wait -n "$NGINX_PID" "${WORKER_PIDS[@]}" || status=$?
show_logs
die "a process it started exited on its own (status $status); stopping the rest"
