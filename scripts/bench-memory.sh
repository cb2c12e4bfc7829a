#!/usr/bin/env bash
# A batch of N = 1,000,000 against a topology that models no delays
# (topologies/no-delay.toml) must complete with peak memory under 200 MB.
#
# Runs `cmdunit N --emulate` (release build) under /usr/bin/time -v and reports the peak resident
# set size of the whole process — the embedded emulator's threads and buffers included, so the
# figure is an upper bound on cmdunit's own. Prints the figures and writes them to
# results/bench-memory.json (the README quotes that file).
#
#   scripts/bench-memory.sh            # N = 1,000,000
#   N=100000 scripts/bench-memory.sh   # a quicker look
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
POLICY=${POLICY:-machine-rr}
LIMIT_MB=200
OUT=results/bench-memory.json

if [[ ! -x /usr/bin/time ]]; then
    echo "bench-memory: /usr/bin/time (GNU time) is needed" >&2
    exit 1
fi
cargo build --release --quiet
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT

echo "bench-memory: N = $N, policy $POLICY, topologies/no-delay.toml (in-process emulator)" >&2
/usr/bin/time -v target/release/cmdunit "$N" --emulate --awake \
    --topology topologies/no-delay.toml --policy "$POLICY" \
    --out "$run_dir/run" --no-charts --format json -q \
    >"$run_dir/summary.json" 2>"$run_dir/time.txt" || {
    cat "$run_dir/time.txt" >&2
    exit 1
}

python3 - "$run_dir" "$N" "$POLICY" "$LIMIT_MB" "$OUT" <<'PY'
import json, sys, os
run_dir, n, policy, limit_mb, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
summary = json.load(open(os.path.join(run_dir, "summary.json")))
fields = {}
for line in open(os.path.join(run_dir, "time.txt")):
    key, _, value = line.strip().rpartition(": ")
    fields[key] = value
peak_kb = int(fields["Maximum resident set size (kbytes)"])
rows = sum(1 for _ in open(os.path.join(run_dir, "run", "requests.csv"))) - 1
wall = fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"]
parts = [float(p) for p in wall.split(":")]
wall_s = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
result = {
    "n": n,
    "policy": summary["policy"],
    "topology": "no-delay",
    "ok": summary["ok"],
    "failed": summary["failed"],
    "requests_csv_rows": rows,
    "peak_rss_mb": round(peak_kb / 1024, 1),
    "limit_mb": limit_mb,
    "within_limit": peak_kb / 1024 < limit_mb,
    "wall_s": round(wall_s, 1),
    "requests_per_s": round(n / wall_s),
    "measured": "peak RSS of the whole cmdunit process (GNU time), embedded emulator included",
}
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"N = {n:,}  policy {result['policy']}  ok {result['ok']:,}  failed {result['failed']:,}  rows {rows:,}")
print(f"peak memory {result['peak_rss_mb']} MB (limit {limit_mb:.0f} MB: {'ok' if result['within_limit'] else 'OVER'})")
print(f"wall {result['wall_s']} s, {result['requests_per_s']:,} requests/s")
print(f"written to {out}")
if not result["within_limit"] or result["ok"] + result["failed"] != n or rows != n:
    sys.exit(1)
PY
