#!/usr/bin/env python3
"""Crash loop: kill -9 the daemon under O_DIRECT writes with write faults; no acknowledged write
may be lost and the database must stay sound.

    crash_loop.py [--cycles N] [--seed S] [--probability P] [--writers K]

Every cycle, on the same backing and database:
  1. remapfs -f -o db=DB,allow_inject,spare_size=8M BACKING MNT (our child; its pid is tracked)
  2. fault rules (remapctl inject add): image writes fail with probability P; some fixed sectors
     of the region fail every write (4, or an eighth of the region in the slow-spare cycles);
     spare-slot writes get 2, 10 or 200 ms of latency, which widens the window in which a kill
     lands in the middle of a remap, and fail with probability 0.05 (slot retired, sector
     relocated)
  3. losetup --direct-io=on on MNT/disk.img
  4. K writer subprocesses write self-describing 4 KiB blocks (magic, block number, generation,
     cycle, crc32) with O_DIRECT from an mmap-aligned buffer to random blocks of a fixed 32 MiB
     region (disjoint subsets per writer). Before each pwrite a writer reports "W block gen" on its
     pipe, after pwrite returns "A block gen": the parent knows which writes were ACKNOWLEDGED and
     which one was in flight.
  5. after a random 0.5-3 s: kill -9 the daemon; the writers get EIO and exit (or are killed)
  6. losetup -d; fusermount3 -uz MNT
  7. remapfs again without faults, losetup again, read the whole region back (O_DIRECT): every
     block holds its last acknowledged generation (for a block that was in flight at the kill:
     that or the in-flight one); blocks never written hold zeros; every header and crc is intact
  8. sqlite3 DB 'PRAGMA integrity_check' is ok; remapctl --db DB list --json parses and agrees
     with table remap; the spare allocator tables agree (no slot both used and free/retired, all
     below next_slot); nothing pending; then a clean stop.
  9. the device's own record agrees: `remapctl recover` into a scratch database (as if the
     database were lost) rebuilds the same remaps and retired slots from the slot headers; every
     5th cycle the rebuilt database replaces the real one, so the next cycle's check (7) reads
     every acknowledged block through a table rebuilt from the device.
Exit 0 only if every cycle passes. Prints one line per cycle and a final summary:
    crash loop: N cycles, M acknowledged writes, 0 lost, 0 DB check failures

Why P = 0.05 by default: the injector rolls the dice per backing request and remapfs retries a
failed write in place once (sector by sector) before it remaps, so a write is remapped with
probability ~P^2; P = 0.01 would give almost no remaps.
"""

import argparse
import mmap
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import faulttest as ft
import remaptest as rt
from remaptest import Fail, log

BLOCK = 4096
MAGIC = b"RMFSCRSH"
HDR = struct.Struct("<8sQQI")  # magic, block, generation, cycle
REGION_BLOCKS = 8192  # 32 MiB at the start of the image
BACKING_BYTES = 256 * rt.MiB
SPARE_SIZE = "8M"


# ------------------------------------------------------------------------------------------
# writer (a subprocess: a kill or a stuck I/O never blocks the parent)


def make_block(block, gen, cycle):
    head = HDR.pack(MAGIC, block, gen, cycle)
    body = head + os.urandom(BLOCK - len(head) - 4)
    return body + struct.pack("<I", zlib.crc32(body))


def parse_block(data):
    """(block, gen, cycle) of a valid self-describing block; 'zero' for an all-zero block; None if corrupt."""
    if data == bytes(BLOCK):
        return "zero"
    magic, block, gen, cycle = HDR.unpack_from(data)
    if magic != MAGIC:
        return None
    (crc,) = struct.unpack_from("<I", data, BLOCK - 4)
    if zlib.crc32(data[: BLOCK - 4]) != crc:
        return None
    return block, gen, cycle


def writer_main(dev, wid, nwriters, start_gen, cycle, seed):
    rng = random.Random(seed)
    mine = [b for b in range(REGION_BLOCKS) if b % nwriters == wid]
    out = sys.stdout.fileno()
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    n = 0
    while True:
        b = rng.choice(mine)
        gen = start_gen + n * nwriters + wid
        n += 1
        buf[:] = make_block(b, gen, cycle)
        os.write(out, f"W {b} {gen}\n".encode())
        try:
            done = os.pwritev(fd, [buf], b * BLOCK)
        except OSError as e:
            os.write(out, f"E {b} {gen} {e.errno} {time.monotonic():.6f}\n".encode())
            return 1
        if done != BLOCK:
            os.write(out, f"E {b} {gen} short:{done} {time.monotonic():.6f}\n".encode())
            return 1
        os.write(out, f"A {b} {gen}\n".encode())


class Writer(rt.Resource):
    def __init__(self, dev, wid, nwriters, start_gen, cycle, seed):
        self.wid = wid
        self.acked = []  # (block, gen) in order
        self.inflight = None  # (block, gen)
        self.errors = []  # (block, gen, errno, monotonic time)
        self.lock = threading.Lock()
        cmd = [sys.executable, os.path.abspath(__file__), "--writer", dev, str(wid), str(nwriters),
               str(start_gen), str(cycle), str(seed)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.name = f"writer {wid} pid {self.proc.pid}"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.decode().split()
            if not parts:
                continue
            with self.lock:
                if parts[0] == "W":
                    self.inflight = (int(parts[1]), int(parts[2]))
                elif parts[0] == "A":
                    bg = (int(parts[1]), int(parts[2]))
                    self.acked.append(bg)
                    if self.inflight == bg:
                        self.inflight = None
                elif parts[0] == "E":
                    self.errors.append((int(parts[1]), int(parts[2]), parts[3], float(parts[4])))

    def stop(self, timeout=10):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"  writer {self.wid} pid {self.proc.pid} still running {timeout}s after the kill; SIGKILL")
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.thread.join(timeout=10)

    def release(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"  cleanup: writer pid {self.proc.pid} does not die (stuck in I/O?)")


# ------------------------------------------------------------------------------------------
# the loop


def read_region(dev):
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    try:
        chunk = 256 * BLOCK
        buf = mmap.mmap(-1, chunk)
        out = []
        for off in range(0, REGION_BLOCKS * BLOCK, chunk):
            n = os.preadv(fd, [buf], off)
            if n != chunk:
                raise Fail(f"short read at {off} of {dev}: {n}")
            data = bytes(buf)
            out.extend(data[i:i + BLOCK] for i in range(0, chunk, BLOCK))
        return out
    finally:
        os.close(fd)


def kill_daemon(d):
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(timeout=30)
    d.stopped = True


def body_for(args):
    def body(ctx):
        rng = random.Random(args.seed)
        log(f"  seed {args.seed}, probability {args.probability} (spare {args.spare_probability}), {args.writers} writers, {args.cycles} cycles")
        backing = ctx.path("backing.img")
        db = ctx.path("remap.db")
        mnt = ctx.mkdir("mnt")
        rt.make_sparse(backing, BACKING_BYTES)
        fusermount = rt.tool("fusermount3")

        expect = [{0} for _ in range(REGION_BLOCKS)]  # acceptable generations per block (0 = zeros)
        next_gen = 1
        totals = {"acked": 0, "lost": 0, "corrupt": 0, "db_fail": 0, "failed_cycles": 0, "early_errors": 0}
        t_all = time.monotonic()

        for cycle in range(1, args.cycles + 1):
            t0 = time.monotonic()
            problems = []
            # 1-3: daemon with faults, rules, loop device
            d = ctx.mount_fg(backing, mnt, f"db={db},allow_inject,spare_size={SPARE_SIZE}")
            st = ft.status(db)
            last = st["image_sectors"] - 1
            rt.remapctl("--db", db, "inject", "add", "--sectors", f"0-{last}", "--op", "write",
                        "--probability", str(args.probability), quiet=True)
            # Spare-slot writes are slowed down (by 2, 10 or 200 ms, varying per cycle) so that the
            # kill often lands while a remap is under way (slot written, not yet committed). In
            # the 200 ms cycles a contiguous eighth of the region fails every write, so most of
            # the time goes into remaps and the kill nearly always hits one; otherwise 4 single
            # sectors do.
            spare_latency = rng.choice([2, 10, 200])
            if spare_latency == 200:
                a = rng.randrange(REGION_BLOCKS - REGION_BLOCKS // 8)
                bad = [f"{a}-{a + REGION_BLOCKS // 8 - 1}"]
            else:
                bad = [str(x) for x in rng.sample(range(REGION_BLOCKS), 4)]
            for spec in bad:
                rt.remapctl("--db", db, "inject", "add", "--sectors", spec, "--op", "write", quiet=True)
            rt.remapctl("--db", db, "inject", "add", "--sectors", f"0-{st['spare_slots_total'] - 1}",
                        "--target", "spare", "--op", "write", "--errno", "none",
                        "--latency-ms", str(spare_latency), quiet=True)
            # Some spare-slot writes fail too: the slot is retired and the sector goes to the next
            # one (and a remapped sector whose slot fails is relocated).
            rt.remapctl("--db", db, "inject", "add", "--sectors", f"0-{st['spare_slots_total'] - 1}",
                        "--target", "spare", "--op", "write", "--probability", str(args.spare_probability),
                        quiet=True)
            loop = ctx.losetup(d.image, "on")
            if loop.sysfs("dio") != "1":
                raise Fail(f"{loop.dev} is not in direct-io mode")

            # 4-5: writers, then kill -9 at a random moment
            writers = []
            for w in range(args.writers):
                writers.append(ctx.add(Writer(loop.dev, w, args.writers, next_gen, cycle, rng.getrandbits(32))))
            delay = rng.uniform(0.5, 3.0)
            time.sleep(delay)
            t_kill = time.monotonic()
            kill_daemon(d)
            for w in writers:
                w.stop()
            # 6: take the dead instance down
            loop.detach()
            rt.sh([fusermount, "-uz", mnt], quiet=True, check_rc=False)
            if rt.is_mounted(mnt):
                rt.sh(["umount", "-l", mnt], quiet=True, check_rc=False)

            acked = sum(len(w.acked) for w in writers)
            inflight = [w.inflight for w in writers if w.inflight]
            for w in writers:
                for (b, g, e, t) in w.errors:
                    if t < t_kill:
                        problems.append(f"writer {w.wid}: write of block {b} gen {g} failed with {e} "
                                        f"{t_kill - t:.3f}s BEFORE the kill")
                        totals["early_errors"] += 1
            # What each block must hold now.
            want = [set(s) for s in expect]
            maxgen = next_gen
            for w in writers:
                for b, g in w.acked:
                    want[b] = {g}
                    maxgen = max(maxgen, g)
            for b, g in inflight:
                want[b] = want[b] | {g}
                maxgen = max(maxgen, g)
            next_gen = maxgen + args.writers + 1

            # 7: restart without faults, verify
            d2 = ctx.mount_fg(backing, mnt, f"db={db},spare_size={SPARE_SIZE}")
            loop2 = ctx.losetup(d2.image, "on")
            blocks = read_region(loop2.dev)
            lost = corrupt = 0
            for b, data in enumerate(blocks):
                p = parse_block(data)
                if p is None:
                    corrupt += 1
                    if corrupt <= 5:
                        problems.append(f"block {b}: corrupt (header {data[:28].hex()})")
                    continue
                g = 0 if p == "zero" else p[1]
                if p != "zero" and p[0] != b:
                    corrupt += 1
                    if corrupt <= 5:
                        problems.append(f"block {b}: holds block {p[0]} gen {p[1]} (misdirected)")
                    continue
                if g not in want[b]:
                    lost += 1
                    if lost <= 5:
                        problems.append(f"block {b}: gen {g}, expected one of {sorted(want[b])}")
                    continue
                expect[b] = {g}

            # 8: the database
            integ = ft.integrity_check(db)
            rows = ft.remap_rows(db)
            pend = ft.pending_lbas(db)
            try:
                lst = rt.remapctl_json("--db", db, "list")
                list_ok = isinstance(lst, list) and len(lst) == len(rows) and \
                    sorted(int(x["lba"]) for x in lst) == sorted(rows)
                list_note = "ok" if list_ok else f"list --json has {len(lst)} entries, table remap {len(rows)}"
            except Fail as e:
                list_ok, list_note = False, f"remapctl list --json failed: {e}"
            alloc = ft.allocator_problems(db)
            retired = int(ft.query(db, "select count(*) from retired_slot")[0][0])
            db_ok = integ == "ok" and list_ok and not pend and not alloc
            problems.extend(f"allocator: {a}" for a in alloc)
            if integ != "ok":
                problems.append(f"PRAGMA integrity_check: {integ}")
            if not list_ok:
                problems.append(list_note)
            if pend:
                problems.append(f"pending sectors after a write-only fault run: {pend[:10]}")
            loop2.detach()
            d2.stop()

            # 9: the device's own record says the same as the database
            scratch = ctx.path("rebuilt.db")
            for sfx in ("", "-wal", "-shm"):
                if os.path.exists(scratch + sfx):
                    os.unlink(scratch + sfx)
            rt.remapctl("--db", scratch, "--backing", backing, "recover", "--spare-size", SPARE_SIZE, quiet=True)
            rebuilt = {int(r[0]): int(r[1]) for r in ft.query(scratch, "select lba, spare_slot from remap")}
            mine = {lba: v[0] for lba, v in rows.items()}
            if rebuilt != mine:
                diff = sorted(set(rebuilt.items()) ^ set(mine.items()))[:10]
                problems.append(f"the table rebuilt from the device differs from the database: {diff}")
                totals["db_fail"] += 1
            retired_db = sorted(int(r[0]) for r in ft.query(db, "select slot from retired_slot"))
            retired_dev = sorted(int(r[0]) for r in ft.query(scratch, "select slot from retired_slot"))
            if retired_db != retired_dev:
                problems.append(f"retired slots: database {retired_db[:10]}, device {retired_dev[:10]}")
            if cycle % 5 == 0:
                for sfx in ("", "-wal", "-shm"):
                    if os.path.exists(db + sfx):
                        os.unlink(db + sfx)
                os.rename(scratch, db)

            totals["acked"] += acked
            totals["lost"] += lost
            totals["corrupt"] += corrupt
            totals["db_fail"] += 0 if db_ok else 1
            reasons = {}
            for (_, _, r) in rows.values():
                reasons[r] = reasons.get(r, 0) + 1
            log(f"cycle {cycle}/{args.cycles}: killed after {delay:.2f}s (spare latency {spare_latency} ms), {acked} acknowledged writes, "
                f"{len(inflight)} in flight, remaps so far {len(rows)} {reasons}, {retired} slots retired, lost {lost}, corrupt {corrupt}, "
                f"DB check {integ}{'' if list_ok else ' / ' + list_note} ({time.monotonic() - t0:.1f}s)")
            if problems:
                totals["failed_cycles"] += 1
                for p in problems:
                    log(f"  PROBLEM: {p}")
                log("  daemon log (faults run) tail:\n" + d.log_text()[-2000:])
                if args.stop_on_failure:
                    break

        log(f"crash loop: {args.cycles} cycles, {totals['acked']} acknowledged writes, {totals['lost']} lost, "
            f"{totals['db_fail']} DB check failures ({totals['corrupt']} corrupt blocks, "
            f"{totals['early_errors']} write errors before a kill, {time.monotonic() - t_all:.0f}s)")
        if totals["failed_cycles"]:
            raise Fail(f"{totals['failed_cycles']} of {args.cycles} cycles failed")

    return body


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--writer":
        dev, wid, nw, start, cycle, seed = sys.argv[2:8]
        sys.exit(writer_main(dev, int(wid), int(nw), int(start), int(cycle), int(seed)))
    ap = argparse.ArgumentParser(description="kill -9 remapfs under O_DIRECT writes with faults; no acked write may be lost")
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--probability", type=float, default=0.05)
    ap.add_argument("--spare-probability", type=float, default=0.05,
                    help="probability that a spare-slot write fails (EIO)")
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--stop-on-failure", action="store_true")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    rt.run("crash_loop", body_for(args), needs_loop=True, tools=("sqlite3",))


if __name__ == "__main__":
    main()
