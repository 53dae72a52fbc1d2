#!/usr/bin/env python3
"""ext4 on an image with 100 write-bad sectors: no write error ever reaches the filesystem.

A 256 MiB backing; 100 image sectors spread evenly over the image (first and last included)
fail every write (-o allow_inject,inject_file=...). remapfs -f runs in the background, the image
goes on a direct-io loop device, mkfs.ext4 writes its inode tables and journal in full, a file
tree is written, then one big file fills the filesystem until ENOSPC so nearly every block is
written. After sync + drop_caches every checksum matches, e2fsck -fn is clean, the kernel logged
no I/O error for the loop device, and with the sqlite3 CLI every one of the 100 sectors is in
table remap with reason 'write-error' (and nothing else is, and nothing is pending).
"""

import errno
import hashlib
import mmap
import os
import random

import faulttest as ft
import remaptest as rt
from remaptest import Fail, check, check_eq, log

BACKING_BYTES = 256 * rt.MiB
BAD_COUNT = 100


def bad_sectors(image_sectors):
    # Evenly spread, sector 0 and the last sector included.
    return sorted({i * (image_sectors - 1) // (BAD_COUNT - 1) for i in range(BAD_COUNT)})


def write_tree(root, rng):
    sums = {}
    for d in range(6):
        dp = os.path.join(root, f"dir{d}", f"sub{d % 3}")
        os.makedirs(dp, exist_ok=True)
        for i in range(25):
            size = rng.choice([0, 1, 511, 4096, 4097, 65536, 300_000, rng.randrange(1, 2 * rt.MiB)])
            p = os.path.join(dp, f"f{i}.bin")
            sums[os.path.relpath(p, root)] = rt.write_random_file(p, size, rng)
    return sums


def fill(path, rng):
    """Write random data to path until ENOSPC; return (sha256, bytes written)."""
    h = hashlib.sha256()
    total = 0
    chunk = 1 << 20
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        full = False
        while not full:
            data = rng.randbytes(chunk)
            off = 0
            while off < len(data):
                try:
                    n = os.write(fd, data[off:])
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        full = True
                        break
                    raise Fail(f"writing the fill file: {e} (only ENOSPC is acceptable)")
                if n == 0:
                    full = True
                    break
                h.update(data[off:off + n])
                off += n
                total += n
        try:
            os.fsync(fd)
        except OSError as e:
            raise Fail(f"fsync of the fill file: {e}")
    finally:
        os.close(fd)
    return h.hexdigest(), total


def body(ctx):
    mkfs = rt.tool("mkfs.ext4")
    e2fsck = rt.tool("e2fsck")
    rng = random.Random(0xE4F5)
    klog = ft.KernelLog()

    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    fsdir = ctx.mkdir("fs")
    rt.make_sparse(backing, BACKING_BYTES)

    image_sectors = rt.expected_image_bytes(BACKING_BYTES) // rt.SECTOR
    bad = bad_sectors(image_sectors)
    check_eq(len(bad), BAD_COUNT, "number of distinct bad sectors")
    rules = ctx.path("faults.json")
    ft.write_rules(rules, [{"sectors": s, "op": "write", "errno": "EIO"} for s in bad])
    log(f"  {BAD_COUNT} write-bad sectors: {bad[:4]} ... {bad[-3:]}")

    d = ctx.mount_fg(backing, mnt, f"db={db},allow_inject,inject_file={rules}")
    st = ft.status(db)
    check_eq(st["image_sectors"], image_sectors, "image_sectors (bad sectors were placed on it)")
    check(st["spare_slots_total"] >= BAD_COUNT, f"spare has room for {BAD_COUNT} remaps ({st['spare_slots_total']} slots)")
    inj = rt.remapctl_json("--db", db, "inject", "list")
    nrules = len(inj["rules"]) if isinstance(inj, dict) else len(inj)
    check_eq(nrules, BAD_COUNT, "fault rules loaded from inject_file")

    loop = ctx.losetup(d.image, "on")
    check_eq(loop.sysfs("dio"), "1", "loop device uses direct I/O")

    rt.sh([mkfs, "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", loop.dev], timeout=300)
    m = ctx.mount_dev(loop.dev, fsdir)
    after_mkfs = len(ft.remap_rows(db))
    log(f"  remaps after mkfs + mount: {after_mkfs}")

    sums = write_tree(fsdir, rng)
    log(f"  wrote a tree of {len(sums)} files")
    fill_sum, fill_bytes = fill(os.path.join(fsdir, "fill.bin"), rng)
    log(f"  fill file: {fill_bytes / rt.MiB:.1f} MiB until ENOSPC")
    sums["fill.bin"] = fill_sum
    vfs = os.statvfs(fsdir)
    log(f"  free blocks after fill: {vfs.f_bfree} of {vfs.f_blocks} (block {vfs.f_frsize})")
    os.sync()
    rt.drop_caches()
    got = rt.tree_checksums(fsdir)
    check(sorted(got) == sorted(sums), f"the same {len(sums)} files are there after drop_caches "
          f"(extra: {sorted(set(got) - set(sums))[:5]}, missing: {sorted(set(sums) - set(got))[:5]})")
    bad_files = [p for p in sums if got[p] != sums[p]]
    check(not bad_files, f"all {len(sums)} checksums match after drop_caches (mismatches: {bad_files[:5]})")
    check_eq(os.path.getsize(os.path.join(fsdir, "fill.bin")), fill_bytes, "fill file size")
    m.umount()

    r = rt.sh([e2fsck, "-fn", loop.dev], check_rc=False, timeout=300)
    check(r.returncode == 0, f"e2fsck -fn exits 0 (got {r.returncode}; {r.stdout.strip()[-400:]})")

    rows = ft.remap_rows(db)
    via_fs = sorted(s for s in bad if s in rows)
    missing = sorted(s for s in bad if s not in rows)
    log(f"  bad sectors remapped by mkfs + filesystem writes: {len(via_fs)}; never written by ext4: {missing}")
    check(len(via_fs) >= BAD_COUNT * 9 // 10,
          f"at least 90% of the bad sectors were hit by ordinary filesystem writes ({len(via_fs)})")

    # ext4 leaves a few blocks it never writes (free blocks it could not allocate after ENOSPC,
    # reserved GDT blocks, ...). Those sectors never saw a write, so they had no reason to be
    # remapped. To show that they too would have been remapped silently, rewrite each such sector
    # with its own contents straight through the loop device (O_DIRECT), after e2fsck; the write
    # must succeed like every other one did.
    if missing:
        fd = os.open(loop.dev, os.O_RDWR | os.O_DIRECT)
        try:
            buf = mmap.mmap(-1, rt.SECTOR)
            for s in missing:
                n = os.preadv(fd, [buf], s * rt.SECTOR)
                if n != rt.SECTOR:
                    raise Fail(f"short read of sector {s} through {loop.dev}: {n}")
                try:
                    n = os.pwritev(fd, [buf], s * rt.SECTOR)
                except OSError as e:
                    raise Fail(f"direct rewrite of never-written sector {s} through {loop.dev} failed: {e}")
                check_eq(n, rt.SECTOR, f"rewrite of sector {s}")
            os.fsync(fd)
        finally:
            os.close(fd)
        rows = ft.remap_rows(db)

    not_remapped = [s for s in bad if s not in rows]
    check(not not_remapped, f"every one of the {BAD_COUNT} bad sectors is in table remap (missing: {not_remapped})")
    reasons = {rows[s][2] for s in bad}
    check_eq(reasons, {"write-error"}, "reasons of the remaps")
    check_eq(sorted(set(rows) - set(bad)), [], "remapped sectors that were not bad")
    check_eq(ft.pending_lbas(db), [], "pending sectors")
    st = ft.status(db)
    check_eq(st["spare_slots_used"], BAD_COUNT, "status spare_slots_used")
    check_eq(st["state"], "ok", "status state")
    ft.check_no_kernel_errors(klog, loop.dev)

    # The remapped data survives: e2fsck again after detach + restart (without faults).
    loop.detach()
    d.stop()
    d2 = ctx.mount_fg(backing, mnt, f"db={db}")
    loop2 = ctx.losetup(d2.image, "on")
    r = rt.sh([e2fsck, "-fn", loop2.dev], check_rc=False, timeout=300)
    check(r.returncode == 0, f"e2fsck -fn after a restart without faults exits 0 (got {r.returncode})")
    m2 = ctx.mount_dev(loop2.dev, fsdir, "ro")
    got = rt.tree_checksums(fsdir)
    bad_files = [p for p in sums if got.get(p) != sums[p]]
    check(not bad_files, f"all {len(sums)} checksums match after a restart (mismatches: {bad_files[:5]})")
    m2.umount()
    loop2.detach()
    d2.stop()
    ft.check_db_ok(db)
    klog.close()
    log(f"RESULT: {BAD_COUNT} bad sectors, {len(via_fs)} remapped by filesystem writes, "
        f"{len(missing)} by direct rewrites, 0 I/O errors")


if __name__ == "__main__":
    rt.run("faults_ext4", body, needs_loop=True, tools=("mkfs.ext4", "e2fsck", "sqlite3", "blockdev"))
