#!/usr/bin/env python3
"""remapctl remap/unremap of a sector that holds ext4 file data, live through the daemon and offline.

ext4 is made with 4096-byte blocks = the remap sector size, so an ext4 block number (debugfs
`blocks`) is an LBA. After a remap the original sector on the backing is overwritten with garbage
behind the daemon's back: the file must still read back intact, which proves reads go to the spare
slot. The slot itself is read straight from the backing where the layout puts it (remaptest.slot_offset).
"""

import hashlib
import os
import random
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import Fail, check, check_eq, log  # noqa: E402

BACKING_BYTES = 64 * rt.MiB
S = rt.SECTOR
FILE_BYTES = rt.MiB


def wait_backing(backing, offset, want, what, timeout=10):
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = rt.pread_file(backing, offset, len(want), direct=True)
        if got == want:
            log(f"  ok: {what}")
            return
        time.sleep(0.2)
    raise Fail(f"{what}: backing bytes at {offset} differ (first bytes {got[:16].hex()} vs {want[:16].hex()})")


def file_sha(path):
    rt.drop_caches()
    return rt.sha256_file(path)


def parse_text_status(text):
    kv = {}
    for line in rt.nonempty_lines(text):
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        kv[k.strip().lower().replace(" ", "_").replace("-", "_")] = v.strip()
    return kv


def remap_entries(db):
    entries = rt.remapctl_json("--db", db, "list")
    if not isinstance(entries, list):
        raise Fail(f"list --json is not an array: {entries!r}")
    return entries


def body(ctx):
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    fsdir = ctx.mkdir("fs")
    rt.make_sparse(backing, BACKING_BYTES)
    image_bytes = rt.expected_image_bytes(BACKING_BYTES)

    def slot_offset(slot):
        return rt.slot_offset(image_bytes, slot, BACKING_BYTES)

    log("--- set up: mount.remapfs, losetup --direct-io=on, mkfs.ext4 -b 4096, one 1 MiB file")
    daemon = ctx.mount_helper(backing, mnt, f"db={db}")
    check_eq(os.stat(daemon.image).st_size, image_bytes, "image size")
    loop = ctx.losetup(daemon.image, "on")
    rt.sh(["mkfs.ext4", "-q", "-F", "-b", "4096", loop.dev])
    fs = ctx.mount_dev(loop.dev, fsdir)
    check_eq(rt.ext4_block_size(loop.dev), S, "ext4 block size")
    rng = random.Random("remapfs-live-remap")
    data = bytearray(rng.randbytes(FILE_BYTES))
    fpath = os.path.join(fsdir, "file")
    with open(fpath, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.sync()
    rt.drop_caches()
    blocks = rt.file_blocks(loop.dev, "/file")
    check_eq(len(blocks), FILE_BYTES // S, "number of data blocks of /file (debugfs blocks)")
    idx, idx2 = 5, 9
    lba, lba2 = blocks[idx], blocks[idx2]
    log(f"  LBA {lba} holds file bytes [{idx * S}, {(idx + 1) * S}); LBA {lba2} holds block {idx2}")

    def chunk(i):
        return bytes(data[i * S:(i + 1) * S])

    wait_backing(backing, lba * S, chunk(idx), f"backing at LBA {lba} holds the file block before the remap")

    st = rt.remapctl_json("--db", db, "status")
    check_eq(st.get("spare_slots_used"), 0, "status.spare_slots_used before the remap")
    check_eq(st.get("image_bytes"), image_bytes, "status.image_bytes")
    check_eq(st.get("sector_size"), S, "status.sector_size")

    log(f"--- live remap of LBA {lba} (daemon pid {daemon.pid})")
    r = rt.remapctl("--db", db, "remap", str(lba))
    log(f"  remapctl remap printed: {r.stdout.strip()!r}")
    entries = remap_entries(db)
    check_eq(len(entries), 1, "list --json entries after remap")
    e = entries[0]
    check_eq(e.get("lba"), lba, "list[0].lba")
    check_eq(e.get("state"), "active", "list[0].state")
    check_eq(e.get("reason"), "manual", "list[0].reason")
    slot = e.get("spare_slot")
    check(isinstance(slot, int) and slot >= 0, f"list[0].spare_slot is a slot number ({slot})")
    check(str(slot) in r.stdout, f"remapctl remap printed the slot {slot}")
    check_eq(rt.sqlite(db, "select lba, spare_slot, reason from remap"), [[str(lba), str(slot), "manual"]],
             "sqlite3: select lba, spare_slot, reason from remap")
    view = rt.sqlite(db, "select lba, spare_slot, image_byte_offset from remap_list")
    check_eq(view, [[str(lba), str(slot), str(lba * S)]], "sqlite3: remap_list view")
    wait_backing(backing, slot_offset(slot), chunk(idx), f"spare slot {slot} on the backing holds the file block")

    log("--- overwrite the original sector on the backing with garbage: reads must come from the spare")
    garbage = b"\xde\xad\xbe\xef" * (S // 4)
    rt.pwrite_file(backing, lba * S, garbage)
    rt.drop_caches()
    check_eq(hashlib.sha256(rt.pread_file(daemon.image, lba * S, S, direct=True)).hexdigest(),
             hashlib.sha256(chunk(idx)).hexdigest(), f"O_DIRECT read of disk.img at LBA {lba}")
    check_eq(file_sha(fpath), hashlib.sha256(data).hexdigest(), "file content through ext4 after the remap")

    log("--- a write to the remapped block goes to the spare slot")
    new_block = rng.randbytes(S)
    with open(fpath, "r+b") as f:
        f.seek(idx * S)
        f.write(new_block)
        f.flush()
        os.fsync(f.fileno())
    data[idx * S:(idx + 1) * S] = new_block
    os.sync()
    wait_backing(backing, slot_offset(slot), new_block, f"spare slot {slot} holds the rewritten block")
    check_eq(rt.pread_file(backing, lba * S, S, direct=True), garbage,
             "the original sector was not written (still garbage)")

    log("--- status by mountpoint, text and JSON")
    r = rt.remapctl("--mount", mnt, "status")
    kv = parse_text_status(r.stdout)
    check(len(kv) >= 5, f"status text has key: value lines ({len(kv)} keys)")
    if "spare_slots_used" in kv:
        check_eq(kv["spare_slots_used"].split()[0], "1", "status text spare_slots_used")
    elif "spare_slots" in kv:  # "spare slots:  1 used, 0 retired, 254 free of 255"
        check(kv["spare_slots"].startswith("1 used"), f"status text 'spare slots: {kv['spare_slots']}' says 1 used")
    check_eq(kv.get("remaps"), "1", "status text remaps")
    st = rt.remapctl_json("--mount", mnt, "status")
    check_eq(st.get("spare_slots_used"), 1, "status.spare_slots_used")
    check_eq(st.get("remaps"), 1, "status.remaps")
    check_eq(st.get("state"), "ok", "status.state")
    check_eq(st.get("spare_path"), None, "status.spare_path (tail spare)")
    check_eq(st.get("image_sectors"), image_bytes // S, "status.image_sectors")
    check_eq(st.get("backing_bytes"), BACKING_BYTES, "status.backing_bytes")
    dmn = st.get("daemon") or {}
    check_eq(dmn.get("running"), True, "status.daemon.running")
    check_eq(dmn.get("pid"), daemon.pid, "status.daemon.pid")
    check_eq(os.path.realpath(dmn.get("mountpoint") or ""), os.path.realpath(mnt), "status.daemon.mountpoint")
    check_eq(os.path.realpath(st.get("db") or ""), os.path.realpath(db), "status.db")
    for key in ("uuid", "backing", "spare_offset", "spare_slots_total"):
        check(key in st, f"status has key {key}")
    check_eq(st.get("spare_offset"), image_bytes, "status.spare_offset (label right after the image)")

    log("--- restart: unmount everything, remount in the foreground")
    fs.umount()
    loop.detach()
    daemon.stop()
    entries = remap_entries(db)
    check_eq([(x.get("lba"), x.get("spare_slot")) for x in entries], [(lba, slot)], "list offline after stop")
    daemon = ctx.mount_fg(backing, mnt, f"db={db}")
    entries = remap_entries(db)
    check_eq([(x.get("lba"), x.get("spare_slot")) for x in entries], [(lba, slot)], "list after restart")
    rt.drop_caches()
    check_eq(rt.pread_file(daemon.image, lba * S, S, direct=True), new_block,
             f"O_DIRECT read of disk.img at LBA {lba} after restart (served from the spare)")
    loop = ctx.losetup(daemon.image, "on")
    fs = ctx.mount_dev(loop.dev, fsdir)
    check_eq(file_sha(fpath), hashlib.sha256(data).hexdigest(), "file content after restart")

    log(f"--- live unremap of LBA {lba}")
    rt.remapctl("--db", db, "unremap", str(lba))
    wait_backing(backing, lba * S, new_block, f"data copied back to LBA {lba} on the backing")
    check_eq(remap_entries(db), [], "list --json after unremap")
    check_eq(rt.sqlite(db, "select count(*) from remap"), [["0"]], "sqlite3: rows in remap after unremap")
    st = rt.remapctl_json("--mount", mnt, "status")
    check_eq(st.get("remaps"), 0, "status.remaps after unremap")
    check_eq(st.get("spare_slots_used"), 0, "status.spare_slots_used after unremap (slot freed)")
    check_eq(file_sha(fpath), hashlib.sha256(data).hexdigest(), "file content after unremap")

    log(f"--- offline remap of LBA {lba2}")
    fs.umount()
    loop.detach()
    daemon.stop()
    st = rt.remapctl_json("--db", db, "status")
    check_eq((st.get("daemon") or {}).get("running"), False, "status.daemon.running with no daemon")
    r = rt.remapctl("--db", db, "remap", str(lba2))
    log(f"  remapctl remap printed: {r.stdout.strip()!r}")
    entries = remap_entries(db)
    check_eq([x.get("lba") for x in entries], [lba2], "list after the offline remap")
    slot2 = entries[0].get("spare_slot")
    check_eq(rt.pread_file(backing, slot_offset(slot2), S, direct=True), chunk(idx2),
             f"spare slot {slot2} holds LBA {lba2}'s data")
    rt.pwrite_file(backing, lba2 * S, garbage)
    r = rt.remapctl("--db", db, "verify")
    log(f"  verify: {r.stdout.strip()}")
    v = rt.remapctl_json("--db", db, "verify")
    check_eq(v.get("unreadable"), [], "verify --json unreadable")
    check_eq(v.get("checked"), image_bytes // S, "verify --json checked (every sector)")
    v = rt.remapctl_json("--db", db, "verify", str(lba2 - 2), "5")
    check_eq((v.get("start"), v.get("count"), v.get("checked")), (lba2 - 2, 5, 5), "verify START COUNT")

    log("--- mount again: the offline remap is in effect")
    daemon = ctx.mount_helper(backing, mnt, f"db={db}")
    rt.drop_caches()
    check_eq(rt.pread_file(daemon.image, lba2 * S, S, direct=True), chunk(idx2),
             f"O_DIRECT read of disk.img at LBA {lba2} (garbage on the backing, data from the spare)")
    loop = ctx.losetup(daemon.image, "on")
    fs = ctx.mount_dev(loop.dev, fsdir)
    check_eq(file_sha(fpath), hashlib.sha256(data).hexdigest(), "file content after the offline remap")
    fs.umount()
    r = rt.sh(["e2fsck", "-fn", loop.dev], check_rc=False)
    if r.returncode != 0:
        raise Fail(f"e2fsck -fn exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    log("  ok: e2fsck -fn exits 0")
    loop.detach()
    daemon.stop()


if __name__ == "__main__":
    rt.run("live_remap", body, needs_loop=True, tools=("mkfs.ext4", "e2fsck", "debugfs", "dumpe2fs", "sqlite3"))
