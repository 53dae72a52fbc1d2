#!/usr/bin/env python3
"""FUSE over io_uring (src/fuse/uring_transport.cpp).

With /sys/module/fuse/parameters/enable_uring set (the test sets it and puts the old value back):
1. The daemon registers its ring workers and the kernel sends requests through them: the log
   names the queues at start and counts the requests served by the ring at the end; each
   worker thread is named for its queue (rfs-ringQ/N).
2. Everything a user does works through the ring: O_DIRECT 1 MiB and 4k writes and reads on
   disk.img, a direct-io and a buffered loop device, stat/statfs/readdir, fsync, a punched hole,
   and errors reach the caller (a write past the end is EFBIG; an unreadable sector is EIO).
   A write that fails on the backing is remapped from a ring worker and reads back intact.
3. -o io_uring=off, and a kernel that does not offer the ring (enable_uring = 0), both serve
   through /dev/fuse; the data written through the ring is intact there.
Skips (77) on a kernel without FUSE over io_uring.
"""

import errno
import mmap
import os
import random
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

PARAM = "/sys/module/fuse/parameters/enable_uring"
BACKING_BYTES = 64 * rt.MiB
MiB, SECTOR = rt.MiB, rt.SECTOR


class RingParam(rt.Resource):
    """The kernel's enable_uring switch, put back as we found it."""

    def __init__(self):
        with open(PARAM) as f:
            self.old = f.read().strip()
        self.name = f"{PARAM} (was {self.old})"

    def set(self, on):
        with open(PARAM, "w") as f:
            f.write("1" if on else "0")

    def release(self):
        with open(PARAM, "w") as f:
            f.write("1" if self.old in ("Y", "1") else "0")


def ring_served(d):
    m = re.search(r"io_uring: served (\d+) requests", d.log_text())
    return int(m.group(1)) if m else 0


def pwrite_direct(path, offset, data):
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, len(data))  # page-aligned, as O_DIRECT wants
        buf.write(data)
        return os.pwrite(fd, buf, offset)
    finally:
        os.close(fd)


def expect_errno(fn, want, what):
    try:
        fn()
    except OSError as e:
        check_eq(errno.errorcode.get(e.errno), errno.errorcode[want], what)
        return
    raise rt.Fail(f"{what}: no error")


def body(ctx):
    if not os.path.exists(PARAM):
        raise rt.Skip("this kernel has no FUSE over io_uring (no enable_uring parameter)")
    param = ctx.add(RingParam())
    param.set(True)

    backing, db, mnt = ctx.path("backing.img"), ctx.path("remap.db"), ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)
    rng = random.Random(6)
    src = rng.randbytes(16 * MiB)

    log("--- ring on: registration and the data path")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,allow_inject,threads=4,io_uring_workers=3")
    check(re.search(r"io_uring: \d+ queue\(s\) x 3 worker\(s\)", d.log_text()) is not None,
          "the log names the ring's queues and workers")
    names = rt.thread_names(d.proc.pid)
    missing = {"rfs-ring0/0", "rfs-ring0/2"} - names
    check(not missing, f"ring workers are named for their queue (missing {sorted(missing)} in {sorted(names)})")
    for off in range(0, 8 * MiB, MiB):
        pwrite_direct(d.image, off, src[off:off + MiB])
    dio = ctx.losetup(d.image, "on")
    check_eq(dio.sysfs("dio"), "1", "direct-io loop is in direct mode")
    offsets = sorted(rng.sample(range(8 * MiB // SECTOR, 12 * MiB // SECTOR), 200))
    with open(dio.dev, "r+b", buffering=0) as f:
        for s in offsets:
            f.seek(s * SECTOR)
            f.write(src[s * SECTOR:(s + 1) * SECTOR])
        os.fsync(f.fileno())
    dio.detach()
    buf = ctx.losetup(d.image, "off")
    part = ctx.path("part.bin")
    with open(part, "wb") as f:
        f.write(src[12 * MiB:16 * MiB])
    rt.sh(["dd", f"if={part}", f"of={buf.dev}", "bs=1M", "seek=12", "conv=fsync", "status=none"])
    buf.detach()
    want = bytearray(src)
    written = set(offsets)
    for s in range(8 * MiB // SECTOR, 12 * MiB // SECTOR):
        if s not in written:
            want[s * SECTOR:(s + 1) * SECTOR] = bytes(SECTOR)
    want = bytes(want)
    check(rt.pread_file(d.image, 0, 16 * MiB, direct=True) == want,
          "16 MiB written by O_DIRECT, a direct-io loop and a buffered loop read back intact")

    log("--- metadata ops and errors through the ring")
    check_eq(os.listdir(mnt), ["disk.img"], "readdir")
    check_eq(os.stat(d.image).st_size, rt.expected_image_bytes(BACKING_BYTES), "stat size")
    check(os.statvfs(mnt).f_bsize > 0, "statfs answers")
    size = os.stat(d.image).st_size
    expect_errno(lambda: pwrite_direct(d.image, size, bytes(SECTOR)), errno.EFBIG, "O_DIRECT write at the end")
    rt.sh(["fallocate", "--punch-hole", "--offset", str(MiB), "--length", str(64 * 1024), d.image])
    check(rt.pread_file(d.image, MiB, 64 * 1024, direct=True) == bytes(64 * 1024), "a punched hole reads zeros")
    want = want[:MiB] + bytes(64 * 1024) + want[MiB + 64 * 1024:]

    rt.remapctl("--mount", mnt, "inject", "add", "--sectors", "100", "--op", "write", quiet=True)
    pwrite_direct(d.image, 100 * SECTOR, src[:SECTOR])
    want = want[:100 * SECTOR] + src[:SECTOR] + want[101 * SECTOR:]
    check_eq(rt.sqlite(db, "SELECT lba FROM remap"), [["100"]],
             "the sector whose write failed is remapped")
    check(rt.pread_file(d.image, 100 * SECTOR, SECTOR, direct=True) == src[:SECTOR], "and reads back intact")
    rt.remapctl("--mount", mnt, "inject", "add", "--sectors", "200", "--op", "read", quiet=True)
    expect_errno(lambda: rt.pread_file(d.image, 200 * SECTOR, SECTOR, direct=True), errno.EIO,
                 "O_DIRECT read of an unreadable sector")
    rt.remapctl("--mount", mnt, "inject", "clear", quiet=True)
    with open(d.image, "r+b") as f:
        os.fsync(f.fileno())
    d.stop()
    served = ring_served(d)
    log(f"  the ring served {served} requests")
    check(served >= 100, "the kernel sent the requests through the ring")

    log("--- io_uring=off: /dev/fuse, same data")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,io_uring=off")
    check(rt.pread_file(d.image, 0, 16 * MiB, direct=True) == want, "the data is intact over /dev/fuse")
    d.stop()
    check("io_uring:" not in d.log_text(), "no ring with io_uring=off")

    log("--- a kernel that does not offer the ring")
    param.set(False)
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    check(rt.pread_file(d.image, 0, 16 * MiB, direct=True) == want, "the data is intact")
    d.stop()
    check("io_uring: not offered by the kernel" in d.log_text(), "the log says the kernel did not offer it")
    check_eq(ring_served(d), 0, "requests served by a ring")
    check_eq(rt.sqlite(db, "PRAGMA integrity_check"), [["ok"]], "database integrity")


if __name__ == "__main__":
    rt.run("io_uring", body, needs_loop=True, tools=("dd", "fallocate"))
