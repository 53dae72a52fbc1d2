#!/usr/bin/env python3
"""Host refusals are not bad sectors; a bad spare slot is retired on a live manual remap.

- A sparse backing on a 16 MiB tmpfs that fills up: O_DIRECT writes to disk.img get ENOSPC,
  exactly as the host said, no spare slot is retired (at most 1 allowed), nothing is remapped or
  pending; once the host has room again the same writes work and read back.
- A backing on ramfs, which refuses O_DIRECT: refused with one line that names
  backing_io=buffered; with it, the mount works and warns.
- `remapctl remap` on a live mount whose first free spare slot fails its write: the slot is
  retired and the next one used; the data reads back from it.
- A remap stuck for 10 s on a slot that does not answer leaves `remapctl status` answered.
"""

import errno
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

S = rt.SECTOR


class FsMount(rt.Resource):
    def __init__(self, fstype, mnt, opts):
        self.mnt = mnt
        self.name = f"{fstype} at {mnt}"
        rt.sh(["mount", "-t", fstype, "-o", opts, fstype, mnt])

    def release(self):
        if rt.is_mounted(self.mnt):
            rt.unmount(self.mnt, fuse=False, lazy_fallback=True)


def counts(db):
    st = rt.remapctl_json("--db", db, "status", quiet=True)
    return st["spare_slots_retired"], st["remaps"], st["pending"]


def full_host(ctx):
    host = ctx.mkdir("tmpfs")
    ctx.add(FsMount("tmpfs", host, "size=16m"))
    backing = os.path.join(host, "backing.img")
    rt.make_sparse(backing, 64 * rt.MiB)  # promises more than the host has
    db = ctx.path("full.db")               # off the full filesystem
    mnt = ctx.mkdir("mnt-full")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    filler = os.path.join(host, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\xaa" * rt.MiB)
                f.flush()
        except OSError as e:
            check_eq(e.errno, errno.ENOSPC, "the tmpfs is full")
    os.truncate(filler, os.path.getsize(filler) - 256 * 1024)  # 256 KiB left
    block = os.urandom(S)
    seen = None
    written = 0
    for lba in range(1000, 1000 + 256):  # 1 MiB: more than the host has
        try:
            rt.write_direct(d.image, lba * S, block)
            written += 1
        except OSError as e:
            seen = e.errno
            break
    log(f"  {written} writes landed before the host said {errno.errorcode.get(seen, seen)}")
    check_eq(seen, errno.ENOSPC, "the writer gets the host's ENOSPC")
    retired, remaps, pending = counts(db)
    check(retired <= 1, f"the spare kept its slots ({retired} retired)")
    check_eq((remaps, pending), (0, 0), "nothing remapped or pending")
    os.unlink(filler)
    for lba in range(1000, 1000 + 256):
        rt.write_direct(d.image, lba * S, block)
    check_eq(rt.pread_file(d.image, 1200 * S, S, direct=True), block, "with room again the writes work")
    check_eq(counts(db), (0, 0, 0), "and still nothing is retired, remapped or pending")
    d.stop()


def no_o_direct(ctx):
    host = ctx.mkdir("ramfs")
    ctx.add(FsMount("ramfs", host, "mode=0700"))
    backing = os.path.join(host, "backing.img")
    rt.make_sparse(backing, 16 * rt.MiB)
    db = ctx.path("ram.db")
    mnt = ctx.mkdir("mnt-ram")
    ctx.expect_mount_refused(backing, mnt, f"db={db}", "backing_io=buffered")
    check(not os.path.exists(db), "the refused mount created no database")
    d = ctx.mount_fg(backing, mnt, f"db={db},backing_io=buffered,noscan")
    check("cannot be remapped" in d.log_text(), "buffered by name: the daemon warns what it costs")
    block = os.urandom(S)
    rt.write_direct(d.image, 7 * S, block)
    check_eq(rt.pread_file(d.image, 7 * S, S, direct=True), block, "a buffered backing serves data")
    d.stop()


def bad_slot_on_manual_remap(ctx):
    backing = ctx.path("slot.img")
    rt.make_sparse(backing, 64 * rt.MiB)
    db = ctx.path("slot.db")
    mnt = ctx.mkdir("mnt-slot")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,allow_inject")
    block = os.urandom(S)
    rt.write_direct(d.image, 42 * S, block)
    rt.remapctl("--db", db, "inject", "add", "--sectors", "0", "--target", "spare", "--op", "write")
    rt.remapctl("--db", db, "remap", "42")
    rows = rt.sqlite(db, "select lba, spare_slot from remap")
    check_eq(rows, [["42", "1"]], "the sector went to slot 1")
    check_eq(rt.sqlite(db, "select slot from retired_slot"), [["0"]], "slot 0, which failed, is retired")
    rt.remapctl("--db", db, "inject", "clear")
    rt.drop_caches()
    check_eq(rt.pread_file(d.image, 42 * S, S, direct=True), block, "the data reads back from slot 1")
    d.stop()


def stuck_remap_leaves_status(ctx):
    backing = ctx.path("stuck.img")
    rt.make_sparse(backing, 64 * rt.MiB)
    db = ctx.path("stuck.db")
    mnt = ctx.mkdir("mnt-stuck")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,allow_inject")
    rt.remapctl("--db", db, "inject", "add", "--sectors", "0", "--target", "spare", "--op", "write",
                "--errno", "none", "--latency-ms", "10000")
    stuck = subprocess.Popen([rt.remapctl_bin(), "--db", db, "remap", "9"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        t0 = time.monotonic()
        st = rt.remapctl_json("--db", db, "status")
        took = time.monotonic() - t0
        check(stuck.poll() is None, "the remap is still waiting on its slot")
        check(took < 3, f"status answered in {took:.2f} s beside it")
        check_eq(st["daemon"]["running"], True, "from the live daemon")
    finally:
        out, err = stuck.communicate(timeout=60)
    check_eq(stuck.returncode, 0, f"the remap finished once the slot answered ({out.strip()}{err.strip()})")
    d.stop()


def body(ctx):
    log("--- a remap stuck on the backing")
    stuck_remap_leaves_status(ctx)
    log("--- a host filesystem that fills up")
    full_host(ctx)
    log("--- a host filesystem without O_DIRECT")
    no_o_direct(ctx)
    log("--- a bad spare slot met by a live manual remap")
    bad_slot_on_manual_remap(ctx)


if __name__ == "__main__":
    rt.run("host_errors", body, tools=("sqlite3",))
