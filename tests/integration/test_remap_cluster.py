#!/usr/bin/env python3
"""Requests across several remapped sectors whose spare slots sit side by side.

Slots are handed out in order, so remapping LBAs 100-103, then 110 and 120, puts them in slots
0-5, one run of the spare. The daemon then sends the four adjacent sectors as one transfer and
all six slots as one vectored read/write (block::Backing merges runs that follow each other in a
file). The originals on the backing are overwritten with garbage behind the daemon's back, so
every byte read back through disk.img proves it came from the right slot, and a write across the
range must land in the slots and leave the garbage alone.
"""

import mmap
import os
import random
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check_eq, log  # noqa: E402

BACKING_BYTES = 16 * rt.MiB
S = rt.SECTOR
FIRST, COUNT = 96, 32  # the request: sectors 96-127
REMAPPED = [100, 101, 102, 103, 110, 120]


def body(ctx):
    backing, db = ctx.path("backing.img"), ctx.path("remap.db")
    rt.make_sparse(backing, BACKING_BYTES)
    image_bytes = rt.expected_image_bytes(BACKING_BYTES)
    rng = random.Random("remapfs-remap-cluster")
    daemon = ctx.mount_fg(backing, ctx.mkdir("mnt"), f"db={db},noscan")
    data = rng.randbytes(COUNT * S)
    rt.pwrite_file(daemon.image, FIRST * S, data)

    log(f"--- remap LBAs {REMAPPED} live: slots 0-5 in that order")
    for lba in REMAPPED:
        rt.remapctl("--db", db, "remap", str(lba), quiet=True)
    slots = {e["lba"]: e["spare_slot"] for e in rt.remapctl_json("--db", db, "list")}
    check_eq([slots[lba] for lba in REMAPPED], list(range(len(REMAPPED))), "slots of the remapped LBAs")

    garbage = b"\xde\xad\xbe\xef" * (S // 4)
    for lba in REMAPPED:
        rt.pwrite_file(backing, lba * S, garbage)
    rt.drop_caches()

    def expected(buf, i):
        return buf[(i - FIRST) * S:(i - FIRST + 1) * S]

    log("--- one O_DIRECT read across all of them")
    got = rt.pread_file(daemon.image, FIRST * S, COUNT * S, direct=True)
    bad = [FIRST + i for i in range(COUNT) if got[i * S:(i + 1) * S] != data[i * S:(i + 1) * S]]
    check_eq(bad, [], "sectors of the read that differ from what was written")

    log("--- one O_DIRECT write across all of them")
    data2 = rng.randbytes(COUNT * S)
    fd = os.open(daemon.image, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, COUNT * S)  # page-aligned, as O_DIRECT wants
    buf.write(data2)
    try:
        check_eq(os.pwritev(fd, [buf], FIRST * S), COUNT * S, "bytes written")
        os.fsync(fd)
    finally:
        os.close(fd)
        buf.close()
    for lba in REMAPPED:
        check_eq(rt.pread_file(backing, rt.slot_offset(image_bytes, slots[lba], BACKING_BYTES), S, direct=True), expected(data2, lba),
                 f"slot {slots[lba]} holds LBA {lba}'s new data")
        check_eq(rt.pread_file(backing, lba * S, S, direct=True), garbage, f"LBA {lba} on the backing untouched")
    check_eq(rt.pread_file(backing, 105 * S, S, direct=True), expected(data2, 105), "LBA 105 written in place")
    rt.drop_caches()
    got = rt.pread_file(daemon.image, FIRST * S, COUNT * S, direct=True)
    bad = [FIRST + i for i in range(COUNT) if got[i * S:(i + 1) * S] != data2[i * S:(i + 1) * S]]
    check_eq(bad, [], "sectors of the read-back that differ from the second write")
    daemon.stop()


if __name__ == "__main__":
    rt.run("remap_cluster", body)
