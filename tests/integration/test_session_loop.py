#!/usr/bin/env python3
"""The daemon's own FUSE session loop (src/fuse/session_loop.cpp).

1. Write data arrives page-aligned: 1 MiB O_DIRECT writes to disk.img, through a direct-io loop
   device and through a buffered one (kernel writeback) reach the O_DIRECT backing without a
   copy through the bounce buffer (status.daemon.bounced_bytes stays 0), and read back intact.
   Every thread the daemon starts carries a name (rfs-fuseN, rfs-control, ...).
2. Stopping: SIGTERM on an idle daemon, and SIGINT while a direct-io loop device on the image
   is writing, each end the daemon within seconds with status 0 and the mount gone (workers
   blocked in read(2) are woken); data synced before the stop is intact after a remount.
"""

import os
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

BACKING_BYTES = 64 * rt.MiB
MiB = rt.MiB


def daemon_status(mnt):
    return rt.remapctl_json("--mount", mnt, "status").get("daemon") or {}


def dd_write(src, dst, first_mib, count_mib, direct):
    """MiB first_mib.. of src to the same place in dst, 1 MiB per write, synced at the end."""
    rt.sh(["dd", f"if={src}", f"of={dst}", "bs=1M", f"skip={first_mib}", f"seek={first_mib}",
           f"count={count_mib}", "conv=notrunc,fsync", "status=none"] + (["oflag=direct"] if direct else []))


def wait_exit(d, timeout, what):
    try:
        rc = d.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise rt.Fail(f"remapfs did not exit within {timeout}s after {what}; log:\n{d.log_text()}")
    check_eq(rc, 0, f"remapfs exit status after {what}")
    check(not rt.is_mounted(d.mnt), f"{d.mnt} is unmounted after {what}")
    d.stopped = True


def body(ctx):
    backing, db, mnt = ctx.path("backing.img"), ctx.path("remap.db"), ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)
    src = ctx.path("data.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(24 * MiB))

    log("--- 1 MiB O_DIRECT writes: disk.img, direct-io loop, buffered loop (writeback)")
    # backing_io=direct: on a buffered backing nothing is ever bounced and the check below
    # could not fail.
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,threads=4,backing_io=direct")
    st = daemon_status(mnt)
    check_eq(st.get("backing_direct_io"), True, "status.daemon.backing_direct_io")
    check_eq(st.get("bounced_bytes"), 0, "status.daemon.bounced_bytes right after mounting")
    names = rt.thread_names(d.proc.pid)
    missing = {"rfs-fuse0", "rfs-fuse3", "rfs-control", "rfs-history", "rfs-remapper"} - names
    check(not missing, f"the daemon's threads are named (missing {sorted(missing)} in {sorted(names)})")
    dd_write(src, d.image, 0, 8, direct=True)
    dio = ctx.losetup(d.image, "on")
    check_eq(dio.sysfs("dio"), "1", "direct-io loop is in direct mode")
    dd_write(src, dio.dev, 8, 8, direct=True)
    dio.detach()
    buf = ctx.losetup(d.image, "off")
    dd_write(src, buf.dev, 16, 8, direct=False)
    buf.detach()
    check_eq(daemon_status(mnt).get("bounced_bytes"), 0, "bytes copied through the bounce buffer by those writes")
    with open(src, "rb") as f:
        want = f.read()
    got = rt.pread_file(d.image, 0, 24 * MiB, direct=True)
    check(got == want, "the 24 MiB read back through disk.img equal what was written")
    check_eq(daemon_status(mnt).get("bounced_bytes"), 0, "bytes bounced by the O_DIRECT read-back")

    log("--- SIGTERM on an idle daemon")
    os.kill(d.pid, signal.SIGTERM)
    wait_exit(d, 15, "SIGTERM")

    log("--- SIGINT while a direct-io loop device writes")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    dio = ctx.losetup(d.image, "on")
    # Rewrites 16 MiB over and over until a write fails (the daemon is gone).
    writer = subprocess.Popen(["sh", "-c", f"while dd if=/dev/urandom of={dio.dev} bs=64k seek=512 count=256 "
                               "oflag=direct status=none; do :; done"], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        check(writer.poll() is None, "the writer is still running when the signal is sent")
        os.kill(d.pid, signal.SIGINT)
        wait_exit(d, 15, "SIGINT under load")
        try:
            writer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise rt.Fail("the loop device writer did not finish after the daemon stopped")
        log(f"  writer ended with status {writer.returncode} (I/O errors once the daemon is gone)")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    dio.detach()
    check_eq(dio.sysfs("backing_file"), None, f"{dio.dev} detached after its daemon stopped")

    log("--- remount: what was synced before the stops is intact")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    got = rt.pread_file(d.image, 0, 24 * MiB, direct=True)
    check(got == want, "the first 24 MiB are intact after both stops")
    check_eq(rt.sqlite(db, "PRAGMA integrity_check"), [["ok"]], "database integrity")
    d.stop()


if __name__ == "__main__":
    rt.run("session_loop", body, needs_loop=True, tools=("dd",))
