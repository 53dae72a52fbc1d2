#!/usr/bin/env bash
# run-peers.sh - benchmark remapfs against the raw backing and the FUSE peers
# (passthrough_ll, qemu-storage-daemon, nbdkit+nbdfuse) with the shared bench.sh.
#
# Usage: sudo bench/run-peers.sh [SIZE]      (SIZE is passed to bench.sh, default 2G)
#
# Environment (everything bench.sh understands is passed through, e.g. RUNTIME, RAMP,
# TARGETS, VIEWS, JOBS, WORK), plus:
#   BENCH_SH=../shared/bench/bench.sh   (relative to the repository root)
#   BUILD_DIR=build-bench                (meson build dir, release build)
#   MESON_ARGS=""                        extra `meson setup` args for a new BUILD_DIR, e.g. -Dwerror=false
#   OUT=<dir>                            where bench.sh writes everything, json/ and logs/ included
#                                        (default $WORK/results/remapfs-<stamp>, outside the repo)
#   RESULTS_DIR=bench/results/<stamp>    where the small files are copied for committing
#   REMAPFS_SPARE_SIZE=64M               size of the separate spare file
#   REMAPFS_OPTS=""                      extra -o options for remapfs (comma separated)
#
# The spare area is put on a separate file ({WORK}/remapfs.spare) so that the exposed image
# has exactly the backing's size: bench.sh runs fio with --size=<backing size> on the exposed
# file, and with the default tail spare disk.img is ~1% smaller than the backing. The database
# and the spare file are deleted at every mount, because bench.sh reuses the backing file across
# targets and runs, and a remapfs database is bound to the spare label it created.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

BENCH_SH=${BENCH_SH:-../shared/bench/bench.sh}
[[ $BENCH_SH == /* ]] || BENCH_SH=$REPO/$BENCH_SH
BUILD_DIR=${BUILD_DIR:-build-bench}
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$REPO/$BUILD_DIR
STAMP=$(date +%Y%m%d-%H%M%S)
export WORK=${WORK:-/tmp/peerbench}
OUT=${OUT:-$WORK/results/remapfs-$STAMP}
RESULTS_DIR=${RESULTS_DIR:-bench/results/$STAMP}
[[ $RESULTS_DIR == /* ]] || RESULTS_DIR=$REPO/$RESULTS_DIR
REMAPFS_SPARE_SIZE=${REMAPFS_SPARE_SIZE:-64M}
REMAPFS_OPTS=${REMAPFS_OPTS:-}
MESON_ARGS=${MESON_ARGS:-}

[[ $(id -u) -eq 0 ]] || { echo "run-peers.sh: must run as root (bench.sh needs losetup, drop_caches, FUSE)" >&2; exit 1; }
[[ -x $BENCH_SH ]] || { echo "run-peers.sh: $BENCH_SH not found or not executable (set BENCH_SH=)" >&2; exit 1; }
for tool in meson ninja fio jq losetup fusermount3; do
    command -v "$tool" >/dev/null || { echo "run-peers.sh: $tool missing (see ../shared/bench/README.md for apt-get install)" >&2; exit 1; }
done

# ---------------------------------------------------------------- build (release)
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
    rm -rf "$BUILD_DIR"     # a half-configured dir from a failed setup
    # shellcheck disable=SC2086
    meson setup "$BUILD_DIR" --wrap-mode=nodownload -Dbuildtype=release ${MESON_ARGS:-}
fi
ninja -C "$BUILD_DIR"
REMAPFS=$BUILD_DIR/src/remapfs
[[ -x $REMAPFS ]] || { echo "run-peers.sh: $REMAPFS was not built" >&2; exit 1; }

# ---------------------------------------------------------------- run bench.sh
opts="db={WORK}/remapfs.db,spare={WORK}/remapfs.spare${REMAPFS_OPTS:+,$REMAPFS_OPTS}"
mount_cmd="rm -f {WORK}/remapfs.db {WORK}/remapfs.db-wal {WORK}/remapfs.db-shm {WORK}/remapfs.spare"
mount_cmd+=" && truncate -s $REMAPFS_SPARE_SIZE {WORK}/remapfs.spare"
mount_cmd+=" && exec $REMAPFS -f -o $opts {BACKING} {MNT}"

mkdir -p "$WORK"
echo "run-peers.sh: remapfs mount command: $mount_cmd" >&2
rc=0
EXTRA_NAME=remapfs \
EXTRA_MOUNT_CMD=$mount_cmd \
EXTRA_FILE='{MNT}/disk.img' \
OUT=$OUT \
    "$BENCH_SH" "$@" || rc=$?

# ---------------------------------------------------------------- keep the small files
mkdir -p "$RESULTS_DIR"
copied=0
for f in report.md results.tsv notes.tsv env.txt; do
    if [[ -f $OUT/$f ]]; then cp "$OUT/$f" "$RESULTS_DIR/"; copied=$((copied + 1)); fi
done
if [[ ! -f $RESULTS_DIR/report.md ]]; then
    echo "run-peers.sh: bench.sh (exit $rc) produced no report in $OUT" >&2
    [[ $copied -gt 0 ]] || rmdir "$RESULTS_DIR" 2>/dev/null || true
    exit $(( rc ? rc : 1 ))
fi
if awk -F'\t' 'NR > 1 && $1 ~ /^remapfs/ && $8 != "0" { bad = 1 } END { exit !bad }' "$RESULTS_DIR/results.tsv"; then
    echo "run-peers.sh: WARNING: some remapfs jobs failed (err != 0); fio/daemon logs in $OUT/logs" >&2
fi
echo "run-peers.sh: full output (json, logs) in $OUT" >&2
echo "$RESULTS_DIR/report.md"
exit "$rc"
