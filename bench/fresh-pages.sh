#!/bin/bash
# What a page-cache fill costs on this VM: memory the guest freed a few seconds ago has been
# handed back to the host (free page reporting), and the first write to each such page is slow.
# A buffered loop device on remapfs fills FUSE's page cache with fresh pages on every 1M read or
# write after bench.sh's drop_caches, so this bounds loopbuf sr1m and sw1m, measured two ways:
#
#   1. dd of SIZE into tmpfs: into pages freed just before (recycled) and into pages freed
#      PAUSE seconds before (fresh).
#   2. sr1m and sw1m through a buffered loop on remapfs (bench.sh's fio jobs, traced by
#      fuse-trace.sh for the request sizes): plain (PAUSE seconds after the last free) and right
#      after SIZE x 2 of tmpfs pages were written and freed (pre-touched), in PAIRS interleaved
#      pairs.
#
#   sudo bench/fresh-pages.sh [SIZE]      (default 2G; a markdown report on stdout)
#
# Environment: BIN (default build-bench/src/remapfs), WORK (default /tmp/fresh-pages), BACKING
# (an existing file of SIZE to use, e.g. bench.sh's prefilled one; its contents are overwritten
# by the sw1m passes; default $WORK/backing.img, prefilled here), PAIRS (default 4), PAUSE
# (default 6 s; the kernel reports free pages after 2 s), SEQ_QD (default 4).
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "fresh-pages.sh: $*" >&2; exit 1; }

SIZE=${1:-2G}
REMAPFS=$(realpath "${BIN:-$REPO/build-bench/src/remapfs}")
WORK=${WORK:-/tmp/fresh-pages}
PAIRS=${PAIRS:-4} PAUSE=${PAUSE:-6} SEQ_QD=${SEQ_QD:-4}
[[ $(id -u) -eq 0 ]] || die "must run as root (losetup, drop_caches, FUSE)"
[[ -x $REMAPFS ]] || die "$REMAPFS not found: build it (meson setup build-bench -Dbuildtype=release && ninja -C build-bench) or set BIN="
[[ $SIZE =~ ^[1-9][0-9]*[MG]$ ]] || die "SIZE=$SIZE is not a size like 512M or 2G"
[[ $PAIRS =~ ^[1-9][0-9]?$ ]] || die "PAIRS=$PAIRS is not a whole number from 1 to 99"
[[ $PAUSE =~ ^[0-9]+$ ]] || die "PAUSE=$PAUSE is not a whole number of seconds"
for tool in fio losetup fusermount3; do command -v $tool >/dev/null || die "$tool missing"; done
MIB=${SIZE%?}; [[ $SIZE == *G ]] && MIB=$((MIB * 1024))
SHM=/dev/shm/fresh-pages.$$
(( $(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo) > 3 * MIB )) ||
    die "needs 3 x $SIZE of available memory"

mkdir -p "$WORK"
DAEMON_LOG=$WORK/daemon.log
# shellcheck source=bench/own-remapfs.sh
source "$REPO/bench/own-remapfs.sh"
DEV=''
cleanup() {
    rm -f "$SHM"
    [[ -z $DEV ]] || losetup -d "$DEV" 2>/dev/null || true
    cleanup_own_remapfs
}
trap cleanup EXIT INT TERM

# Seconds dd takes to write MiB of zeros into a new tmpfs file.
dd_tmpfs() {
    local t0 t1
    t0=$(date +%s.%N)
    dd if=/dev/zero of="$SHM" bs=1M count="$1" status=none
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}'
}
rate() { awk -v m="$1" -v s="$2" 'BEGIN {printf "%.0f", m * 1.048576 / s}'; }  # MB/s

if [[ -n ${BACKING:-} ]]; then   # given: used as it is, never replaced
    [[ $(stat -c %s "$BACKING" 2>/dev/null) == $((MIB << 20)) ]] || die "BACKING=$BACKING is not a file of $SIZE"
else
    BACKING=$WORK/backing.img
    if [[ $(stat -c %s "$BACKING" 2>/dev/null) != $((MIB << 20)) ]]; then
        echo "fresh-pages: writing a $SIZE backing file in $WORK" >&2
        rm -f "$BACKING"
        fio --name=prefill --filename="$BACKING" --rw=write --bs=1M --size="$SIZE" --direct=1 \
            --refill_buffers --output=/dev/null
    fi
fi

echo "# Fresh pages on this VM ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r))"
echo
knobs=()
for k in page_reporting_order min_free_ms; do
    knobs+=("$k=$(cat "/sys/module/page_reporting/parameters/$k" 2>/dev/null || echo n/a)")
done
echo "Free page reporting (/sys/module/page_reporting/parameters): ${knobs[*]}"
echo
echo "## 1. dd of $SIZE into tmpfs"
echo
echo "| pages | run 1 | run 2 | run 3 |"
echo "|---|---|---|---|"
for kind in recycled fresh; do
    row="| $kind (freed $([[ $kind == fresh ]] && echo "${PAUSE} s" || echo "just") before) |"
    for _ in 1 2 3; do
        dd_tmpfs "$MIB" >/dev/null; rm -f "$SHM"         # pages to free
        [[ $kind == fresh ]] && sleep "$PAUSE"
        row+=" $(rate "$MIB" "$(dd_tmpfs "$MIB")") MB/s |"; rm -f "$SHM"
    done
    echo "$row"
done

# seq_loopbuf JOB PRETOUCH: one pass of JOB (sr1m or sw1m) through a buffered loop device on a
# fresh remapfs mount; writes MB/s, and the request sizes and daemon latency fuse-trace.sh saw,
# to $WORK/result. Runs in this shell (not in a command substitution), so the EXIT trap cleans
# up whatever it leaves behind.
seq_loopbuf() {
    local job=$1 pretouch=$2 out rw=read field=7 op=READ
    [[ $job == sw1m ]] && rw=write field=48 op=WRITE   # terse v3: read / write bandwidth, KiB/s
    rm -f "$WORK"/r.db* "$WORK/r.spare"; truncate -s 64M "$WORK/r.spare"
    start_remapfs "$BACKING" "$WORK/mnt" "db=$WORK/r.db,spare=$WORK/r.spare"
    DEV=$(losetup -f --show --direct-io=off "$OWN_MNT/disk.img")
    sync; echo 3 > /proc/sys/vm/drop_caches
    [[ $pretouch == 1 ]] && { dd_tmpfs $((2 * MIB)) >/dev/null; rm -f "$SHM"; }
    out=$("$REPO/bench/fuse-trace.sh" "$OWN_MNT" -- fio --name="$job" --filename="$DEV" --rw="$rw" --bs=1M \
        --ioengine=libaio --iodepth="$SEQ_QD" --direct=1 --output-format=terse --terse-version=3 \
        --output="$WORK/fio.terse") || die "fuse-trace.sh or fio failed ($job)"
    { awk -F';' -v f="$field" 'NR == 1 {printf "%.0f MB/s", $f * 1024 / 1e6}' "$WORK/fio.terse"
      awk -F'|' -v op="FUSE_$op" '$2 ~ op {for (i = 3; i <= 5; i++) gsub(/^ +| +$/, "", $i)
                                          printf " (%s %s: %s; p50 %s ms)", $3, op, $4, $5}' <<<"$out"
    } >"$WORK/result"
    losetup -d "$DEV"; DEV=''
    stop_remapfs
}

n=1
for job in sr1m sw1m; do
    n=$((n + 1))
    echo
    echo "## $n. $job through a buffered loop device on remapfs ($SIZE, one pass, iodepth $SEQ_QD)"
    echo
    echo "Plain: ${PAUSE} s after the last free, as bench.sh's jobs mostly run. Pre-touched: 2 x $SIZE"
    echo "of tmpfs written and freed right after drop_caches, so the page cache fill reuses those pages."
    echo
    echo "| pair | plain | pre-touched | ratio |"
    echo "|---|---|---|---|"
    ratios=()
    for ((p = 1; p <= PAIRS; p++)); do
        order=(plain pre); ((p % 2 == 0)) && order=(pre plain)
        declare -A res=()
        for side in "${order[@]}"; do
            sleep "$PAUSE"
            seq_loopbuf "$job" "$([[ $side == pre ]] && echo 1 || echo 0)"
            res[$side]=$(<"$WORK/result")
        done
        r=$(awk -v a="${res[plain]%% MB/s*}" -v b="${res[pre]%% MB/s*}" 'BEGIN {printf "%.2f", b / a}')
        ratios+=("$r")
        echo "| $p (${order[0]} first) | ${res[plain]} | ${res[pre]} | $r |"
    done
    echo
    echo "Median pre-touched / plain: $(printf '%s\n' "${ratios[@]}" | sort -n |
        awk '{v[NR] = $1} END {printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')"
done
