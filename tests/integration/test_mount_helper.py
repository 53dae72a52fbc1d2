#!/usr/bin/env python3
"""The mount(8) helper calling convention: mount.remapfs / mount.fuse.remapfs BACKING MNT [-sfnv] [-o OPTS].

mount(8) only looks for helpers in /sbin, so this drives the helper directly through symlinks to the
built binary (test_mount_t.py covers `mount -t remapfs` when the helper is installed). Checks:
fstab-only keys are dropped, nodev/nosuid/noexec/noatime reach the kernel mount, -f is a fake mount,
-s is sloppy, -n/-v are ignored, name=, the default database path beside a regular file, remapctl
--mount finding the instance (and no xattrs on the mount), ro, and mount.fuse.remapfs.
"""

import errno
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

BACKING_BYTES = 32 * rt.MiB


def mountinfo(mnt):
    mnt = os.path.realpath(mnt)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == mnt:
                sep = fields.index("-")
                return {"opts": fields[5].split(","), "fstype": fields[sep + 1], "source": fields[sep + 2],
                        "super": fields[sep + 3].split(",")}
    raise rt.Fail(f"{mnt} not in /proc/self/mountinfo")


def body(ctx):
    backing = ctx.path("backing.img")
    db = ctx.path("remap.db")
    mnt = ctx.mkdir("mnt")
    rt.make_sparse(backing, BACKING_BYTES)
    image_bytes = rt.expected_image_bytes(BACKING_BYTES)

    log("--- -f is a fake mount: exit 0, nothing mounted, no database created")
    r = rt.sh([ctx.mount_helper_path(), backing, mnt, "-f", "-o", f"db={db}"], check_rc=False)
    check_eq(r.returncode, 0, "exit status of mount.remapfs -f")
    check(not rt.is_mounted(mnt), "nothing mounted after -f")
    check(not os.path.exists(db), "no database created by -f")
    check(not os.path.exists(backing + ".remapfs.db"), "no default database created by -f")

    log("--- fstab-only keys dropped, kernel flags passed, -n -v ignored, -t accepted")
    opts = (f"db={db},defaults,auto,nofail,_netdev,users,x-systemd.device-timeout=10,comment=hello,"
            "nosuid,nodev,noexec,noatime")
    d = ctx.mount_helper(backing, mnt, opts, extra=["-n", "-v", "-t", "remapfs"])
    check_eq(sorted(os.listdir(mnt)), ["disk.img"], "entries of MNT")
    check_eq(os.stat(d.image).st_size, image_bytes, "image size")
    mi = mountinfo(mnt)
    log(f"  mountinfo: {mi}")
    check(mi["fstype"].startswith("fuse"), f"fstype {mi['fstype']} is a FUSE type")
    for flag in ("nosuid", "nodev", "noexec", "noatime"):
        check(flag in mi["opts"], f"{flag} in the mount options")
    uuid = rt.sqlite(db, "select uuid from device")[0][0]
    st = rt.remapctl_json("--mount", mnt, "status")
    check_eq((os.path.realpath(st.get("db", "")), st.get("uuid")), (os.path.realpath(db), uuid),
             "remapctl --mount finds the database and device")
    check_eq((st.get("daemon") or {}).get("pid"), d.pid, "remapctl --mount finds the daemon")
    # No xattrs: while getxattr answers, the kernel asks for security.capability before every
    # write (src/fuse/ops_table.cpp). ENOTSUP, not ENODATA, shows it no longer asks us.
    for path in (mnt, d.image):
        try:
            os.getxattr(path, "security.capability")
        except OSError as e:
            check_eq(e.errno, errno.EOPNOTSUPP, f"getxattr on {path}: ENOTSUP (the connection has no xattrs)")
        else:
            raise rt.Fail(f"getxattr security.capability on {path} returned a value")
    with open(d.image, "r+b") as f:
        f.seek(image_bytes - 4096)
        f.write(b"last sector")
        f.flush()
        os.fsync(f.fileno())
    d.stop()
    check_eq(rt.pread_file(backing, image_bytes - 4096, 11), b"last sector", "write reached the backing")

    log("--- -s (sloppy) ignores unknown options")
    d = ctx.mount_helper(backing, mnt, f"db={db},frobnicate=1,alsobogus", extra=["-s"])
    check_eq(rt.sqlite(db, "select uuid from device")[0][0], uuid, "same device after remount")
    d.stop()

    log("--- ro: read-only mount of an initialised database")
    d = ctx.mount_helper(backing, mnt, f"db={db},ro")
    with open(d.image, "rb") as f:
        f.seek(image_bytes - 4096)
        check_eq(f.read(11), b"last sector", "read on a ro mount")
    try:
        fd = os.open(d.image, os.O_WRONLY)
    except OSError as e:
        log(f"  ok: open for writing refused ({e.strerror})")
    else:
        try:
            os.pwrite(fd, b"x", 0)
            os.fsync(fd)
        except OSError as e:
            log(f"  ok: write refused ({e.strerror})")
        else:
            raise rt.Fail("a write to disk.img on a ro mount succeeded")
        finally:
            os.close(fd)
    d.stop()
    check_eq(rt.pread_file(backing, 0, 1), b"\0", "backing untouched by the ro mount")

    log("--- name=vol0.img")
    d = ctx.mount_helper(backing, mnt, f"db={db},name=vol0.img", image="vol0.img")
    check_eq(sorted(os.listdir(mnt)), ["vol0.img"], "entries of MNT with name=vol0.img")
    check_eq(os.stat(os.path.join(mnt, "vol0.img")).st_size, image_bytes, "size of vol0.img")
    d.stop()

    log("--- mount.fuse.remapfs and the default database BACKING.remapfs.db")
    b2 = ctx.path("second.img")
    rt.make_sparse(b2, BACKING_BYTES)
    d = ctx.mount_helper(b2, mnt, "", prog="mount.fuse.remapfs")
    defdb = b2 + ".remapfs.db"
    check(os.path.exists(defdb), f"default database {defdb} created")
    check_eq(rt.remapctl_json("--mount", mnt, "status").get("db"), defdb, "remapctl --mount: the default database")
    st = rt.remapctl_json("--backing", b2, "status")
    check_eq((st.get("daemon") or {}).get("pid"), d.pid, "remapctl --backing finds the daemon")
    d.stop()


if __name__ == "__main__":
    rt.run("mount_helper", body, tools=("sqlite3",))
