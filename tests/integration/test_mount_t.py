#!/usr/bin/env python3
"""`mount -t remapfs`, `mount -t fuse.remapfs` and an fstab line, through mount(8).

mount(8) only looks for helpers in /sbin (/sbin/fs.d, /sbin/fs). When remapfs is not installed
there, the test links /sbin/mount.remapfs and /sbin/mount.fuse.remapfs to this build for its own
duration (what `meson install` would put there) and removes exactly those links afterwards; an
installed remapfs is used as it is and never touched.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

HELPER = "/sbin/mount.remapfs"
BACKING_BYTES = 32 * rt.MiB


class TempLink(rt.Resource):
    """A symlink this test created; removed only if it still points where we pointed it."""

    def __init__(self, path, target):
        self.path, self.target = path, target
        self.name = f"symlink {path}"
        os.symlink(target, path)

    def release(self):
        if os.path.islink(self.path) and os.readlink(self.path) == self.target:
            os.unlink(self.path)


class MountT(rt.Resource):
    def __init__(self, mnt):
        self.mnt = mnt
        self.name = f"remapfs (installed) at {mnt}"
        self.pid = None

    def stop(self):
        pids = rt.find_daemon_pids(self.mnt, exe=HELPER)
        rt.unmount(self.mnt)
        for p in pids:
            if not rt.wait_pid_exit(p, 30):
                raise rt.Fail(f"installed remapfs pid {p} did not exit after unmount")
        self.pid = -1

    def release(self):
        if self.pid == -1:
            return
        pids = rt.find_daemon_pids(self.mnt, exe=HELPER)
        if rt.is_mounted(self.mnt):
            rt.unmount(self.mnt, lazy_fallback=True)
        for p in pids:
            rt.wait_pid_exit(p, 15)


def body(ctx):
    for name in ("mount.remapfs", "mount.fuse.remapfs"):
        path = os.path.join("/sbin", name)
        if not os.path.lexists(path):
            ctx.add(TempLink(path, rt.remapfs_bin()))
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)

    log("--- mount -t remapfs BACKING MNT -o db=DB")
    res = ctx.add(MountT(mnt))
    rt.sh(["mount", "-t", "remapfs", backing, mnt, "-o", f"db={db},noatime"])
    img = rt.wait_for_image(mnt, timeout=10)
    check_eq(os.stat(img).st_size, rt.expected_image_bytes(BACKING_BYTES), "image size")
    check(os.path.exists(db), "database created")
    res.stop()

    log("--- mount -t fuse.remapfs BACKING MNT -o db=DB")
    res = ctx.add(MountT(mnt))
    rt.sh(["mount", "-t", "fuse.remapfs", backing, mnt, "-o", f"db={db}"])
    rt.wait_for_image(mnt, timeout=10)
    check(rt.is_mounted(mnt), "mounted with -t fuse.remapfs")
    res.stop()

    log("--- an fstab line: mount --fstab FILE MNT")
    fstab = ctx.path("fstab")
    with open(fstab, "w") as f:
        f.write(f"{backing} {mnt} remapfs db={db},nofail,x-systemd.requires=foo.service,noauto 0 0\n")
    res = ctx.add(MountT(mnt))
    rt.sh(["mount", "--fstab", fstab, mnt])
    rt.wait_for_image(mnt, timeout=10)
    check(rt.is_mounted(mnt), "mounted from the fstab line")
    res.stop()
    time.sleep(0.1)


if __name__ == "__main__":
    rt.run("mount_t", body, tools=("mount",))
