# Sourced by perf-report.sh and fresh-pages.sh: the one remapfs daemon a script starts itself,
# stopped by PID and unmounted by path (also from the caller's EXIT trap, via
# cleanup_own_remapfs). The caller sets REMAPFS (the binary) and DAEMON_LOG (the daemon's
# stderr) and defines die().
OWN_PID=""
OWN_MNT=""

cleanup_own_remapfs() {
    if [[ -n $OWN_MNT ]] && findmnt -rn -M "$OWN_MNT" >/dev/null 2>&1; then fusermount3 -u "$OWN_MNT" || fusermount3 -uz "$OWN_MNT" || true; fi
    if [[ -n $OWN_PID ]] && kill -0 "$OWN_PID" 2>/dev/null; then
        kill "$OWN_PID" 2>/dev/null || true
        wait "$OWN_PID" 2>/dev/null || true
    fi
    OWN_PID="" OWN_MNT=""
}

# start_remapfs BACKING MNT OPTS : remapfs -f in the background, wait until the image is served.
start_remapfs() {
    local backing=$1 mnt=$2 opts=$3 i
    mkdir -p "$mnt"
    "$REMAPFS" -f -o "$opts" "$backing" "$mnt" 2>>"$DAEMON_LOG" &
    OWN_PID=$! OWN_MNT=$mnt
    for i in $(seq 1 300); do
        [[ -e $mnt/disk.img ]] && findmnt -rn -M "$mnt" >/dev/null 2>&1 && return 0
        kill -0 "$OWN_PID" 2>/dev/null || die "remapfs exited during start (see $DAEMON_LOG)"
        sleep 0.02
    done
    die "remapfs did not serve $mnt/disk.img within 6 s"
}

stop_remapfs() {
    fusermount3 -u "$OWN_MNT"
    wait "$OWN_PID" || die "remapfs exited with status $? at unmount"
    OWN_PID="" OWN_MNT=""
}
