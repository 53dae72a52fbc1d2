#!/usr/bin/env bash
# perf-report.sh - build remapfs (release), benchmark it against the raw backing and the FUSE
# peers with the shared bench.sh, again with 1 % of its sectors remapped, run the
# micro-benchmarks, and write one report with the ratios of issue 6's targets.
#
# Usage: sudo bench/perf-report.sh [SIZE]        (SIZE of the backing file, default 2G)
#
# Environment (everything bench.sh understands is passed through: RUNTIME, RAMP, VIEWS, JOBS,
# WORK, SEQ_QD ...), plus:
#   BENCH_SH=../shared/bench/bench.sh  (relative to the repository root)
#   BUILD_DIR=build-bench               meson build dir (release)
#   RESULTS_DIR=bench/results/perf-<stamp>   report.md + the small files, for committing
#   TARGETS="raw pt qsd nbd"            bench.sh targets of the first run (remapfs is added: after
#                                       raw in odd rounds, last in even ones)
#   REMAPFS_OPTS=""                     extra -o options for remapfs (comma separated)
#   ROUNDS=3                            rounds of (peers + remapfs, then remapfs-1pct paired with
#                                       remapfs job by job); the report takes medians and counts the
#                                       rounds each target was met in
#   REMAPPED_PERCENT=1                  share of the image's sectors remapped in the second run
#   PAIRED_PER_ROUND=2                  paired remapped runs per round; one pair per job per round
#                                       spreads 0.5-1.3 on this VM, and the report's ratio is the
#                                       median over all pairs (each pass ~4 min a round)
#   SKIP_PEERS=1 / SKIP_REMAPPED=1 / SKIP_MICRO=1 / SKIP_SPARSE=1 / SKIP_FRESH=1   leave a part out
#   FUSE_URING=1                        fuse.enable_uring for the run (put back at the end): the
#                                       kernel then offers FUSE over io_uring, which remapfs takes
#                                       and the peers (libfuse 3.14, qemu 7.2) do not; 0: /dev/fuse
#   FRESH_PAIRS=2                       pairs per job of bench/fresh-pages.sh (what this VM charges
#                                       for the fresh pages a buffered loop fills; with loopbuf only)
#
# Layout: the spare area is a separate file ({WORK}/remapfs.spare), so that the image has exactly
# the backing's size (bench.sh runs fio with --size=<backing size>). The first run starts every
# mount from a fresh database. The second part ("remapfs-1pct") mounts a copy of a database and
# spare prepared once with `remapctl remap` of 1 % of the sectors, spread over the image
# (one random sector in every 100; cached in {WORK}/remapfs-1pct/ for the next run), each job
# right next to the same job on a plain remapfs (see run_paired).
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

BENCH_SH=${BENCH_SH:-../shared/bench/bench.sh}
[[ $BENCH_SH == /* ]] || BENCH_SH=$REPO/$BENCH_SH
BUILD_DIR=${BUILD_DIR:-build-bench}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$REPO/$BUILD_DIR
STAMP=$(date +%Y%m%d-%H%M%S)
SIZE=${1:-2G}
# The knobs that change what is measured, as given: the report's command line repeats them.
GIVEN_KNOBS=""
for knob in TARGETS VIEWS JOBS RUNTIME RAMP SEQ_QD REMAPFS_OPTS REMAPPED_PERCENT SPARE_SIZE \
            PAIRED_PER_ROUND SKIP_PEERS SKIP_REMAPPED SKIP_MICRO SKIP_SPARSE SKIP_FRESH FRESH_PAIRS FUSE_URING; do
    [[ -n ${!knob:-} ]] && GIVEN_KNOBS+="$knob=\"${!knob}\" "
done
export WORK=${WORK:-/tmp/peerbench}
RESULTS_DIR=${RESULTS_DIR:-bench/results/perf-$STAMP}
[[ $RESULTS_DIR == /* ]] || RESULTS_DIR=$REPO/$RESULTS_DIR
PEER_TARGETS=${TARGETS:-raw pt qsd nbd}
unset TARGETS
REMAPFS_OPTS=${REMAPFS_OPTS:-}
REMAPPED_PERCENT=${REMAPPED_PERCENT:-1}
ROUNDS=${ROUNDS:-3}
SPARE_SIZE=${SPARE_SIZE:-256M}
# What the paired runs and the report cover: bench.sh's views and jobs, all unless given.
RUN_VIEWS=${VIEWS:-file loopdio loopbuf}
RUN_JOBS=${JOBS:-rr4k_qd1 rw4k_qd1 rr4k_qd16 rw4k_qd16 sr1m sw1m}

die() { echo "perf-report.sh: $*" >&2; exit 1; }
log() { echo "[$(date +%T)] perf-report: $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "must run as root (bench.sh needs losetup, drop_caches, FUSE)"
[[ -x $BENCH_SH ]] || die "$BENCH_SH not found or not executable (set BENCH_SH=)"
for tool in meson ninja fio jq losetup fusermount3 python3; do
    command -v "$tool" >/dev/null || die "$tool missing (see ../shared/bench/README.md for apt-get install)"
done
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 && $ROUNDS -le 20 ]] || die "ROUNDS=$ROUNDS is not a whole number from 1 to 20"
PAIRED_PER_ROUND=${PAIRED_PER_ROUND:-2}
[[ $PAIRED_PER_ROUND =~ ^[1-9]$ ]] || die "PAIRED_PER_ROUND=$PAIRED_PER_ROUND is not a whole number from 1 to 9"
[[ $REMAPPED_PERCENT =~ ^[0-9]+$ && $REMAPPED_PERCENT -ge 1 && $REMAPPED_PERCENT -le 50 ]] ||
    die "REMAPPED_PERCENT=$REMAPPED_PERCENT is not a whole number from 1 to 50"
# A remapfs left serving the benchmark's backing makes every remapfs mount of the run fail.
busy=$(findmnt -rn -t fuse.remapfs -o SOURCE,TARGET | grep -F "remapfs:$WORK/src/backing.img " || true)
[[ -z $busy ]] || die "a remapfs still serves the benchmark's backing ($busy): unmount it first"

# ---------------------------------------------------------------- build (release)
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
    rm -rf "$BUILD_DIR"     # a half-configured dir from a failed setup
    meson setup "$BUILD_DIR" --wrap-mode=nodownload -Dbuildtype=release
fi
ninja -C "$BUILD_DIR" >/dev/null
REMAPFS=$BUILD_DIR/src/remapfs
REMAPCTL=$BUILD_DIR/src/remapctl
TABLE_BENCH=$BUILD_DIR/bench/remapfs-table-bench
[[ -x $REMAPFS && -x $REMAPCTL ]] || die "$REMAPFS or $REMAPCTL was not built"

mkdir -p "$WORK" "$RESULTS_DIR"
RUNS1=()   # bench.sh result dirs with the peers, one per round
RUNS2=()   # ... with remapfs-1pct
MICRO=()
EXTRA=()

# Everything this script starts itself is stopped by PID / unmounted by path on exit.
DAEMON_LOG=$WORK/perf-report.daemon.log
# shellcheck source=bench/own-remapfs.sh
source "$REPO/bench/own-remapfs.sh"

# FUSE over io_uring is a kernel-wide switch: set for the run, put back as found.
FUSE_URING=${FUSE_URING:-1}
[[ $FUSE_URING == [01] ]] || die "FUSE_URING=$FUSE_URING is not 0 or 1"
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_WAS=""
restore_uring() { [[ -n $URING_WAS ]] && echo "$URING_WAS" > "$URING_PARAM" || true; }
if [[ -w $URING_PARAM ]]; then
    URING_WAS=$( [[ $(cat "$URING_PARAM") == Y ]] && echo 1 || echo 0 )
    echo "$FUSE_URING" > "$URING_PARAM"
elif [[ $FUSE_URING == 1 ]]; then
    log "this kernel has no FUSE over io_uring ($URING_PARAM): remapfs serves over /dev/fuse"
fi
trap 'cleanup_own_remapfs; restore_uring' EXIT INT TERM

# shellcheck source=bench/mount-cmd.sh
source "$REPO/bench/mount-cmd.sh"
mount_cmd() { remapfs_mount_cmd "$REMAPFS" "$REMAPFS_OPTS" "$1" "$SPARE_SIZE"; }   # mount_cmd SRC_DIR

run_bench() {   # run_bench NAME OUT TARGETS SRC_DIR
    local name=$1 out=$2 targets=$3 src=$4 rc=0
    log "bench.sh: $name (targets: $targets + $name) -> $out"
    TARGETS=$targets EXTRA_NAME=$name EXTRA_MOUNT_CMD=$(mount_cmd "$src") EXTRA_FILE='{MNT}/disk.img' \
        REPEAT=${REPEAT-raw.file} OUT=$out "$BENCH_SH" "$SIZE" || rc=$?
    [[ -f $out/results.tsv ]] || die "bench.sh ($name, exit $rc) wrote no results.tsv in $out"
    if awk -F'\t' -v n="$name" 'NR > 1 && index($1, n ".") == 1 && $8 != "0" { bad = 1 } END { exit !bad }' "$out/results.tsv"; then
        log "WARNING: some $name jobs failed (err != 0); fio/daemon logs in $out/logs"
    fi
}

# ---------------------------------------------------------------- 1 % remapped
# Prepared once per backing (bench.sh reuses $WORK/src/backing.img): remap one random sector in
# every 100/PERCENT through a live daemon, the way an operator would.
# Sets PREP_DIR (no command substitution: the EXIT trap must see the daemon it starts).
prepare_remapped() {
    local dir=$WORK/remapfs-${REMAPPED_PERCENT}pct backing=$WORK/src/backing.img
    PREP_DIR=$dir
    local marker=$dir/prepared-for
    local want="$(stat -c '%s %i' "$backing")"  # size and inode: bench.sh rewrites it in place
    if [[ -f $marker && $(cat "$marker") == "$want" ]]; then
        log "using the prepared ${REMAPPED_PERCENT} % remapped database in $dir"
        return
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    truncate -s "$SPARE_SIZE" "$dir/remapfs.spare"
    start_remapfs "$backing" "$WORK/mnt/remapfs-prep" "db=$dir/remapfs.db,spare=$dir/remapfs.spare,noscan"
    local sectors
    sectors=$("$REMAPCTL" --mount "$OWN_MNT" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["image_sectors"])')
    local stride=$((100 / REMAPPED_PERCENT)) n=0 lba
    log "remapping one random sector in every $stride of $sectors (takes a minute)"
    for ((base = 0; base + stride <= sectors; base += stride)); do
        lba=$((base + RANDOM % stride))
        "$REMAPCTL" --mount "$OWN_MNT" remap "$lba" >/dev/null
        n=$((n + 1))
    done
    "$REMAPCTL" --mount "$OWN_MNT" status >&2
    stop_remapfs
    echo "$want" > "$marker"
    log "$n sectors remapped"
}

# ---------------------------------------------------------------- 1 % remapped, paired
# The remapped remapfs is compared with a plain one measured seconds apart, not with the peers
# run minutes before: job by job, each pair back to back on fresh mounts, which one goes first
# alternating from pair to pair and round to round. Sequential throughput on this shared VM
# drifts by tens of percent within minutes, and 1 % remapped costs a few percent at most.
# The parts' rows are merged into one results.tsv per round (labels remapfs.* and remapfs-1pct.*).
run_paired() {   # run_paired SEQ OUT   (SEQ counts the paired runs, 1, 2, ...: who goes first)
    local seq=$1 out=$2 k=0 v j first second name
    local pct=remapfs-${REMAPPED_PERCENT}pct
    rm -rf "$out"; mkdir -p "$out/parts"
    for v in $RUN_VIEWS; do
        for j in $RUN_JOBS; do
            if (( (seq + k) % 2 )); then first=remapfs second=$pct; else first=$pct second=remapfs; fi
            for name in $first $second; do
                local src=""; [[ $name == remapfs ]] || src=$PREP_DIR
                ( VIEWS=$v JOBS=$j REPEAT="" run_bench "$name" "$out/parts/$k-$name" extra "$src" ) \
                    >>"$out/parts.log" 2>&1 || die "bench.sh for $name $v $j failed (see $out/parts.log)"
            done
            k=$((k + 1))
        done
    done
    # One header, then every part's rows; notes too (a failed mount is noted there).
    local tsvs=("$out"/parts/*/results.tsv)
    { head -n 1 "${tsvs[0]}"; for f in "${tsvs[@]}"; do tail -n +2 "$f"; done; } > "$out/results.tsv"
    cat "$out"/parts/*/notes.tsv > "$out/notes.tsv" 2>/dev/null || true
    cp "$(ls -d "$out"/parts/*/ | head -n 1)env.txt" "$out/env.txt" 2>/dev/null || true
}

# ---------------------------------------------------------------- rounds
# Where remapfs runs among the targets alternates between rounds: right after raw in odd
# rounds, last in even ones (bench.sh runs targets in the order given). Throughput drifts over
# the ~20 minutes of one bench.sh run (host cache, neighbours), and a fixed order would give that
# drift to the same side every time.
round_targets() {   # round_targets ROUND
    local t out=()
    (( $1 % 2 == 0 )) && { echo "$PEER_TARGETS"; return; }
    for t in $PEER_TARGETS; do
        out+=("$t")
        [[ $t == raw ]] && out+=(extra)
    done
    [[ " ${out[*]} " == *" extra "* ]] || out=(extra "${out[@]}")
    echo "${out[*]}"
}

# Each round: bench.sh with the peers and remapfs, then the paired remapped comparison.
paired_seq=0
for ((round = 1; round <= ROUNDS; round++)); do
    if [[ ${SKIP_PEERS:-0} != 1 ]]; then
        run1=$WORK/results/perf-$STAMP-r$round-peers
        run_bench remapfs "$run1" "$(round_targets "$round")" ""
        RUNS1+=("$run1")
    fi
    if [[ ${SKIP_REMAPPED:-0} != 1 ]]; then
        prepare_remapped   # once; needs the backing bench.sh made
        for ((p = 1; p <= PAIRED_PER_ROUND; p++)); do
            paired_seq=$((paired_seq + 1))   # which side goes first alternates with it
            run2=$WORK/results/perf-$STAMP-r$round-remapped
            if ((PAIRED_PER_ROUND > 1)); then run2+="-$p"; fi
            log "round $round: ${REMAPPED_PERCENT} % remapped vs none, paired job by job -> $run2"
            run_paired "$paired_seq" "$run2"
            RUNS2+=("$run2")
        done
    fi
done

# ---------------------------------------------------------------- 3. micro-benchmarks
if [[ ${SKIP_MICRO:-0} != 1 ]]; then
    if [[ -x $TABLE_BENCH ]]; then
        log "remap table micro-benchmark (1 M remaps)"
        "$TABLE_BENCH" --dir "$WORK" --keep > "$RESULTS_DIR/table-bench.md" 2> "$WORK/table-bench.err" || true
        MICRO+=("$RESULTS_DIR/table-bench.md")
        kept=$(sed -n 's/^remapfs-table-bench: keeping //p' "$WORK/table-bench.err")
        if [[ -n $kept && -f $kept/remapfs.db ]]; then
            # The same database under the real daemon: exec to disk.img served, the first time
            # with the page cache dropped.
            log "daemon mount-to-ready with the 1 M remap database"
            {
                echo "## Daemon mount-to-ready with the 1 M remap database"
                echo
                echo "\`remapfs -f\` on the benchmark's sparse backing, spare and database, from exec until"
                echo "\`disk.img\` is served (scanner on)."
                echo
                echo "| mount | page cache | remaps loaded | mount-to-ready s | VmRSS MiB | target |"
                echo "|---|---|---|---|---|---|"
                for i in 1 2 3; do
                    cache=warm
                    if [[ $i == 1 ]]; then sync; echo 3 > /proc/sys/vm/drop_caches; cache=cold; fi
                    t0=$(date +%s%N)
                    start_remapfs "$kept/backing.img" "$kept/mnt" "db=$kept/remapfs.db,spare=$kept/spare.img"
                    t1=$(date +%s%N)
                    remaps=$("$REMAPCTL" --mount "$OWN_MNT" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["remaps"])')
                    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$OWN_PID/status")
                    stop_remapfs
                    awk -v i="$i" -v c="$cache" -v n="$remaps" -v ns=$((t1 - t0)) -v r="$rss" 'BEGIN {
                        printf "| %d | %s | %d | %.2f | %.1f | ≤ 2 s: %s |\n", i, c, n, ns / 1e9, r / 1024, ns <= 2e9 ? "PASS" : "FAIL" }'
                done
            } > "$RESULTS_DIR/daemon-ready.md"
            MICRO+=("$RESULTS_DIR/daemon-ready.md")
        fi
        [[ -n $kept ]] && rm -rf "$kept"
    else
        log "WARNING: $TABLE_BENCH not built; no table micro-benchmark"
    fi
fi

# ---------------------------------------------------------------- 4. huge sparse backing
# Mount-to-ready and resident memory of a 16 TiB sparse backing next to the 2 GiB one: nothing
# may cost memory or time in proportion to the device size.
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
measure_mount() {   # measure_mount BACKING LABEL -> one markdown row
    local backing=$1 label=$2 dir t0 t1 rss hwm
    dir=$(mktemp -d "$WORK/sparse.XXXXXX")
    truncate -s 64M "$dir/spare"
    t0=$(date +%s%N)
    start_remapfs "$backing" "$dir/mnt" "db=$dir/db,spare=$dir/spare"
    t1=$(date +%s%N)
    # Touch the end of the image so the whole stack has served a request.
    dd if="$OWN_MNT/disk.img" of=/dev/null bs=4096 count=1 iflag=direct \
       skip=$(( $(stat -c %s "$OWN_MNT/disk.img") / 4096 - 1 )) status=none
    sleep 2   # scanner and history threads up and running
    rss=$(vm_kib "$OWN_PID" VmRSS) hwm=$(vm_kib "$OWN_PID" VmHWM)
    stop_remapfs
    rm -rf "$dir"
    awk -v l="$label" -v s="$(numfmt --to=iec "$(stat -c %s "$backing")")" -v ns=$((t1 - t0)) -v r="$rss" -v h="$hwm" \
        'BEGIN { printf "| %s | %s | %.2f | %.1f | %.1f |\n", l, s, ns / 1e9, r / 1024, h / 1024 }'
}
if [[ ${SKIP_SPARSE:-0} != 1 ]]; then
    log "16 TiB sparse backing"
    big=$(mktemp -d "$WORK/huge.XXXXXX")
    # ext4's largest file with 4 KiB blocks is 16 TiB - 4 KiB.
    if truncate -s 16T "$big/backing.img" 2>/dev/null || truncate -s $(( (16 << 40) - 4096 )) "$big/backing.img"; then
        small=$(mktemp -d "$WORK/small.XXXXXX"); truncate -s "$SIZE" "$small/backing.img"
        {
            echo "## Huge sparse backing: mount-to-ready and memory"
            echo
            echo "Fresh database, spare on a separate 64 MiB file, scanner on; RSS 2 s after the first read of the last sector."
            echo
            echo "| backing | size | mount-to-ready s | VmRSS MiB | VmHWM MiB |"
            echo "|---|---|---|---|---|"
            measure_mount "$small/backing.img" "small (sparse)"
            measure_mount "$big/backing.img" "huge (sparse)"
        } > "$RESULTS_DIR/sparse.md"
        rm -rf "$small"
        EXTRA+=("$RESULTS_DIR/sparse.md")
    else
        log "WARNING: cannot create a 16 TiB sparse file in $WORK"
    fi
    rm -rf "$big"
fi

# The buffered-loop 1M jobs fill FUSE's page cache with pages the host has to map in again;
# this part measures that cost on the machine the report ran on.
if [[ ${SKIP_FRESH:-0} != 1 && " $RUN_VIEWS " == *" loopbuf "* ]]; then
    log "fresh pages: what a page-cache fill costs here"
    # bench.sh's prefilled backing; WORK is assigned after it (assignments expand left to right).
    if BIN=$REMAPFS BACKING=$WORK/src/backing.img WORK=$WORK/fresh-pages PAIRS=${FRESH_PAIRS:-2} \
            "$REPO/bench/fresh-pages.sh" "$SIZE" \
            2>"$WORK/fresh-pages.err" | sed 's/^#/##/' > "$RESULTS_DIR/fresh-pages.md"; then
        EXTRA+=("$RESULTS_DIR/fresh-pages.md")
    else
        log "WARNING: fresh-pages.sh failed: $(tail -1 "$WORK/fresh-pages.err")"
        rm -f "$RESULTS_DIR/fresh-pages.md"
    fi
fi

# ---------------------------------------------------------------- report
[[ ${#RUNS1[@]} -gt 0 ]] || die "no peer run to report on (SKIP_PEERS=1?)"
command="${GIVEN_KNOBS}ROUNDS=$ROUNDS bench/perf-report.sh $SIZE"
uring_note="kernel $(uname -r); fuse.enable_uring=$(cat "$URING_PARAM" 2>/dev/null || echo absent) during the run"
args=(--out "$RESULTS_DIR/report.md" --command "$command" --setup "$uring_note"
      --views "$RUN_VIEWS" --jobs "$RUN_JOBS")
for r in "${RUNS1[@]}"; do args+=(--peers "$r"); done
for r in "${RUNS2[@]}"; do args+=(--remapped "$r"); done
for m in "${MICRO[@]}"; do args+=(--micro "$m"); done
for e in "${EXTRA[@]}"; do args+=(--extra "$e"); done
# Named after their run directory: r1-peers-results.tsv, r1-remapped[-2]-results.tsv, ...
for r in "${RUNS1[@]}" "${RUNS2[@]}"; do
    for f in results.tsv notes.tsv env.txt; do
        [[ -f $r/$f ]] && cp "$r/$f" "$RESULTS_DIR/$(basename "$r" | sed "s/^perf-$STAMP-//")-$f"
    done
done
python3 "$REPO/bench/perf_report.py" "${args[@]}"
log "full output (json, logs) in $WORK/results/perf-$STAMP-r*"
echo "$RESULTS_DIR/report.md"
