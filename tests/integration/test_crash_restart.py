#!/usr/bin/env python3
"""A daemon killed with SIGKILL leaves nothing that blocks a restart, and fsynced data survives.

remapfs -f -> write sectors to disk.img (O_DIRECT + fsync) -> SIGKILL the daemon -> fusermount3 -u
the dead mount -> remapctl works offline on the left-over DB (WAL recovery, stale control socket)
-> remount -> the data is there, status shows the new daemon. The mount log keeps the killed
run's row open (stopped is NULL) and closes the clean one; a mount starts the WAL before it serves.
"""

import json
import os
import random
import signal
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

BACKING_BYTES = 32 * rt.MiB
S = rt.SECTOR


def write_direct(path, offset, data):
    rt.write_direct(path, offset, data, fsync=True)


def body(ctx):
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)
    image_bytes = rt.expected_image_bytes(BACKING_BYTES)
    rng = random.Random("remapfs-crash")

    d = ctx.mount_fg(backing, mnt, f"db={db}")
    writes = {}
    for lba in (0, 1, 7, 100, image_bytes // S - 1):
        data = rng.randbytes(S)
        write_direct(d.image, lba * S, data)
        writes[lba] = data
    # An unaligned buffered write through the page cache, then fsync.
    tail = rng.randbytes(1000)
    with open(d.image, "r+b") as f:
        f.seek(5 * S + 123)
        f.write(tail)
        f.flush()
        os.fsync(f.fileno())
    st = rt.remapctl_json("--db", db, "status")
    check_eq((st.get("daemon") or {}).get("pid"), d.pid, "status.daemon.pid of the running daemon")
    check_eq(rt.sqlite(db, "SELECT pid, coalesce(stopped, 'running'), mountpoint FROM mount_log"),
             [[str(d.pid), "running", mnt]], "mount_log: one row for the running daemon")

    log(f"--- SIGKILL pid {d.pid}")
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(timeout=10)
    rt.unmount(mnt)  # the dead connection's mount
    d.stopped = True
    check(not rt.is_mounted(mnt), "dead mount removed")

    for lba, data in writes.items():
        check_eq(rt.pread_file(backing, lba * S, S), data, f"backing holds the fsynced sector {lba}")
    check_eq(rt.pread_file(backing, 5 * S + 123, 1000), tail, "backing holds the fsynced unaligned write")

    r = rt.remapctl("--db", db, "status", "--json")
    st = json.loads(r.stdout)
    check_eq((st.get("daemon") or {}).get("running"), False, "status after the crash: daemon not running")
    check_eq((st.get("mounts") or {}).get("unclean_stops"), 1, "status after the crash: one unclean stop")
    check_eq(((st.get("mounts") or {}).get("last") or {}).get("pid"), d.pid, "status: the last mount is the killed one")
    text = rt.remapctl("--db", db, "status").stdout
    check("did not stop cleanly" in text, "status text says the last mount did not stop cleanly")
    if r.stderr.strip():
        log(f"  note: remapctl printed on stderr after the crash: {r.stderr.strip()!r}")

    log("--- restart")
    d2 = ctx.mount_fg(backing, mnt, f"db={db}")
    for lba, data in writes.items():
        check_eq(rt.pread_file(d2.image, lba * S, S, direct=True), data, f"sector {lba} after the restart")
    check_eq(rt.pread_file(d2.image, 5 * S + 123, 1000), tail, "unaligned write after the restart")
    st = rt.remapctl_json("--mount", mnt, "status")
    check_eq((st.get("daemon") or {}).get("pid"), d2.pid, "status.daemon.pid is the new daemon")
    check_eq(st.get("mounts", {}).get("unclean_stops"), 1, "status: the running daemon's mount is not an unclean stop")
    check_eq(st.get("mounts", {}).get("last", {}).get("stopped", "missing"), None, "status: the running mount has no stop time")
    d2.stop()
    rows = rt.sqlite(db, "SELECT pid, stopped IS NULL, stopped >= started FROM mount_log ORDER BY id")
    check_eq(rows, [[str(d.pid), "1", ""], [str(d2.pid), "0", "1"]],
             "mount_log: the killed run never stopped cleanly, the restarted one did")

    # A clean stop leaves no WAL. The next mount writes its mount_log row before it serves, so
    # SQLite's WAL (and the header sync that starts it) is there before the first user request.
    check(not os.path.exists(db + "-wal"), "no WAL left after a clean stop")
    d3 = ctx.mount_fg(backing, mnt, f"db={db}")
    wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
    check(wal >= 32, f"the WAL is started by the time disk.img is served ({wal} bytes)")
    d3.stop()


if __name__ == "__main__":
    rt.run("crash_restart", body)
