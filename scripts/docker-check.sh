#!/usr/bin/env bash
# Builds the Dockerfile unchanged and proves `docker run cmdunit 800` works, on a machine where no
# image can be pulled and no Docker engine runs (see README "Docker").
#
#   1. installs docker.io, debootstrap and jq if missing (apt), and starts its own dockerd
#      (own socket and data root; overlay2, else vfs; iptables on, else off);
#   2. makes local stand-ins for the Dockerfile's two base images under their exact names:
#      debian:bookworm-slim = a debootstrap minbase root filesystem from the Debian mirror apt uses
#      here, slimmed like the official image; rust:1-bookworm = that root filesystem with gcc and
#      this machine's Rust toolchain. They stay in the data root, so a second run reuses them;
#   3. `docker build --network host` (cargo reaches crates.io the way the host does);
#   4. checks the image: `--help`, a non-root user, size under 100 MB;
#   5. runs the emulator (`cmdunit serve --bind 0.0.0.0`) in one container and `cmdunit 800` in
#      another on a user-defined network (CMDUNIT_FORWARDER=http://forwarder:5000), once with the
#      default policy and once with `--policy per-region-queues`, and checks ok == 800, failed == 0
#      from `--format json`, and that the run folder landed in the mounted volume;
#   6. runs compose.yaml as written (docker compose up) and checks its batch's summary.json;
#   7. writes results/docker-check.txt, stops dockerd and removes its containers, network and volumes.
#
# Must run as root. Environment knobs:
#   DOCKER_CHECK_TIME_SCALE  emulator --time-scale (default 0.1: ten times faster than the model)
#   DOCKER_CHECK_N           requests per batch (default 800)
#   DOCKER_CHECK_CACHE       where dockerd keeps its images between runs
#                            (default /var/lib/cmdunit-docker-check)
#   DOCKER_CHECK_REBUILD=1   rebuild the base-image stand-ins; DOCKER_CHECK_NO_CACHE=1: build the
#                            Dockerfile with --no-cache
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_BASE=rust:1-bookworm
RUNTIME_BASE=debian:bookworm-slim
SUITE=bookworm
IMAGE=cmdunit:docker-check
N=${DOCKER_CHECK_N:-800}
TIME_SCALE=${DOCKER_CHECK_TIME_SCALE:-0.1}
CACHE=${DOCKER_CHECK_CACHE:-/var/lib/cmdunit-docker-check}
RUNDIR=/run/cmdunit-docker-check
export DOCKER_HOST=unix://$RUNDIR/docker.sock
# The classic builder: what a Docker engine without buildx has, and all the Dockerfile needs.
export DOCKER_BUILDKIT=0
NET=cmdunit-check-net
VOL=cmdunit-check-results
FWD=forwarder
REPORT=results/docker-check.txt
MAX_MB=100

T0=$(date +%s)
STEP_T=$T0
STEP_NAME=
TIMINGS=()
step() { # step NAME: close the previous step's timing, announce the next
    local now
    now=$(date +%s)
    if [ -n "$STEP_NAME" ]; then TIMINGS+=("$(printf '%-28s %4ss' "$STEP_NAME" $((now - STEP_T)))"); fi
    STEP_NAME=$1
    STEP_T=$now
    echo "== docker-check: $1"
}
die() { echo "docker-check: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts dockerd)"

# ---------------------------------------------------------------- 1. tools and dockerd
step "install tools"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v jq >/dev/null || missing+=(jq)
command -v iptables >/dev/null || missing+=(iptables)
# compose.yaml is run too: Docker's compose plugin if the client has it, else Debian's docker-compose.
if ! docker compose version >/dev/null 2>&1; then command -v docker-compose >/dev/null || missing+=(docker-compose); fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
DOCKER=$(command -v docker) || die "no docker client after installing docker.io"
echo "client: $($DOCKER --version)"
echo "daemon: $(dockerd --version)"
if $DOCKER compose version >/dev/null 2>&1; then COMPOSE=("$DOCKER" compose); else COMPOSE=(docker-compose); fi
COMPOSE+=(--project-name cmdunit-check --file compose.yaml)
echo "compose: $("${COMPOSE[@]}" version 2>/dev/null | head -n 1)"

DOCKERD_PID=
WORK=
unmount_exec() { # dockerd leaves its default network namespace mounted under its exec root
    awk -v d="$RUNDIR/exec/" 'index($2, d) == 1 { print $2 }' /proc/mounts | xargs -r -n1 umount
    rm -rf "$RUNDIR/exec"
}
cleanup() {
    local rc=$?
    set +e
    [ -n "$WORK" ] && rm -rf "$WORK"
    if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        "${COMPOSE[@]}" down --volumes --timeout 2 >/dev/null 2>&1
        $DOCKER rm -f "$FWD" cmdunit-check-run >/dev/null 2>&1
        $DOCKER network rm "$NET" >/dev/null 2>&1
        $DOCKER volume rm "$VOL" >/dev/null 2>&1
        # Dangling layers from rebuilds; the stand-ins and the tagged image stay as the cache.
        $DOCKER image prune -f >/dev/null 2>&1
        kill "$DOCKERD_PID"
        for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -9 "$DOCKERD_PID"
        wait "$DOCKERD_PID" 2>/dev/null
        unmount_exec
        echo "docker-check: dockerd stopped"
    fi
    [ "$rc" = 0 ] || { echo "docker-check: dockerd log tail:" >&2; tail -n 20 "$RUNDIR/dockerd.log" >&2 2>/dev/null; }
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "start dockerd"
mkdir -p "$CACHE/data" "$RUNDIR"
[ -S "$RUNDIR/docker.sock" ] && $DOCKER version >/dev/null 2>&1 &&
    die "a dockerd already answers on $RUNDIR/docker.sock (another docker-check running?)"
unmount_exec # what a killed run left behind
start_dockerd() { # start_dockerd DRIVER IPTABLES: 0 once it answers, 1 if it died or never did
    rm -f "$RUNDIR/docker.sock" "$RUNDIR/dockerd.pid"
    dockerd --data-root "$CACHE/data" --exec-root "$RUNDIR/exec" --pidfile "$RUNDIR/dockerd.pid" \
        -H "$DOCKER_HOST" --storage-driver "$1" --iptables="$2" --bridge=none \
        >"$RUNDIR/dockerd.log" 2>&1 </dev/null &
    DOCKERD_PID=$!
    for _ in $(seq 60); do
        kill -0 "$DOCKERD_PID" 2>/dev/null || { DOCKERD_PID=; return 1; }
        $DOCKER version >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    kill "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null; DOCKERD_PID=
    return 1
}
started=
for driver in overlay2 vfs; do
    for ipt in true false; do
        if start_dockerd "$driver" "$ipt"; then started="$driver, iptables=$ipt"; break 2; fi
        echo "dockerd did not start with storage driver $driver, iptables=$ipt:"
        tail -n 5 "$RUNDIR/dockerd.log" | sed 's/^/  /'
    done
done
[ -n "$started" ] || die "dockerd would not start (log: $RUNDIR/dockerd.log)"
echo "dockerd up ($started), data root $CACHE/data"

# ---------------------------------------------------------------- 2. base-image stand-ins
step "base-image stand-ins"
# The Dockerfile must use exactly the bases this script can stand in for.
froms=$(awk 'toupper($1) == "FROM" { print $2 }' Dockerfile | tr '\n' ' ')
[ "$froms" = "$BUILD_BASE $RUNTIME_BASE " ] ||
    die "Dockerfile's bases are '$froms'; docker-check.sh stands in for '$BUILD_BASE $RUNTIME_BASE' only"

command -v rustc >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
SYSROOT=$(rustc --print sysroot) || die "no Rust toolchain on this machine"
RUSTC_VERSION=$(rustc --version)
# cargo inside the build reaches the registry the way the host's cargo does: through the host's
# network (--network host) and trusting what the host's system trust store trusts.
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -r "$CA_BUNDLE" ] || die "no system CA bundle at $CA_BUNDLE"
CA_SUM=$(sha256sum "$CA_BUNDLE" | cut -c1-16)
# Each stand-in carries a label saying what went into it; it is rebuilt when that changes.
TOOLCHAIN_IMAGE=cmdunit-standin/rust-toolchain
RUNTIME_KEY="debootstrap minbase $SUITE, slimmed, v1"
TOOLCHAIN_KEY="$RUNTIME_KEY + gcc + $RUSTC_VERSION, v1"
BUILD_KEY="$TOOLCHAIN_KEY + host CA bundle $CA_SUM"
label_of() { $DOCKER image inspect -f '{{ index .Config.Labels "cmdunit.standin" }}' "$1" 2>/dev/null || true; }
stale() { [ "${DOCKER_CHECK_REBUILD:-0}" = 1 ] || [ "$(label_of "$1")" != "$2" ]; }

# The Debian mirror apt uses on this machine.
MIRROR=$(awk '$1 == "URIs:" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || die "found no Debian mirror in /etc/apt/sources.list{,.d}"

rootfs() { # a fresh debootstrap minbase tree in $WORK/rootfs (once per run)
    [ -d "$WORK/rootfs" ] && return 0
    echo "debootstrap --variant=minbase $SUITE from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -n 20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
    # Docker provides these at run time.
    rm -f "$WORK/rootfs/etc/resolv.conf" "$WORK/rootfs/etc/hostname"
}
slim() { # what the official slim images leave out, and keep out of later installs
    local r=$1
    mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
    cat >"$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
SLIM
    find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian/*
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/*.log
}
import() { # import DIR NAME KEY ENV...: the tree as an image called NAME
    local dir=$1 name=$2 key=$3
    shift 3
    local changes=(--change "LABEL cmdunit.standin=\"$key\"" --change 'CMD ["bash"]')
    for e in "$@"; do changes+=(--change "ENV $e"); done
    tar -C "$dir" --numeric-owner -c . | $DOCKER import "${changes[@]}" - "$name" >/dev/null
    echo "imported $name ($($DOCKER image inspect -f '{{.Size}}' "$name" | awk '{ printf "%.1f MB", $1 / 1e6 }'))"
}
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

if stale "$RUNTIME_BASE" "$RUNTIME_KEY" || stale "$TOOLCHAIN_IMAGE" "$TOOLCHAIN_KEY"; then
    WORK=$(mktemp -d "$CACHE/standin.XXXXXX")
    rootfs
    if stale "$TOOLCHAIN_IMAGE" "$TOOLCHAIN_KEY"; then
        # The full minbase tree plus a C linker and this machine's toolchain, laid out like the
        # official image (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo).
        cp -a "$WORK/rootfs" "$WORK/build"
        cp /etc/resolv.conf "$WORK/build/etc/resolv.conf"
        chroot "$WORK/build" /usr/bin/env -i PATH="$BASE_PATH" DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends gcc libc6-dev ca-certificates >"$WORK/apt.log" 2>&1 ||
            { tail -n 20 "$WORK/apt.log"; die "installing gcc into the build stand-in failed"; }
        rm -f "$WORK/build/etc/resolv.conf"
        slim "$WORK/build"
        TC=$(basename "$SYSROOT")
        mkdir -p "$WORK/build/usr/local/rustup/toolchains/$TC" "$WORK/build/usr/local/cargo/bin"
        tar -C "$SYSROOT" --exclude=./share/doc -c . | tar -C "$WORK/build/usr/local/rustup/toolchains/$TC" -x
        for tool in cargo rustc rustdoc; do
            ln -s "../../rustup/toolchains/$TC/bin/$tool" "$WORK/build/usr/local/cargo/bin/$tool"
        done
        "$WORK/build/usr/local/cargo/bin/rustc" --version >/dev/null || die "copied toolchain does not run"
        import "$WORK/build" "$TOOLCHAIN_IMAGE" "$TOOLCHAIN_KEY" \
            "RUSTUP_HOME=/usr/local/rustup" "CARGO_HOME=/usr/local/cargo" "PATH=/usr/local/cargo/bin:$BASE_PATH"
        rm -rf "$WORK/build"
    fi
    if stale "$RUNTIME_BASE" "$RUNTIME_KEY"; then
        slim "$WORK/rootfs"
        import "$WORK/rootfs" "$RUNTIME_BASE" "$RUNTIME_KEY" "PATH=$BASE_PATH"
    fi
    rm -rf "$WORK"
    WORK=
fi
if stale "$BUILD_BASE" "$BUILD_KEY"; then
    # The toolchain image plus the host's trust store, committed under the Rust image's name.
    c=$($DOCKER create "$TOOLCHAIN_IMAGE")
    $DOCKER cp "$CA_BUNDLE" "$c:$CA_BUNDLE"
    $DOCKER commit --change "LABEL cmdunit.standin=\"$BUILD_KEY\"" "$c" "$BUILD_BASE" >/dev/null
    $DOCKER rm "$c" >/dev/null
    echo "committed $BUILD_BASE (toolchain image + host CA bundle)"
fi
echo "stand-ins: $RUNTIME_BASE = [$RUNTIME_KEY]; $BUILD_BASE = [$BUILD_KEY]"
RUNTIME_BASE_MB=$($DOCKER image inspect -f '{{.Size}}' "$RUNTIME_BASE" | awk '{ printf "%.1f", $1 / 1e6 }')

# ---------------------------------------------------------------- 3. build
step "docker build"
# The build unpacks the crates and compiles them in a container layer (about 2 GB at its peak);
# a full disk fails deep inside the build with a tar error, so say it plainly first.
NEED_MB=4000
free_mb=$(df -Pm "$CACHE/data" | awk 'NR == 2 { print $4 }')
[ "$free_mb" -ge "$NEED_MB" ] ||
    die "only ${free_mb} MB free under $CACHE/data; the build needs about ${NEED_MB} MB"
build_args=(--network host -t "$IMAGE" .)
[ "${DOCKER_CHECK_NO_CACHE:-0}" = 1 ] && build_args=(--no-cache "${build_args[@]}")
BUILD_START=$(date +%s)
$DOCKER build "${build_args[@]}" 2>&1 | tee "$RUNDIR/build.log" || die "docker build failed"
BUILD_S=$(($(date +%s) - BUILD_START))

# ---------------------------------------------------------------- 4. the image itself
step "image checks"
$DOCKER run --rm "$IMAGE" --help >"$RUNDIR/help.txt" || die "docker run cmdunit --help failed"
grep -q 'Usage:' "$RUNDIR/help.txt" || die "docker run cmdunit --help printed no usage"
VERSION=$($DOCKER run --rm "$IMAGE" --version) || die "docker run cmdunit --version failed"
RUN_UID=$($DOCKER run --rm --entrypoint id "$IMAGE" -u)
[ "$RUN_UID" != 0 ] || die "the image runs as root"
SIZE_BYTES=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
SIZE_MB=$(awk -v b="$SIZE_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "$VERSION; runs as uid $RUN_UID; image size $SIZE_MB MB (base $RUNTIME_BASE_MB MB)"
awk -v s="$SIZE_MB" -v m="$MAX_MB" 'BEGIN { exit !(s < m) }' || die "image is $SIZE_MB MB, limit $MAX_MB MB"

# ---------------------------------------------------------------- 5. end to end
step "emulator + batches"
$DOCKER network create "$NET" >/dev/null
$DOCKER volume create "$VOL" >/dev/null
$DOCKER run -d --name "$FWD" --network "$NET" "$IMAGE" \
    serve --bind 0.0.0.0 --time-scale "$TIME_SCALE" >/dev/null
# Wait until the forwarding unit accepts connections, seen from the network the batch uses.
$DOCKER run --rm --network "$NET" --entrypoint bash "$IMAGE" -c \
    "for i in \$(seq 100); do (exec 3<>/dev/tcp/$FWD/5000) 2>/dev/null && exit 0; sleep 0.2; done; exit 1" ||
    { $DOCKER logs "$FWD" 2>&1 | tail -n 20; die "the emulator container never listened on $FWD:5000"; }

RUN_LINES=()
batch() { # batch ARGS...: `cmdunit N ARGS` against the emulator container; checks every request succeeded
    local t json ok failed policy makespan
    t=$(date +%s)
    json=$($DOCKER run --rm --name cmdunit-check-run --network "$NET" -e "CMDUNIT_FORWARDER=http://$FWD:5000" \
        -v "$VOL:/data/results" "$IMAGE" "$N" --time-scale "$TIME_SCALE" --format json --quiet "$@") ||
        { $DOCKER logs "$FWD" 2>&1 | tail -n 20; die "docker run cmdunit $N $* exited non-zero"; }
    ok=$(jq -er '.ok' <<<"$json") || die "no .ok in the JSON of cmdunit $N $*: $json"
    failed=$(jq -er '.failed' <<<"$json") || die "no .failed in the JSON of cmdunit $N $*: $json"
    policy=$(jq -r '.policy // "?"' <<<"$json")
    makespan=$(jq -r '(.makespan_ms // 0) | round' <<<"$json")
    if [ "$ok" != "$N" ] || [ "$failed" != 0 ]; then
        die "cmdunit $N $*: ok=$ok failed=$failed (want ok=$N failed=0)"
    fi
    RUN_LINES+=("$(printf 'docker run cmdunit %s %-27s ok=%s failed=%s policy=%s makespan_ms=%s wall=%ss' \
        "$N" "$*" "$ok" "$failed" "$policy" "$makespan" $(($(date +%s) - t)))")
    echo "${RUN_LINES[-1]}"
}
batch
batch --policy per-region-queues
# Both run folders landed in the mounted volume, written by the non-root user.
SUMMARIES=$($DOCKER run --rm -v "$VOL:/data/results" --entrypoint bash "$IMAGE" -c \
    'ls -d results/runs/*/summary.json 2>/dev/null | wc -l')
[ "$SUMMARIES" -ge 2 ] || die "expected 2 run folders with summary.json in the volume, found $SUMMARIES"
echo "run folders in the volume: $SUMMARIES"

# ---------------------------------------------------------------- 6. compose.yaml as written
step "compose"
# compose.yaml names the image `cmdunit`; its batch is `cmdunit 800 --policy per-region-queues`.
$DOCKER tag "$IMAGE" cmdunit
"${COMPOSE[@]}" config -q || die "compose.yaml does not validate"
export CMDUNIT_TIME_SCALE=$TIME_SCALE
# Publish on a free loopback port, not the host's 5000 (which may be taken).
export CMDUNIT_PUBLISH=127.0.0.1:
"${COMPOSE[@]}" up --no-build --abort-on-container-exit --exit-code-from cmdunit >"$RUNDIR/compose.log" 2>&1 ||
    { tail -n 30 "$RUNDIR/compose.log"; die "docker compose up: the cmdunit service failed"; }
COMPOSE_SUMMARY=$($DOCKER run --rm -v cmdunit-check_results:/data/results --entrypoint bash "$IMAGE" -c \
    'cat results/runs/*/summary.json') || die "the compose batch left no summary.json in its volume"
c_ok=$(jq -er .ok <<<"$COMPOSE_SUMMARY") || die "no .ok in the compose batch's summary.json"
c_failed=$(jq -er .failed <<<"$COMPOSE_SUMMARY") || die "no .failed in the compose batch's summary.json"
if [ "$c_ok" != 800 ] || [ "$c_failed" != 0 ]; then
    die "compose batch: ok=$c_ok failed=$c_failed (want ok=800 failed=0)"
fi
COMPOSE_LINE="docker compose up (forwarder + cmdunit 800 --policy per-region-queues): ok=$c_ok failed=$c_failed, summary.json in the compose volume"
echo "$COMPOSE_LINE"
"${COMPOSE[@]}" down --volumes --timeout 2 >/dev/null 2>&1

# ---------------------------------------------------------------- 7. report
step "done"
TOTAL_S=$(($(date +%s) - T0))
mkdir -p results
{
    echo "# scripts/docker-check.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "engine: $(dockerd --version) ($started); client: $($DOCKER --version)"
    echo "bases (local stand-ins): $RUNTIME_BASE = debootstrap minbase $SUITE, slimmed ($RUNTIME_BASE_MB MB);"
    echo "  $BUILD_BASE = the same plus gcc and $RUSTC_VERSION"
    echo "image: $VERSION, runs as uid $RUN_UID, size $SIZE_MB MB (limit $MAX_MB MB)"
    echo "docker build: ${BUILD_S}s"
    echo "emulator container: cmdunit serve --bind 0.0.0.0 --time-scale $TIME_SCALE (network $NET)"
    printf '%s\n' "${RUN_LINES[@]}"
    echo "run folders with summary.json in the mounted volume: $SUMMARIES"
    echo "$COMPOSE_LINE"
    echo "step timings:"
    printf '  %s\n' "${TIMINGS[@]}"
    echo "total: ${TOTAL_S}s"
} >"$REPORT"
cat "$REPORT"
echo "docker-check: OK (image $SIZE_MB MB, $N/$N requests ok, ${TOTAL_S}s)"
