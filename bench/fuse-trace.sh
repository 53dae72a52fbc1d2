#!/bin/bash
# What the kernel asks a FUSE daemon while a command runs, and how long each request took:
# per opcode the count, request sizes, latency percentiles, and how long 0, 1, 2, ... requests
# were in flight. Records the kernel's fuse:fuse_request_send / fuse_request_end tracepoints
# (present on the 6.18 kernel here) for the one connection behind MOUNTPOINT.
#
#   sudo bench/fuse-trace.sh MOUNTPOINT -- fio --name=j --filename=/dev/loop0 ...
#
# This is how bench/README.md tells "the daemon is slow" from "the kernel sends little":
# e.g. 1 MiB reads through a buffered loop arrive as 1 MiB READs, 5-8 in flight, at 0.8-0.95
# of the rate O_DIRECT reads of the file get. Tracing costs throughput: compare traced runs with traced
# runs only. Environment: PERF (default perf), KEEP=PATH keeps the perf.data.
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "fuse-trace.sh: $*" >&2; exit 1; }

[[ $# -ge 3 && $2 == -- ]] || die "usage: fuse-trace.sh MOUNTPOINT -- COMMAND [ARGS...]"
MNT=$1; shift 2
[[ $(id -u) -eq 0 ]] || die "must run as root (kernel tracepoints)"
PERF=${PERF:-perf}
command -v "$PERF" >/dev/null || die "$PERF not found (Debian: apt-get install linux-perf)"
mountpoint -q "$MNT" || die "$MNT is not a mount point"
# The connection number is the minor of the FUSE mount's anonymous device.
CONN=$(mountpoint -d "$MNT" | cut -d: -f2)
# A fresh machine may not have tracefs mounted; perf needs it to find the tracepoints. Mounted
# here only for this run.
MOUNTED_TRACEFS=
if [[ ! -d /sys/kernel/tracing/events && ! -d /sys/kernel/debug/tracing/events ]]; then
    mount -t tracefs nodev /sys/kernel/tracing || die "cannot mount tracefs on /sys/kernel/tracing"
    MOUNTED_TRACEFS=1
fi

DATA=${KEEP:-$(mktemp /tmp/fuse-trace.XXXXXX)}
cleanup() {
    [[ -n ${KEEP:-} ]] || rm -f "$DATA"
    [[ -z $MOUNTED_TRACEFS ]] || umount /sys/kernel/tracing
}
trap cleanup EXIT
[[ -d /sys/kernel/tracing/events/fuse || -d /sys/kernel/debug/tracing/events/fuse ]] ||
    die "this kernel has no fuse tracepoints (fuse:fuse_request_send; 6.18 has them)"

# -a: requests are sent from whichever task touches the file (the loop worker, writeback) and
# answered by the daemon's threads; the connection filter below keeps only this mount's.
"$PERF" record -q -a -e fuse:fuse_request_send -e fuse:fuse_request_end -o "$DATA" -- "$@" >&2 ||
    die "the command or perf failed"
"$PERF" script -i "$DATA" 2>/dev/null | python3 "$REPO/bench/fuse_trace.py" "$CONN"
