#!/usr/bin/env python3
"""ext4 on a loop device on the remapfs image survives a daemon restart (loop direct-io on and off).

mount.remapfs BACKING MNT -o db=DB (the mount-helper convention, daemonizes) -> losetup -> mkfs.ext4
-> write files -> take everything down -> remapfs -f (foreground restart) -> losetup -> compare
checksums -> e2fsck -fn. Also: image size per the spec, MNT holds only disk.img, device row in the DB.
"""

import os
import random
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

BACKING_BYTES = 256 * rt.MiB


def write_tree(root, rng):
    """~20 files: large, small, odd sizes, empty, a nested directory. Returns {relpath: sha256}."""
    sizes = {
        "big1.bin": 8 * rt.MiB,
        "big2.bin": 3 * rt.MiB + 123,
        "mid.bin": rt.MiB,
        "empty": 0,
        "one": 1,
        "s511": 511,
        "s4095": 4095,
        "s4096": 4096,
        "s4097": 4097,
        "s65537": 65537,
        "s300k": 300 * 1024 + 7,
        "a/b/c/deep1.bin": 2 * rt.MiB + 4095,
        "a/b/c/deep2.txt": 10,
        "a/b/mid2.bin": 777777,
        "a/x.bin": 12345,
        "a/y.bin": 4096 * 3,
        "d2/z1": 1 << 16,
        "d2/z2": (1 << 16) - 1,
        "d2/z3": 1 << 20 | 1,
        "d2/z4": 99,
    }
    sums = {}
    for rel, size in sizes.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        sums[rel] = rt.write_random_file(p, size, rng)
    return sums


def one_round(ctx, dio):
    log(f"--- loop direct-io={dio}")
    d = ctx.mkdir(f"dio-{dio}")
    backing = os.path.join(d, "backing.img")
    db = os.path.join(d, "remap.db")
    mnt = ctx.mkdir(f"dio-{dio}/mnt")
    fsdir = ctx.mkdir(f"dio-{dio}/fs")
    rt.make_sparse(backing, BACKING_BYTES)

    log("mount with the helper convention: mount.remapfs BACKING MNT -o db=DB")
    daemon = ctx.mount_helper(backing, mnt, f"db={db}")
    img = daemon.image

    check_eq(sorted(os.listdir(mnt)), ["disk.img"], "entries of MNT")
    want = rt.expected_image_bytes(BACKING_BYTES)
    check_eq(os.stat(img).st_size, want, "image size (backing - max(1MiB,1%), rounded down to 4096)")

    rows = rt.sqlite(db, "select uuid, sector_size from device")
    check_eq(len(rows), 1, "rows in device")
    uuid, ss = rows[0]
    check(len(uuid) >= 8, f"device uuid is set ({uuid})")
    check_eq(ss, "4096", "device.sector_size")
    app = rt.sqlite(db, "pragma application_id")[0][0]
    check_eq(int(app), rt.APPLICATION_ID, "pragma application_id")
    check_eq(rt.sqlite(db, "pragma journal_mode")[0][0], "wal", "journal_mode")

    st = rt.remapctl_json("--mount", mnt, "status")
    check_eq(st.get("uuid"), uuid, "remapctl --mount finds the device")
    check_eq(os.path.realpath(st.get("db", "")), os.path.realpath(db), "remapctl --mount finds the database")

    loop = ctx.losetup(img, dio)
    check_eq(loop.sysfs("dio"), "1" if dio == "on" else "0", f"/sys/block/{os.path.basename(loop.dev)}/loop/dio")
    rt.sh(["mkfs.ext4", "-q", "-F", loop.dev])
    fs = ctx.mount_dev(loop.dev, fsdir)

    rng = random.Random(f"remapfs-roundtrip-{dio}")
    sums = write_tree(fsdir, rng)
    log(f"  wrote {len(sums)} files")
    check_eq(rt.tree_checksums(fsdir), sums, "checksums before the restart (page cache)")
    os.sync()

    log("take everything down")
    fs.umount()
    loop.detach()
    daemon.stop()

    # The image maps 1:1 onto the head of the backing: the ext4 superblock magic is at 1024+56.
    magic = struct.unpack("<H", rt.pread_file(backing, 1024 + 56, 2))[0]
    check_eq(hex(magic), hex(0xEF53), "ext4 magic at backing offset 1080 (image is 1:1 on the backing)")
    label = rt.pread_file(backing, want, rt.LABEL_BYTES)
    check(any(label), f"spare label written at backing offset {want}")

    log("restart in the foreground: remapfs -f BACKING MNT -o db=DB")
    daemon2 = ctx.mount_fg(backing, mnt, f"db={db}")
    check_eq(os.stat(daemon2.image).st_size, want, "image size after restart")
    check_eq(rt.sqlite(db, "select uuid from device")[0][0], uuid, "device uuid after restart")
    loop2 = ctx.losetup(daemon2.image, dio)
    fs2 = ctx.mount_dev(loop2.dev, fsdir)
    rt.drop_caches()
    check_eq(rt.tree_checksums(fsdir), sums, "checksums of all files after the restart")
    fs2.umount()
    r = rt.sh(["e2fsck", "-fn", loop2.dev], check_rc=False)
    if r.returncode != 0:
        raise rt.Fail(f"e2fsck -fn {loop2.dev} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    log("  ok: e2fsck -fn exits 0")
    loop2.detach()
    daemon2.stop()


def body(ctx):
    for dio in ("on", "off"):
        one_round(ctx, dio)


if __name__ == "__main__":
    rt.run("ext4_roundtrip", body, needs_loop=True, tools=("mkfs.ext4", "e2fsck", "sqlite3", "losetup"))
