#!/usr/bin/env python3
"""Image size, spare slots and slot placement for the geometry options (spec "Physical layout").

  spare_size=3M, spare_size=2%  -> image = backing - spare rounded down to the sector
  sector_size=512               -> 512-byte remap sectors
  spare=PATH                    -> the whole backing is the image; the spare file holds the
                                   labels, the slot headers and the slots
Slot k of a spare area of N bytes lies after two 4 KiB label copies and ceil(slots/128) 4 KiB
blocks of slot headers: remaptest.spare_layout.
Each case: mount, check disk.img size and `remapctl status --json`, write a sector, remap it live,
read the slot from the raw file, read it back through disk.img, stop, check the DB's device row.
"""

import math
import os
import random
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check_eq, log  # noqa: E402

B = 64 * rt.MiB


def run_case(ctx, name, opts, sector, image_bytes, spare_bytes, slot_file, slot_base):
    slots_total, first_slot = rt.spare_layout(spare_bytes, sector)
    log(f"--- {name}: -o {opts or '(defaults)'}")
    d = ctx.mkdir(name)
    backing = os.path.join(d, "backing.img")
    db = os.path.join(d, "remap.db")
    mnt = ctx.mkdir(f"{name}/mnt")
    rt.make_sparse(backing, B)
    opts = ",".join(x for x in (f"db={db}", opts) if x)
    dm = ctx.mount_fg(backing, mnt, opts)
    check_eq(os.stat(dm.image).st_size, image_bytes, "disk.img size")
    st = rt.remapctl_json("--db", db, "status")
    check_eq(st.get("sector_size"), sector, "status.sector_size")
    check_eq(st.get("image_bytes"), image_bytes, "status.image_bytes")
    check_eq(st.get("image_sectors"), image_bytes // sector, "status.image_sectors")
    check_eq(st.get("spare_slots_total"), slots_total, "status.spare_slots_total")
    check_eq(st.get("slots_offset"), slot_base + first_slot, "status.slots_offset")

    rng = random.Random(name)
    lba = image_bytes // sector - 3
    data = rng.randbytes(sector)
    with open(dm.image, "r+b") as f:
        f.seek(lba * sector)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    check_eq(rt.pread_file(backing, lba * sector, sector), data, f"sector {lba} lands 1:1 on the backing")
    rt.remapctl("--db", db, "remap", str(lba))
    entries = rt.remapctl_json("--db", db, "list")
    check_eq([e.get("lba") for e in entries], [lba], "list after remap")
    slot = entries[0]["spare_slot"]
    off = slot_base + first_slot + slot * sector
    check_eq(rt.pread_file(slot_file(backing, d), off, sector), data,
             f"slot {slot} at byte {off} of {os.path.basename(slot_file(backing, d))}")
    rt.pwrite_file(backing, lba * sector, b"\xee" * sector)
    rt.drop_caches()
    check_eq(rt.pread_file(dm.image, lba * sector, sector), data, f"sector {lba} read through the remap")
    dm.stop()
    rows = rt.sqlite(db, "select sector_size, image_sectors, spare_slots, coalesce(spare_path, 'NULL') from device")
    check_eq(rows[0][:3], [str(sector), str(image_bytes // sector), str(slots_total)], "device row")
    return rows[0][3]


def body(ctx):
    S = rt.SECTOR

    def tail(backing, d):
        return backing

    # spare_size=3M
    img = (B - 3 * rt.MiB) // S * S
    run_case(ctx, "spare3M", "spare_size=3M", S, img, B - img, tail, img)
    # spare_size=2% (of the backing, rounded up to a byte)
    want = math.ceil(B * 2 / 100)
    img = (B - want) // S * S
    run_case(ctx, "spare2pct", "spare_size=2%", S, img, B - img, tail, img)
    # sector_size=512, default spare
    img = (B - max(rt.MiB, B // 100)) // 512 * 512
    run_case(ctx, "sector512", "sector_size=512", 512, img, B - img, tail, img)
    # spare=PATH: a separate 1 MiB spare file; the whole backing is the image
    spare = ctx.path("spare.bin")
    rt.make_sparse(spare, rt.MiB)
    sp = run_case(ctx, "sparefile", f"spare={spare}", S, B, rt.MiB,
                  lambda backing, d: spare, 0)
    check_eq(os.path.realpath(sp), os.path.realpath(spare), "device.spare_path")


if __name__ == "__main__":
    rt.run("geometry", body, tools=("sqlite3",))
