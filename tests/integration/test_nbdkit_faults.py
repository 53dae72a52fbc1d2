#!/usr/bin/env python3
"""An outside fault source: remapfs on an nbdkit error-filter disk, fio verify passes.

    nbdkit -f -U SOCK --filter=error memory 256M error-pwrite=EIO error-pwrite-rate=R
    nbdfuse NBDMNT/nbd --unix SOCK                      (the NBD disk as a regular file)
    remapfs -f NBDMNT/nbd MNT -o db=DB,spare=SPARE      (SPARE: a 32 MiB regular file)
    losetup --direct-io=on MNT/disk.img; fio randwrite + crc32c verify over the whole device

Nothing in remapfs is told about the faults: nbdkit fails R of the NBD write requests with EIO,
the error travels back through nbdfuse (FUSE, O_DIRECT, so per request) to remapfs, which
remaps the sector to the spare file. fio must not see a single error, table remap must hold rows
with reason 'write-error', and the database passes PRAGMA integrity_check.

On R: remapfs retries a failed write in place once before it remaps, so a 4 KiB write is
remapped with probability ~R^2; 1% gives ~6 remaps for 64k writes (0 with probability ~0.2%),
so the default is 2% (~26 remaps; 0 is out of reach). Override with NBDKIT_ERROR_RATE.

Needs nbdkit (with the error filter and memory plugin) and nbdfuse (apt: nbdkit libnbd-bin);
without them: skip (77). Cleanup in reverse order: loop, remapfs, nbdfuse, nbdkit.
"""

import os
import shutil
import signal
import subprocess

import faulttest as ft
import remaptest as rt
from remaptest import Fail, Skip, check, check_eq, log

DISK = "256M"
DISK_BYTES = 256 * rt.MiB
SPARE_BYTES = 32 * rt.MiB
RATE = os.environ.get("NBDKIT_ERROR_RATE", "2%")


class Proc(rt.Resource):
    """A foreground helper process we started; stopped by its pid."""

    def __init__(self, name, proc, logpath):
        self.name, self.proc, self.logpath = name, proc, logpath

    def log_text(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def release(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"  cleanup: {self.name} pid {self.proc.pid} ignores SIGTERM; SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=15)


class NbdFuse(Proc):
    """nbdfuse: unmount its mountpoint (then it exits by itself), wait for the pid."""

    def __init__(self, proc, logpath, mnt):
        super().__init__(f"nbdfuse pid {proc.pid} at {mnt}", proc, logpath)
        self.mnt = mnt

    def release(self):
        if rt.is_mounted(self.mnt):
            rt.unmount(self.mnt, lazy_fallback=True)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        super().release()


def start(ctx, name, cmd):
    logpath = ctx.path(f"{name}.log")
    log("  $ " + " ".join(cmd) + " &")
    with open(logpath, "wb") as lf:
        proc = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, logpath


def wait_ready(res, ready, what, timeout=20):
    if not ft.wait_until(lambda: ready() or res.proc.poll() is not None, timeout):
        raise Fail(f"{what} not ready within {timeout}s; log:\n{res.log_text()}")
    if not ready():
        raise Fail(f"{what} exited with status {res.proc.returncode}; log:\n{res.log_text()}")


def body(ctx):
    nbdkit = shutil.which("nbdkit")
    nbdfuse = shutil.which("nbdfuse")
    if not nbdkit or not nbdfuse:
        raise Skip("nbdkit / nbdfuse not installed (apt-get install nbdkit libnbd-bin)")
    # The error filter and memory plugin ship with the nbdkit package; check they load.
    r = rt.sh([nbdkit, "--dump-plugin", "--filter=error", "memory"], check_rc=False, quiet=True)
    if r.returncode != 0:
        raise Skip(f"nbdkit cannot load the error filter / memory plugin: {r.stderr.strip()[:200]}")

    klog = ft.KernelLog()
    sock = ctx.path("nbd.sock")
    nbdmnt = ctx.mkdir("nbd")
    mnt = ctx.mkdir("mnt")
    db = ctx.path("remap.db")
    spare = ctx.path("spare.img")
    rt.make_sparse(spare, SPARE_BYTES)

    proc, lp = start(ctx, "nbdkit", [nbdkit, "-f", "-U", sock, "--filter=error", "memory", DISK,
                                     "error-pwrite=EIO", f"error-pwrite-rate={RATE}"])
    kit = ctx.add(Proc(f"nbdkit pid {proc.pid}", proc, lp))
    wait_ready(kit, lambda: os.path.exists(sock), "nbdkit socket")

    nbdfile = os.path.join(nbdmnt, "nbd")
    proc, lp = start(ctx, "nbdfuse", [nbdfuse, nbdfile, "--unix", sock])
    nf = ctx.add(NbdFuse(proc, lp, nbdmnt))
    wait_ready(nf, lambda: rt.is_mounted(nbdmnt) and os.path.exists(nbdfile), "nbdfuse file")
    check_eq(os.path.getsize(nbdfile), DISK_BYTES, f"size of {nbdfile}")

    d = ctx.mount_fg(nbdfile, mnt, f"db={db},spare={spare}")
    st = ft.status(db)
    log(f"  image {st['image_bytes']} bytes, {st['spare_slots_total']} spare slots in {st.get('spare_path')}")
    check_eq(st["image_bytes"], DISK_BYTES, "image = the whole NBD disk (spare is a separate file)")

    loop = ctx.losetup(d.image, "on")
    check_eq(loop.sysfs("dio"), "1", "loop device uses direct I/O")
    size = ft.device_bytes(loop.dev)

    s = ft.fio_verify(loop.dev, size, ctx.tmp, d)

    rows = ft.remap_rows(db)
    reasons = ft.remap_reasons(db)
    log(f"  remaps: {len(rows)} {reasons}")
    check(reasons.get("write-error", 0) > 0, f"table remap has rows with reason 'write-error' ({reasons})")
    check_eq(ft.pending_lbas(db), [], "pending sectors")
    ft.check_no_kernel_errors(klog, loop.dev)

    # Reverse order: loop, remapfs, nbdfuse, nbdkit (the same order the cleanup stack uses).
    loop.detach()
    d.stop()
    ft.check_db_ok(db)
    klog.close()
    log(f"RESULT: fio {s['write_ios']} writes + {s['read_ios']} verified reads through nbdkit "
        f"error-pwrite-rate={RATE}: 0 errors, {len(rows)} remaps")


if __name__ == "__main__":
    rt.run("nbdkit_faults", body, needs_loop=True, tools=("fio", "sqlite3", "blockdev"))
