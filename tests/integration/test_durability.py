#!/usr/bin/env python3
"""What a writer was told is durable is durable, on a live mount.

- O_DSYNC and O_SYNC writes to disk.img opened O_DIRECT: such a handle bypasses the page cache
  (FOPEN_DIRECT_IO), and then the kernel syncs nothing itself; it passes the flag and leaves it
  to the daemon. The backing must see one flush per acknowledged write (status
  daemon.backing_flushes); plain O_DIRECT writes cost none.
- A buffered O_DSYNC writer while a direct-io loop device holds the image: its handle bypasses
  the cache too (src/fuse/handle_modes.hpp), and gets the same. Writes through the loop device
  with dsync reach the backing flushed as well.
- -o sync: every write flushes, whatever the opener asked.
- A remap commit that meets another connection's write lock: a sqlite3 session holds it for
  8 s (longer than SQLite's 5 s busy timeout) while a write fails on the backing. The write
  waits and is acknowledged, the remap row lands, the data reads back.
"""

import os
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

BACKING_BYTES = 64 * rt.MiB
S = rt.SECTOR


def flushes(db):
    return rt.remapctl_json("--db", db, "status", quiet=True)["daemon"]["backing_flushes"]


def writes_cost(db, what, n, fn):
    before = flushes(db)
    fn()
    got = flushes(db) - before
    log(f"  {what}: {got} backing flushes for {n} writes")
    return got


def dsync_cases(ctx, backing, db, mnt):
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    img = d.image
    block = os.urandom(S)

    def direct_writes(flags, n, base):
        return lambda: [rt.write_direct(img, (base + i) * S, block, flags) for i in range(n)]

    check_eq(writes_cost(db, "O_DIRECT", 8, direct_writes(0, 8, 100)), 0, "plain O_DIRECT writes flush nothing")
    check_eq(writes_cost(db, "O_DIRECT|O_DSYNC", 5, direct_writes(os.O_DSYNC, 5, 200)), 5,
             "each O_DIRECT|O_DSYNC write flushes the backing once")
    check_eq(writes_cost(db, "O_DIRECT|O_SYNC", 3, direct_writes(os.O_SYNC, 3, 300)), 3,
             "each O_DIRECT|O_SYNC write flushes the backing once")
    r = rt.sh(["dd", f"if={backing}", f"of={img}", "bs=4k", "count=4", "seek=400", "oflag=direct,dsync",
               "conv=notrunc", "status=none"], quiet=True)
    check_eq(r.returncode, 0, "dd oflag=direct,dsync")

    lp = ctx.losetup(img, "on")

    def buffered_dsync():
        fd = os.open(img, os.O_WRONLY | os.O_DSYNC)
        try:
            for i in range(4):
                os.pwrite(fd, block, (500 + i) * S)
        finally:
            os.close(fd)

    check_eq(writes_cost(db, "buffered O_DSYNC beside a direct-io loop", 4, buffered_dsync), 4,
             "a buffered O_DSYNC writer bypassing the cache beside a direct-io loop flushes each write")
    got = writes_cost(db, "dd oflag=direct,dsync on the loop device", 3,
                      lambda: rt.sh(["dd", f"if={backing}", f"of={lp.dev}", "bs=4k", "count=3", "seek=600",
                                     "oflag=direct,dsync", "status=none"], quiet=True))
    check(got >= 3, f"dsync writes through the direct-io loop reach the backing flushed ({got} flushes for 3)")
    lp.detach()
    check_eq(rt.pread_file(img, 500 * S, S, direct=True), block, "the O_DSYNC data reads back")
    d.stop()

    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,sync")
    check_eq(writes_cost(db, "O_DIRECT on a sync mount", 4, direct_writes(0, 4, 700)), 4,
             "-o sync: every write flushes")
    d.stop()


def locked_db_case(ctx, backing, db, mnt):
    lba = 1000
    rules = ctx.path("rules.json")
    with open(rules, "w") as f:
        f.write(f'[{{"sectors": "{lba}", "op": "write"}}]')
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,allow_inject,inject_file={rules}")
    # An operator's sqlite3 session takes the write lock and keeps it for 8 s.
    holder = subprocess.Popen([rt.tool("sqlite3"), db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
    holder.stdin.flush()
    check_eq(holder.stdout.readline().strip(), "locked", "sqlite3 holds the write lock")
    release = threading.Timer(8.0, lambda: (holder.stdin.write("COMMIT;\n.quit\n"), holder.stdin.flush()))
    release.start()
    data = os.urandom(S)
    t0 = time.monotonic()
    try:
        rt.write_direct(d.image, lba * S, data)  # fails on the backing: needs a remap commit
    finally:
        took = time.monotonic() - t0
        release.join()
        holder.wait(timeout=10)
    log(f"  the write was acknowledged after {took:.1f} s")
    check(took > 6.0, "the write waited for the lock rather than fail after SQLite's 5 s busy timeout")
    check_eq(rt.sqlite(db, f"select lba, reason from remap where lba = {lba}"), [[str(lba), "write-error"]],
             "the remap row landed")
    rt.drop_caches()
    check_eq(rt.pread_file(d.image, lba * S, S, direct=True), data, "the data reads back from its slot")
    check("locked by another connection" in d.log_text(), "the daemon logged what it waited for")
    d.stop()


def body(ctx):
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)
    log("--- O_DSYNC, O_SYNC, a direct-io loop device, -o sync")
    dsync_cases(ctx, backing, db, mnt)
    log("--- a remap commit behind a sqlite3 session's write lock")
    locked_db_case(ctx, backing, db, mnt)


if __name__ == "__main__":
    rt.run("durability", body, needs_loop=True, tools=("sqlite3", "dd"))
