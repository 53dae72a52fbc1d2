#!/usr/bin/env python3
"""Live remap/unremap while other processes write and read the same sectors through disk.img.

A writer thread rewrites sectors LBA0..LBA0+7 with versioned patterns (O_DIRECT, one sector per
write, plus 2-sector writes straddling two sectors); a reader thread reads them (O_DIRECT) and checks
every sector it sees is a well-formed pattern for that LBA whose version is not older than the last
write completed before the read began. Meanwhile remapctl remaps and unremaps those sectors again
and again. At the end each sector holds its last write, through disk.img, after a restart, and
offline verify finds nothing unreadable.
"""

import mmap
import os
import random
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import Fail, check, check_eq, log  # noqa: E402

B = 32 * rt.MiB
S = rt.SECTOR
LBA0 = 1000
N = 8
ROUNDS = 8


def pattern(lba, version):
    head = struct.pack("<8sQQ", b"REMAPTST", lba, version)
    return (head * (S // len(head) + 1))[:S]


def parse(buf, lba):
    magic, l, v = struct.unpack_from("<8sQQ", buf, 0)
    if buf == bytes(S):
        return 0  # never written
    if magic != b"REMAPTST" or l != lba or buf != pattern(lba, v):
        return None
    return v


class IO:
    def __init__(self, image):
        self.image = image
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = [0] * N      # last version whose write returned
        self.issued = [0] * N    # highest version issued
        self.errors = []
        self.writes = 0
        self.reads = 0

    def writer(self):
        fd = os.open(self.image, os.O_WRONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 2 * S)
        rng = random.Random(1)
        try:
            while not self.stop.is_set():
                i = rng.randrange(N)
                two = i + 1 < N and rng.random() < 0.3
                idx = [i, i + 1] if two else [i]
                with self.lock:
                    vers = []
                    for j in idx:
                        self.issued[j] += 1
                        vers.append(self.issued[j])
                for k, j in enumerate(idx):
                    buf[k * S:(k + 1) * S] = pattern(LBA0 + j, vers[k])
                view = memoryview(buf)[:len(idx) * S]
                n = os.pwritev(fd, [view], (LBA0 + i) * S)
                view.release()
                if n != len(idx) * S:
                    self.errors.append(f"short write {n}")
                with self.lock:
                    for k, j in enumerate(idx):
                        self.done[j] = max(self.done[j], vers[k])
                self.writes += 1
        except OSError as e:
            self.errors.append(f"writer: {e}")
        finally:
            buf.close()
            os.close(fd)

    def reader(self):
        fd = os.open(self.image, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, N * S)
        try:
            while not self.stop.is_set():
                with self.lock:
                    floor = list(self.done)
                n = os.preadv(fd, [buf], LBA0 * S)
                with self.lock:
                    ceil = list(self.issued)
                if n != N * S:
                    self.errors.append(f"short read {n}")
                    continue
                for j in range(N):
                    v = parse(bytes(buf[j * S:(j + 1) * S]), LBA0 + j)
                    if v is None:
                        self.errors.append(f"read of LBA {LBA0 + j}: not a valid pattern "
                                           f"(first bytes {bytes(buf[j * S:j * S + 24]).hex()})")
                    elif v < floor[j] or v > ceil[j]:
                        self.errors.append(f"read of LBA {LBA0 + j}: version {v} outside [{floor[j]}, {ceil[j]}]")
                self.reads += 1
                if len(self.errors) > 20:
                    return
        except OSError as e:
            self.errors.append(f"reader: {e}")
        finally:
            buf.close()
            os.close(fd)


def body(ctx):
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    rt.make_sparse(backing, B)
    d = ctx.mount_fg(backing, mnt, f"db={db}")
    io = IO(d.image)
    threads = [threading.Thread(target=io.writer), threading.Thread(target=io.reader)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for r in range(ROUNDS):
            for j in range(0, N, 2):
                rt.remapctl("--db", db, "remap", str(LBA0 + j), quiet=True)
            time.sleep(0.05)
            for j in range(0, N, 2):
                rt.remapctl("--db", db, "unremap", str(LBA0 + j), quiet=True)
            log(f"  round {r}: {io.writes} writes, {io.reads} reads, {len(io.errors)} errors so far")
        # Leave half of them remapped for the restart.
        for j in range(1, N, 2):
            rt.remapctl("--db", db, "remap", str(LBA0 + j), quiet=True)
        time.sleep(0.3)
    finally:
        io.stop.set()
        for t in threads:
            t.join(timeout=30)
    if io.errors:
        raise Fail(f"{len(io.errors)} I/O errors or bad reads during live remaps, first ones:\n  " +
                   "\n  ".join(io.errors[:10]))
    check(io.writes > 50 and io.reads > 20, f"I/O ran during the remaps ({io.writes} writes, {io.reads} reads)")
    check_eq(io.done, io.issued, "every issued write completed")

    def final_check(image, what):
        rt.drop_caches()
        got = rt.pread_file(image, LBA0 * S, N * S, direct=True)
        for j in range(N):
            check_eq(parse(got[j * S:(j + 1) * S], LBA0 + j), io.done[j], f"{what}: version of LBA {LBA0 + j}")

    final_check(d.image, "live")
    entries = rt.remapctl_json("--db", db, "list")
    check_eq(sorted(e["lba"] for e in entries), [LBA0 + j for j in range(1, N, 2)], "remapped LBAs")
    d.stop()
    v = rt.remapctl_json("--db", db, "verify")
    check_eq(v.get("unreadable"), [], "offline verify: unreadable")
    d = ctx.mount_fg(backing, mnt, f"db={db}")
    final_check(d.image, "after restart")
    d.stop()


if __name__ == "__main__":
    rt.run("remap_under_io", body)
