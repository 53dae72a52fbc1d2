#!/bin/bash
# Interleaved A/B pairs: the same bench.sh jobs on two remapfs binaries, one pair after the
# other, alternating which side goes first, so the VM's drift does not always favour one side.
# This is how each change in bench/README.md's table was measured before it was kept.
#
#   sudo PAIRS=3 VIEWS="file loopdio" JOBS="sw1m rr4k_qd16" bench/ab.sh OLD_BIN NEW_BIN [SIZE]
#
# Environment: PAIRS (default 3), A_OPTS / B_OPTS (extra -o options for each side), FROM (a
# directory with remapfs.db and remapfs.spare to start every mount from, e.g. perf-report.sh's
# $WORK/remapfs-1pct; default a fresh database and spare),
# everything bench.sh reads (VIEWS, JOBS, RUNTIME, RAMP, WORK, SEQ_QD, ...). Prints one row per
# view and job: each pair's throughput for A and B (IOPS for 4k jobs, MB/s for 1M jobs) and the
# median of the pairs' B/A ratios, and the daemon's CPU.
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BENCH_SH=${BENCH_SH:-$REPO/../shared/bench/bench.sh}
PAIRS=${PAIRS:-3}
export WORK=${WORK:-/tmp/peerbench}

die() { echo "ab.sh: $*" >&2; exit 1; }
[[ $# -ge 2 ]] || die "usage: ab.sh A_BIN B_BIN [SIZE]"
A_BIN=$(realpath "$1") B_BIN=$(realpath "$2") SIZE=${3:-2G}
[[ $(id -u) -eq 0 ]] || die "must run as root (bench.sh needs losetup, drop_caches, FUSE)"
[[ -x $A_BIN && -x $B_BIN ]] || die "both binaries must exist and be executable"
[[ -x $BENCH_SH ]] || die "$BENCH_SH not found (set BENCH_SH=)"
[[ $PAIRS =~ ^[1-9][0-9]?$ ]] || die "PAIRS=$PAIRS is not a whole number from 1 to 99"

OUT=$WORK/ab-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

FROM=${FROM:-}
[[ -z $FROM || (-f $FROM/remapfs.db && -f $FROM/remapfs.spare) ]] || die "FROM=$FROM has no remapfs.db and remapfs.spare"

# shellcheck source=bench/mount-cmd.sh
source "$REPO/bench/mount-cmd.sh"

run_side() {    # run_side NAME BIN OPTS DIR
    TARGETS=" " EXTRA_NAME=$1 EXTRA_MOUNT_CMD=$(remapfs_mount_cmd "$2" "$3" "$FROM" 256M) EXTRA_FILE='{MNT}/disk.img' \
        REPEAT="" OUT=$4 "$BENCH_SH" "$SIZE" >"$4.log" 2>&1 || die "bench.sh failed, see $4.log"
    [[ -f $4/results.tsv ]] || die "bench.sh wrote no results.tsv in $4"
}

for ((p = 1; p <= PAIRS; p++)); do
    order=(A B)
    ((p % 2 == 0)) && order=(B A)
    for side in "${order[@]}"; do
        if [[ $side == A ]]; then bin=$A_BIN opts=${A_OPTS:-}; else bin=$B_BIN opts=${B_OPTS:-}; fi
        echo "[$(date +%T)] pair $p: $side" >&2
        run_side "$side" "$bin" "$opts" "$OUT/p$p-$side"
    done
done

python3 - "$OUT" "$PAIRS" <<'EOF'
import csv, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
vals = {}  # (view, job) -> {side: [per pair]}
for p in range(1, pairs + 1):
    for side in "AB":
        with open(f"{out}/p{p}-{side}/results.tsv") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                view = row["label"].split(".", 1)[1]
                v = float(row["iops"] if "4k" in row["job"] else row["mbps"])
                if row["err"] != "0":
                    v = float("nan")
                s = vals.setdefault((view, row["job"]), {"A": [], "B": [], "cpuA": [], "cpuB": []})
                s[side].append(v)
                s["cpu" + side].append(float(row["daemon_cpu_pct"]))
fmt = lambda v: f"{v/1000:.1f}k" if v >= 10000 else f"{v:.0f}"
print(f"results: {out}\n")
print("| view | job | A per pair | B per pair | B/A median | daemon CPU % A / B (median) |")
print("|---|---|---|---|---|---|")
for (view, job), s in vals.items():
    ratios = [b / a for a, b in zip(s["A"], s["B"]) if a > 0]
    med = f"{statistics.median(ratios):.2f}" if ratios else "-"
    print(f"| {view} | {job} | {' '.join(map(fmt, s['A']))} | {' '.join(map(fmt, s['B']))} | {med} | {statistics.median(s['cpuA']):.0f} / {statistics.median(s['cpuB']):.0f} |")
EOF
