#!/usr/bin/env python3
"""fio randwrite + crc32c verify through a direct-io loop device while writes fail at random.

A 256 MiB backing; a live fault rule (remapctl inject add) fails writes to any image sector with
a probability P. fio writes the whole device in random 4 KiB blocks (libaio, iodepth 16,
O_DIRECT), then reads every block back and checks its crc32c. fio must finish without a single
I/O or verify error, remaps must have been recorded (reason 'write-error'), nothing is pending,
and the database passes PRAGMA integrity_check.

On P: the injector rolls the dice per backing request, and remapfs retries a failed write in
place, sector by sector, before it remaps; a 4 KiB write is therefore remapped with probability
P^2. P = 0.05 gives ~0.25% of the 65k writes, i.e. ~150 remaps, well inside the 655 spare
slots of a 256 MiB backing. Override with FAULT_PROBABILITY.
"""

import os

import faulttest as ft
import remaptest as rt
from remaptest import check, check_eq, log

BACKING_BYTES = 256 * rt.MiB
PROBABILITY = float(os.environ.get("FAULT_PROBABILITY", "0.05"))


def body(ctx):
    klog = ft.KernelLog()
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)

    d = ctx.mount_fg(backing, mnt, f"db={db},allow_inject")
    st = ft.status(db)
    last = st["image_sectors"] - 1
    rt.remapctl("--db", db, "inject", "add", "--sectors", f"0-{last}", "--target", "image", "--op", "write",
                "--errno", "EIO", "--probability", str(PROBABILITY))
    inj = rt.remapctl_json("--db", db, "inject", "list")
    log(f"  rules: {inj}")

    loop = ctx.losetup(d.image, "on")
    check_eq(loop.sysfs("dio"), "1", "loop device uses direct I/O")
    size = ft.device_bytes(loop.dev)
    check_eq(size, st["image_bytes"], "loop device size")

    s = ft.fio_verify(loop.dev, size, ctx.tmp, d)

    injected = ft.injected_count(db)
    rows = ft.remap_rows(db)
    reasons = ft.remap_reasons(db)
    log(f"  injected write errors: {injected}; remaps: {len(rows)} {reasons}")
    check(len(rows) > 0, f"remaps were recorded ({len(rows)})")
    check_eq(set(reasons), {"write-error"}, "remap reasons")
    check_eq(ft.pending_lbas(db), [], "pending sectors")
    st = ft.status(db)
    check_eq(st["spare_slots_used"], len(rows), "status spare_slots_used")
    check_eq(st["state"], "ok", "status state")
    ft.check_no_kernel_errors(klog, loop.dev)

    loop.detach()
    d.stop()
    ft.check_db_ok(db)
    klog.close()
    log(f"RESULT: fio {s['write_ios']} writes + {s['read_ios']} verified reads, 0 errors; "
        f"{injected} injected write errors, {len(rows)} remaps (p={PROBABILITY})")


if __name__ == "__main__":
    rt.run("faults_fio", body, needs_loop=True, tools=("fio", "sqlite3", "blockdev"))
