#!/usr/bin/env python3
"""Buffered writers and readers of disk.img: the writeback cache and the readahead knob.

  default (writeback_cache=on): a buffered write is in the page cache until fsync, which puts it
    on the backing; a buffered write past the end of the image is never acknowledged as durable:
    fsync or close reports the error, and the backing and the next mount's image keep their size
  writeback_cache=off: the same write past the end fails at write() itself (EFBIG)
  readahead_kb: the mount's /sys/class/bdi/<dev>/read_ahead_kb after the first open (1024 by
    default, the option's value otherwise)
"""

import errno
import os
import random
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

B = 64 * rt.MiB


def bdi_readahead(mnt):
    dev = os.stat(mnt).st_dev
    with open(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb") as f:
        return int(f.read())


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
    check_eq(bdi_readahead(mnt), 1024, "read_ahead_kb (default)")

    log("--- buffered write past the end: reported, nothing grows")
    seen = write_past_end(dm.image, size)
    log(f"error seen: {seen}")
    check(seen is not None and seen[1] in (errno.EFBIG, errno.EIO, errno.ENOSPC),
          f"a buffered write past the end must fail at fsync or close, saw {seen}")
    dm.stop()
    check_eq(os.stat(backing).st_size, B, "backing size after the failed write")
    dm = ctx.mount_fg(backing, mnt, f"db={d}/remap.db,spare={d}/spare.img,writeback_cache=off,readahead_kb=256")
    check_eq(os.stat(dm.image).st_size, B, "disk.img size after remount")
    check_eq(rt.pread_file(dm.image, off, len(data)), data, "data after remount")
    check_eq(bdi_readahead(mnt), 256, "read_ahead_kb (readahead_kb=256)")

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
