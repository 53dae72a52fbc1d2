#!/usr/bin/env python3
"""A 16 TiB sparse backing mounts and serves; nothing costs memory or time in proportion to its size.

  small: a 64 MiB backing, for the baseline: time to ready and the daemon's VmRSS after the
         same O_DIRECT writes and reads as the huge one (workers' buffers are per mount, not per byte)
  huge:  the largest sparse file this filesystem takes up to 16 TiB (ext4 with 4 KiB blocks stops
         at 16 TiB - 4 KiB), default tail spare (1 %, sparse too)
    - mount to ready within 10 s
    - VmRSS at most 32 MiB above the small one's, right after mount, after a few seconds of
      sequential scanning and once the staggered order (which touches a new 128 MiB region
      every 1 MiB) has read from every one of the ~130000 regions (seconds, on a sparse file)
    - no CPU at all while the scanner is paused
    - O_DIRECT writes and reads at the start, the middle and the end of disk.img
    - a loop device on disk.img: its size, and its last 4 KiB read with O_DIRECT
    - remapctl status: the sizes; scan status: the positions (past 2^32 sectors)
    - remapctl remap of a sector near the end: data kept, slot on the raw backing, read back
    - clean unmount
Skips (77) if the filesystem of /var/tmp cannot hold a sparse file of at least 4 TiB.
"""

import errno
import mmap
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

TiB = 1 << 40
S = rt.SECTOR
READY_LIMIT_S = 10.0
RSS_MARGIN = 32 * rt.MiB


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise rt.Fail(f"/proc/{pid}/status has no {key}")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def largest_sparse(path):
    """Make the largest sparse file up to 16 TiB; returns its size or None (EFBIG at 4 TiB)."""
    for size in (16 * TiB, 16 * TiB - S):
        try:
            with open(path, "wb") as f:
                f.truncate(size)
            return size
        except OSError as e:
            if e.errno not in (errno.EFBIG, errno.EINVAL):
                raise
    lo, hi = 4 * TiB, 16 * TiB - S  # lo must fit, hi does not: bisect in 4 KiB steps
    try:
        with open(path, "wb") as f:
            f.truncate(lo)
    except OSError:
        return None
    while hi - lo > S:
        mid = (lo + hi) // 2 // S * S
        try:
            with open(path, "wb") as f:
                f.truncate(mid)
            lo = mid
        except OSError:
            hi = mid
    with open(path, "wb") as f:
        f.truncate(lo)
    return lo


def pattern(offset):
    seed = f"huge-sparse {offset}".encode()
    return (seed * (S // len(seed) + 1))[:S]


def odirect_write(path, offset, data):
    buf = mmap.mmap(-1, len(data))
    buf[:] = data
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        n = os.pwritev(fd, [buf], offset)
        if n != len(data):
            raise rt.Fail(f"short O_DIRECT write at {offset} of {path}: {n}")
        os.fsync(fd)
    finally:
        os.close(fd)
        buf.close()


def mount_timed(ctx, name, backing, opts):
    mnt = ctx.mkdir(f"{name}/mnt")
    t0 = time.monotonic()
    dm = ctx.mount_fg(backing, mnt, opts, timeout=60)
    ready = time.monotonic() - t0
    log(f"  {name}: mount to ready {ready:.3f} s (polled every 0.1 s)")
    return dm, ready


def rss(dm, name, what):
    kib = status_kib(dm.pid, "VmRSS")
    log(f"  {name} {what}: VmRSS {kib} KiB, VmHWM {status_kib(dm.pid, 'VmHWM')} KiB")
    return kib * 1024


def check_rss(dm, what, limit):
    kib = rss(dm, "huge", what) >> 10
    check(kib <= limit >> 10, f"VmRSS {what}: {kib} KiB <= {limit >> 10} KiB (the small mount's + "
                              f"{RSS_MARGIN >> 20} MiB)")


def body(ctx):
    # Baseline: a small backing, same options, same binary.
    d = ctx.mkdir("small")
    small = os.path.join(d, "backing.img")
    rt.make_sparse(small, 64 * rt.MiB)
    sm, small_ready = mount_timed(ctx, "small", small, f"db={os.path.join(d, 'remap.db')}")
    # The same I/O as the huge mount below, so that memory every mount spends on serving (the
    # workers' buffers) is in the baseline and the comparison sees only what grows with size.
    small_image = rt.expected_image_bytes(64 * rt.MiB)
    for off in [0, small_image // 2 // S * S, small_image - 16 * S, small_image - S]:
        odirect_write(sm.image, off, pattern(off))
        rt.pread_file(sm.image, off, S, direct=True)
    time.sleep(2)  # its scanner is long done with 64 MiB
    small_rss = rss(sm, "small", "after 2 s")
    sm.stop()

    d = ctx.mkdir("huge")
    backing = os.path.join(d, "backing.img")
    size = largest_sparse(backing)
    if size is None:
        raise rt.Skip(f"the filesystem of {d} cannot hold a sparse file of 4 TiB")
    log(f"  sparse backing of {size} bytes ({size / TiB:.6f} TiB), {os.stat(backing).st_blocks} blocks allocated")
    db = os.path.join(d, "remap.db")
    dm, ready = mount_timed(ctx, "huge", backing, f"db={db}")
    check(ready <= READY_LIMIT_S, f"mount to ready {ready:.3f} s <= {READY_LIMIT_S} s (small: {small_ready:.3f} s)")

    limit = small_rss + RSS_MARGIN
    check_rss(dm, "right after mount", limit)

    image_bytes = rt.expected_image_bytes(size)
    sectors = image_bytes // S
    check_eq(os.stat(dm.image).st_size, image_bytes, "disk.img size")
    st = rt.remapctl_json("--db", db, "status")
    check_eq(st.get("backing_bytes"), size, "status.backing_bytes")
    check_eq(st.get("image_bytes"), image_bytes, "status.image_bytes")
    check_eq(st.get("image_sectors"), sectors, "status.image_sectors")
    check_eq(st.get("spare_slots_total"), rt.spare_layout(size - image_bytes)[0], "status.spare_slots_total")

    # Data at the start, the middle and the end, with O_DIRECT both ways.
    offsets = [0, image_bytes // 2 // S * S, image_bytes - 64 * rt.MiB, image_bytes - S]
    for off in offsets:
        odirect_write(dm.image, off, pattern(off))
    rt.drop_caches()
    for off in offsets:
        check_eq(rt.pread_file(dm.image, off, S, direct=True), pattern(off), f"disk.img at byte {off} (O_DIRECT)")
        check_eq(rt.pread_file(backing, off, S, direct=True), pattern(off), f"backing at byte {off}, 1:1")

    # The scanner has been reading for a while: memory stays put.
    time.sleep(3)
    check_rss(dm, "after scanning sequentially", limit)
    sc = rt.remapctl_json("--db", db, "scan", "status")
    check_eq(sc.get("positions"), sectors, "scan status: positions = image sectors")
    text = rt.remapctl("--db", db, "scan", "status").stdout
    check(f"of {sectors})" in text, f"scan status text shows 'of {sectors}' (no 32-bit wrap)")
    # The staggered order reads 1 MiB of every region in turn: on a sparse file it has touched all
    # of them within seconds (unless the machine is slow: then as many as 20 s allow).
    rt.remapctl("--db", db, "scan", "set", "staggered=on")
    regions = (image_bytes + 128 * rt.MiB - 1) // (128 * rt.MiB)
    t0 = time.monotonic()
    touched = 0
    while time.monotonic() - t0 < 20:
        time.sleep(1)
        touched = int(rt.sqlite(db, "select count(*) from region_pass where pass = (select max(pass) from "
                                    "region_pass)")[0][0])
        if touched >= regions:
            break
    log(f"  staggered order: {touched} of {regions} regions have history after {time.monotonic() - t0:.1f} s")
    time.sleep(1)
    check_rss(dm, "in the staggered order", limit)

    # Idle: the scanner paused, the daemon uses no CPU however large the device.
    rt.remapctl("--db", db, "scan", "pause")
    time.sleep(0.5)
    t0 = cpu_ticks(dm.pid)
    time.sleep(2)
    used = (cpu_ticks(dm.pid) - t0) / os.sysconf("SC_CLK_TCK")
    check(used <= 0.1, f"CPU while paused and idle: {used:.2f} s in 2 s")

    # The far end through a loop device.
    lp = ctx.losetup(dm.image, "on")
    fd = os.open(lp.dev, os.O_RDONLY)
    try:
        check_eq(os.lseek(fd, 0, os.SEEK_END), image_bytes, f"{lp.dev} size")
    finally:
        os.close(fd)
    check_eq(rt.pread_file(lp.dev, image_bytes - S, S, direct=True), pattern(image_bytes - S),
             f"last 4 KiB through {lp.dev}")

    # Remap a sector near the end: its data moves to slot 0 at the tail of the backing.
    lba = sectors - 1
    rt.remapctl("--db", db, "remap", str(lba))
    entries = rt.remapctl_json("--db", db, "list")
    check_eq([e.get("lba") for e in entries], [lba], "remap list")
    slot = entries[0]["spare_slot"]
    check_eq(rt.pread_file(backing, rt.slot_offset(image_bytes, slot, size), S, direct=True), pattern(lba * S),
             f"slot {slot} on the backing holds sector {lba}")
    odirect_write(backing, lba * S, b"\xee" * S)  # the old place no longer matters
    check_eq(rt.pread_file(dm.image, lba * S, S, direct=True), pattern(lba * S), f"sector {lba} read through the remap")
    check_eq(rt.pread_file(lp.dev, lba * S, S, direct=True), pattern(lba * S), f"sector {lba} through {lp.dev}")
    fresh = pattern(-1)
    odirect_write(dm.image, lba * S, fresh)
    check_eq(rt.pread_file(backing, rt.slot_offset(image_bytes, slot, size), S, direct=True), fresh,
             f"a write of sector {lba} lands in slot {slot}")
    st = rt.remapctl_json("--db", db, "status")
    check_eq((st.get("remaps"), st.get("state")), (1, "ok"), "status after the remap")

    lp.detach()
    dm.stop()
    log(f"  database: {os.path.getsize(db)} bytes (+ WAL "
        f"{os.path.getsize(db + '-wal') if os.path.exists(db + '-wal') else 0})")


if __name__ == "__main__":
    rt.run("huge_sparse", body, needs_loop=True, tools=("sqlite3",))
