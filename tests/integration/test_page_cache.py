#!/usr/bin/env python3
"""Buffered writers and readers of disk.img: the writeback cache and the readahead knob.

  default (writeback_cache=on): a buffered write is in the page cache until fsync, which puts it
    on the backing; a buffered write past the end of the image is never acknowledged as durable:
    fsync or close reports the error, and the backing and the next mount's image keep their size
  writeback_cache=off: the same write past the end fails at write() itself (EFBIG)
  readahead_kb, max_dirty_percent: the mount's /sys/class/bdi/<dev>/read_ahead_kb and max_ratio
    after the first open (4096 and 3 by default, the options' values otherwise; strict_limit stays)
  threads: the connection's max_background is twice the worker threads (16 by default)
  O_DIRECT opens bypass the page cache (FOPEN_DIRECT_IO, seen as MAP_SHARED refused with ENODEV)
    unless a cached handle is open, and every reader sees the last write whichever way it came:
    a cached reader open during an O_DIRECT write, a buffered open during a bypassing one, and a
    buffered open after one whose pages were cached before it (direct_bypass=off: never bypass)
"""

import errno
import mmap
import os
import random
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

B = 64 * rt.MiB


def bdi_knob(mnt, name):
    dev = os.stat(mnt).st_dev
    with open(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/{name}") as f:
        return int(f.read())


def fuse_conn_knob(mnt, name):
    """/sys/fs/fuse/connections/<dev>/<name>, mounting fusectl for the read if it is not."""
    conns = "/sys/fs/fuse/connections"
    mounted_here = False
    if not os.path.ismount(conns):
        rt.sh(["mount", "-t", "fusectl", "fusectl", conns], quiet=True)
        mounted_here = True
    try:
        with open(f"{conns}/{os.minor(os.stat(mnt).st_dev)}/{name}") as f:
            return int(f.read())
    finally:
        if mounted_here:
            rt.sh(["umount", conns], quiet=True)


def write_past_end(image, size):
    """Buffered write of 4 KiB at the image's end; returns the errno seen at write, fsync or close."""
    fd = os.open(image, os.O_WRONLY)
    seen = None
    try:
        os.pwrite(fd, b"\x5a" * 4096, size)
        os.fsync(fd)
    except OSError as e:
        seen = ("write/fsync", e.errno)
    try:
        os.close(fd)
    except OSError as e:
        seen = seen or ("close", e.errno)
    return seen


def bypasses_cache(fd):
    """True if the kernel opened fd with FOPEN_DIRECT_IO: FUSE refuses MAP_SHARED on those."""
    try:
        mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ).close()
        return False
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
        return True


def direct_write(fd, data, off):
    buf = mmap.mmap(-1, len(data))  # page-aligned, as O_DIRECT wants
    buf.write(data)
    check_eq(os.pwritev(fd, [buf], off), len(data), "O_DIRECT write length")
    buf.close()


def read_at(path, off, n=4096):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def check_direct_coherence(image, rng, bypass):
    off = 9 * rt.MiB
    blocks = [rng.randbytes(4096) for _ in range(3)]

    log("--- an O_DIRECT write while a cached reader is open: the reader sees it")
    a = os.open(image, os.O_RDONLY)
    check_eq(len(os.pread(a, 4096, off)), 4096, "cached read")
    b = os.open(image, os.O_RDWR | os.O_DIRECT)
    check(not bypasses_cache(b), "an O_DIRECT open while a cached handle is open must not bypass")
    direct_write(b, blocks[0], off)
    check_eq(os.pread(a, 4096, off), blocks[0], "cached reader after the O_DIRECT write")
    os.close(b)
    os.close(a)

    log(f"--- O_DIRECT alone: {'bypasses' if bypass else 'cached path'}; readers see every write")
    check_eq(read_at(image, off), blocks[0], "buffered read (now cached)")
    # The cached handles above are closed, but the kernel sends their RELEASE after close()
    # returns; until it arrives an O_DIRECT open rightly stays on the cached path.
    deadline = time.monotonic() + 5
    c = os.open(image, os.O_RDWR | os.O_DIRECT)
    while bypasses_cache(c) != bypass and time.monotonic() < deadline:
        os.close(c)
        time.sleep(0.05)
        c = os.open(image, os.O_RDWR | os.O_DIRECT)
    check_eq(bypasses_cache(c), bypass, "O_DIRECT open bypasses the page cache")
    direct_write(c, blocks[1], off)
    d = os.open(image, os.O_RDONLY)
    check_eq(bypasses_cache(d), bypass, "buffered open during a bypassing one bypasses too")
    check_eq(os.pread(d, 4096, off), blocks[1], "buffered reader open during the O_DIRECT write")
    direct_write(c, blocks[2], off)
    check_eq(os.pread(d, 4096, off), blocks[2], "the same reader after a second O_DIRECT write")
    os.close(d)
    os.close(c)
    check_eq(read_at(image, off), blocks[2], "buffered open after the O_DIRECT writer closed")
    # The kernel sends RELEASE after close() returns: give it a moment to arrive.
    deadline = time.monotonic() + 5
    while bypasses_cache_path(image) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(not bypasses_cache_path(image), "a buffered open alone uses the page cache")


def bypasses_cache_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return bypasses_cache(fd)
    finally:
        os.close(fd)


def body(ctx):
    rng = random.Random("page-cache")
    d = ctx.mkdir("wb")
    backing = os.path.join(d, "backing.img")
    rt.make_sparse(backing, B)
    rt.make_sparse(os.path.join(d, "spare.img"), rt.MiB)
    mnt = ctx.mkdir("wb/mnt")
    dm = ctx.mount_fg(backing, mnt, f"db={d}/remap.db,spare={d}/spare.img")
    size = os.stat(dm.image).st_size
    check_eq(size, B, "disk.img size (separate spare)")

    log("--- buffered write, then fsync: on the backing")
    data = rng.randbytes(rt.MiB)
    off = 5 * rt.MiB
    with open(dm.image, "r+b") as f:
        f.seek(off)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    check_eq(rt.pread_file(backing, off, len(data)), data, "backing after fsync")
    check_eq(bdi_knob(mnt, "read_ahead_kb"), 4096, "read_ahead_kb (default)")
    check_eq(bdi_knob(mnt, "max_ratio"), 3, "max_ratio (default max_dirty_percent)")
    check_eq(fuse_conn_knob(mnt, "max_background"), 32, "max_background (twice the 16 default threads)")
    dev = os.stat(mnt).st_dev
    if os.path.exists(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/strict_limit"):  # kernel >= 6.2
        check_eq(bdi_knob(mnt, "strict_limit"), 1, "strict_limit (the kernel's FUSE default, kept)")
    check_direct_coherence(dm.image, rng, bypass=True)

    log("--- buffered write past the end: reported, nothing grows")
    seen = write_past_end(dm.image, size)
    log(f"error seen: {seen}")
    check(seen is not None and seen[1] in (errno.EFBIG, errno.EIO, errno.ENOSPC),
          f"a buffered write past the end must fail at fsync or close, saw {seen}")
    dm.stop()
    check_eq(os.stat(backing).st_size, B, "backing size after the failed write")
    dm = ctx.mount_fg(backing, mnt, f"db={d}/remap.db,spare={d}/spare.img,writeback_cache=off,readahead_kb=256,direct_bypass=off,max_dirty_percent=2,threads=3")
    check_eq(os.stat(dm.image).st_size, B, "disk.img size after remount")
    check_eq(fuse_conn_knob(mnt, "max_background"), 6, "max_background (threads=3)")
    check_eq(rt.pread_file(dm.image, off, len(data)), data, "data after remount")
    check_eq(bdi_knob(mnt, "read_ahead_kb"), 256, "read_ahead_kb (readahead_kb=256)")
    check_eq(bdi_knob(mnt, "max_ratio"), 2, "max_ratio (max_dirty_percent=2)")
    check_direct_coherence(dm.image, rng, bypass=False)

    log("--- writeback_cache=off: the write itself fails")
    fd = os.open(dm.image, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\x5a" * 4096, size)
        check(False, "write past the end with writeback_cache=off succeeded")
    except OSError as e:
        check_eq(e.errno, errno.EFBIG, "errno of a write past the end")
    finally:
        os.close(fd)
    dm.stop()


if __name__ == "__main__":
    rt.run("page_cache", body)
