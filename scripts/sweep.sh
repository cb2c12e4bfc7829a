#!/usr/bin/env bash
# The policy sweep behind the report: every policy × N × repetition against the embedded
# emulator (or a given forwarding unit), one run folder with summary.json per run.
#
#   scripts/sweep.sh [phase...]      phases: main faults scale timescale (default: all four)
#
# Layout (what `cmdunit report` reads):
#   results/sweep/<topology>/<policy>/n<N>-r<R>/summary.json   main (default, no-ceiling) + faults
#   results/scale/k<K>/<policy>/n<N>-r<R>/summary.json         K forwarding units
#   results/timescale/s<F>/<policy>/n<N>-r<R>/summary.json     time-scale validation
# Resumable: a run whose summary.json exists is skipped, so an interrupted sweep continues where
# it stopped. Every policy of a block (topology × N, or K, or scale) plans with the same full
# calibration, measured once when the block starts (`--recalibrate --calibration FILE`) and reused
# by its runs, so policies are compared on the same picture of the system (as in
# scripts/bench-policies.sh). Runs are made with --no-charts; requests.csv is kept only for the
# default topology at N = 1000, repetition 1 (the report's completion-time CDFs), so the committed
# results stay small and the report still regenerates from them.
#
# Settings (environment):
#   SWEEP_NS="1 10 50 100 200 500 1000 2000 5000"   batch sizes
#   SWEEP_REPS=3                 repetitions (seed = repetition)
#   SWEEP_SCALE=0.2              emulator time scale (figures stay in model ms)
#   SWEEP_POLICIES=""            default: every policy of `cmdunit policies`
#   SWEEP_TOPOLOGIES="default no-ceiling"   topologies/<name>.toml for the main phase
#   FAULT_TOPOLOGIES="slow-machine machine-down slow-machine-no-ceiling machine-down-no-ceiling"
#   FAULT_NS="10 100 1000"  FAULT_REPS=1
#   SCALE_KS="1 2 3 5 8"  SCALE_NS="1000 5000"  SCALE_POLICY=auto  SCALE_REPS=1
#   TIMESCALE_N=1000  TIMESCALE_POLICY=per-region-queues  TIMESCALE_REF=1  TIMESCALE_REPS=1
#   SWEEP_FORWARDER=URL          measure a running forwarding unit instead of the emulator
#                                (main phase only; topology name "forwarder")
#   SWEEP_OUT=results            output root
#   CMDUNIT=target/release/cmdunit   the binary (built with cargo --release when missing)
#   SWEEP_CI=1                   reduced grid for CI: N 1 100 1000, 1 repetition, scale 0.02,
#                                default topology only, faults at N 100, K 1 and 5 at N 1000,
#                                time-scale reference at 0.2 instead of 1
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${SWEEP_CI:-0}" == 1 ]]; then
    : "${SWEEP_NS:=1 100 1000}" "${SWEEP_REPS:=1}" "${SWEEP_SCALE:=0.05}"
    : "${SWEEP_TOPOLOGIES:=default}" "${FAULT_NS:=100}" "${SCALE_KS:=1 5}" "${SCALE_NS:=1000}"
    : "${TIMESCALE_REF:=0.2}"
fi
NS=${SWEEP_NS:-1 10 50 100 200 500 1000 2000 5000}
REPS=${SWEEP_REPS:-3}
SCALE=${SWEEP_SCALE:-0.2}
TOPOLOGIES=${SWEEP_TOPOLOGIES:-default no-ceiling}
FAULT_TOPOLOGIES=${FAULT_TOPOLOGIES:-slow-machine machine-down slow-machine-no-ceiling machine-down-no-ceiling}
FAULT_NS=${FAULT_NS:-10 100 1000}
FAULT_REPS=${FAULT_REPS:-1}
SCALE_KS=${SCALE_KS:-1 2 3 5 8}
SCALE_NS=${SCALE_NS:-1000 5000}
SCALE_POLICY=${SCALE_POLICY:-auto}
SCALE_REPS=${SCALE_REPS:-1}
TIMESCALE_N=${TIMESCALE_N:-1000}
TIMESCALE_POLICY=${TIMESCALE_POLICY:-per-region-queues}
TIMESCALE_REF=${TIMESCALE_REF:-1}
TIMESCALE_REPS=${TIMESCALE_REPS:-1}
OUT=${SWEEP_OUT:-results}
CMDUNIT=${CMDUNIT:-target/release/cmdunit}

if [[ ! -x "$CMDUNIT" ]]; then
    echo "sweep: building $CMDUNIT" >&2
    cargo build --release --quiet
fi
POLICIES=${SWEEP_POLICIES:-$("$CMDUNIT" policies | awk '{print $1}')}
PHASES=${*:-main faults scale timescale}

done_runs=0
skipped=0
failed_runs=0
started=$(date +%s)

# run DIR LABEL -- cmdunit arguments...
run() {
    local dir=$1 label=$2
    shift 3
    if [[ -f "$dir/summary.json" ]]; then
        skipped=$((skipped + 1))
        return
    fi
    mkdir -p "$dir"
    local t0 line
    t0=$(date +%s%N)
    # Exit 1 means some requests failed; the run still wrote its summary, which is data.
    if line=$("$CMDUNIT" "$@" --no-charts --no-cache --format json --quiet --out "$dir" 2>"$dir/stderr.txt"); then :; fi
    if [[ -f "$dir/summary.json" ]]; then
        rm -f "$dir/stderr.txt"
        done_runs=$((done_runs + 1))
        printf '[%4ds] %-58s makespan %9.0f ms  ok %5s  (%d ms wall)\n' \
            $(($(date +%s) - started)) "$label" \
            "$(sed -n 's/.*"makespan_ms": *\([0-9.]*\).*/\1/p' "$dir/summary.json" | head -1)" \
            "$(sed -n 's/.*"ok": *\([0-9]*\).*/\1/p' "$dir/summary.json" | head -1)" \
            $((($(date +%s%N) - t0) / 1000000))
    else
        failed_runs=$((failed_runs + 1))
        echo "sweep: FAILED $label (see $dir/stderr.txt)" >&2
    fi
    # Keep requests.csv only where the report needs it.
    if [[ "$dir" != */sweep/default/*/n1000-r1 ]]; then rm -f "$dir/requests.csv"; fi
    : "$line"
}

# calibrate FILE LABEL -- system arguments: one full calibration for a block, unless every run of
# the block is already done (the caller checks).
calibrate() {
    local file=$1 label=$2
    shift 3
    mkdir -p "$(dirname "$file")"
    if "$CMDUNIT" 200 --policy fastest "$@" --recalibrate --calibration "$file" --no-charts --no-cache \
        --format json --quiet --out "$(dirname "$file")/calibration-run" >/dev/null 2>&1; then
        echo "         calibrated $label"
    else
        echo "sweep: calibration for $label failed; runs will calibrate themselves" >&2
        rm -f "$file"
    fi
}

# block_done DIR... : every listed run folder has its summary.
block_done() {
    local d
    for d in "$@"; do [[ -f "$d/summary.json" ]] || return 1; done
}

cal_arg() { [[ -f "$1" ]] && echo "--calibration $1"; true; }

target_args() { # topology name -> cmdunit arguments for the system
    if [[ -n "${SWEEP_FORWARDER:-}" ]]; then
        echo "--forwarder $SWEEP_FORWARDER"
    else
        echo "--emulate --awake --topology topologies/$1.toml --time-scale $2"
    fi
}

phase_main() {
    local topologies=$TOPOLOGIES
    [[ -n "${SWEEP_FORWARDER:-}" ]] && topologies=forwarder
    local total=0 t p n r
    for t in $topologies; do for p in $POLICIES; do for n in $NS; do for r in $(seq 1 "$REPS"); do
        total=$((total + 1)); done; done; done; done
    echo "sweep main: $total runs (topologies: $topologies; N: $NS; $REPS repetitions; scale $SCALE)"
    local i=0 cal dirs
    for t in $topologies; do for n in $NS; do
        cal="$OUT/sweep/$t/calibration/n$n.json"
        dirs=()
        for r in $(seq 1 "$REPS"); do for p in $POLICIES; do dirs+=("$OUT/sweep/$t/$p/n$n-r$r"); done; done
        # shellcheck disable=SC2046
        block_done "${dirs[@]}" || calibrate "$cal" "$t N=$n" -- $(target_args "$t" "$SCALE")
        for r in $(seq 1 "$REPS"); do for p in $POLICIES; do
            i=$((i + 1))
            # shellcheck disable=SC2046
            run "$OUT/sweep/$t/$p/n$n-r$r" "main $i/$total $t $p N=$n r$r" -- \
                "$n" --policy "$p" $(target_args "$t" "$SCALE") --seed "$r" $(cal_arg "$cal")
        done; done
    done; done
}

phase_faults() {
    [[ -n "${SWEEP_FORWARDER:-}" ]] && return
    local i=0 total t p n r
    total=$(( $(wc -w <<<"$FAULT_TOPOLOGIES") * $(wc -w <<<"$POLICIES") * $(wc -w <<<"$FAULT_NS") * FAULT_REPS ))
    echo "sweep faults: $total runs ($FAULT_TOPOLOGIES; N: $FAULT_NS)"
    local cal dirs
    for t in $FAULT_TOPOLOGIES; do for n in $FAULT_NS; do
        cal="$OUT/sweep/$t/calibration/n$n.json"
        dirs=()
        for r in $(seq 1 "$FAULT_REPS"); do for p in $POLICIES; do dirs+=("$OUT/sweep/$t/$p/n$n-r$r"); done; done
        # shellcheck disable=SC2046
        block_done "${dirs[@]}" || calibrate "$cal" "$t N=$n" -- $(target_args "$t" "$SCALE")
        for r in $(seq 1 "$FAULT_REPS"); do for p in $POLICIES; do
            i=$((i + 1))
            # shellcheck disable=SC2046
            run "$OUT/sweep/$t/$p/n$n-r$r" "faults $i/$total $t $p N=$n r$r" -- \
                "$n" --policy "$p" $(target_args "$t" "$SCALE") --seed "$r" $(cal_arg "$cal")
        done; done
    done; done
}

phase_scale() {
    [[ -n "${SWEEP_FORWARDER:-}" ]] && return
    local i=0 total k n r
    total=$(( $(wc -w <<<"$SCALE_KS") * $(wc -w <<<"$SCALE_NS") * SCALE_REPS ))
    echo "sweep scale: $total runs (K: $SCALE_KS; N: $SCALE_NS; policy $SCALE_POLICY)"
    local cal dirs
    for k in $SCALE_KS; do
        cal="$OUT/scale/k$k/calibration/k$k.json"
        dirs=()
        for n in $SCALE_NS; do for r in $(seq 1 "$SCALE_REPS"); do dirs+=("$OUT/scale/k$k/$SCALE_POLICY/n$n-r$r"); done; done
        # shellcheck disable=SC2046
        block_done "${dirs[@]}" || calibrate "$cal" "K=$k" -- $(target_args default "$SCALE") --forwarders "$k"
        for n in $SCALE_NS; do for r in $(seq 1 "$SCALE_REPS"); do
            i=$((i + 1))
            # shellcheck disable=SC2046
            run "$OUT/scale/k$k/$SCALE_POLICY/n$n-r$r" "scale $i/$total K=$k N=$n r$r" -- \
                "$n" --policy "$SCALE_POLICY" $(target_args default "$SCALE") --forwarders "$k" \
                --seed "$r" $(cal_arg "$cal")
        done; done
    done
}

phase_timescale() {
    [[ -n "${SWEEP_FORWARDER:-}" ]] && return
    echo "sweep timescale: N=$TIMESCALE_N $TIMESCALE_POLICY at scale $TIMESCALE_REF and $SCALE"
    local s r cal dirs
    for s in "$TIMESCALE_REF" "$SCALE"; do
        cal="$OUT/timescale/s$s/calibration/s$s.json"
        dirs=()
        for r in $(seq 1 "$TIMESCALE_REPS"); do dirs+=("$OUT/timescale/s$s/$TIMESCALE_POLICY/n$TIMESCALE_N-r$r"); done
        # shellcheck disable=SC2046
        block_done "${dirs[@]}" || calibrate "$cal" "scale $s" -- $(target_args default "$s")
        for r in $(seq 1 "$TIMESCALE_REPS"); do
            # shellcheck disable=SC2046
            run "$OUT/timescale/s$s/$TIMESCALE_POLICY/n$TIMESCALE_N-r$r" "timescale scale=$s r$r" -- \
                "$TIMESCALE_N" --policy "$TIMESCALE_POLICY" $(target_args default "$s") --seed "$r" \
                $(cal_arg "$cal")
        done
    done
}

for phase in $PHASES; do
    case $phase in
    main | faults | scale | timescale) "phase_$phase" ;;
    *)
        echo "sweep: unknown phase '$phase' (main, faults, scale, timescale)" >&2
        exit 2
        ;;
    esac
done
echo "sweep: $done_runs runs done, $skipped already there, $failed_runs failed, $(($(date +%s) - started)) s"
[[ $failed_runs == 0 ]]
