#!/usr/bin/env python3
"""A database is applied only to the device it belongs to, in the state it was left in.

- Two same-size backings with separate spares swap names (as disks do after a reboot): the
  mount is refused with one line; -o rebind takes a backing that was moved on purpose.
- A database restored from a backup (older than the device's label): refused with one line
  naming remapctl recover; `remapctl recover` rebuilds the table from the device, the sectors
  remapped since the backup read their data back, and sqlite3 shows the rows.
- A first mount on a backing with a GPT (sfdisk) or other data where the spare would go: refused,
  naming what is there; -o force takes it.
- The database is created 0600; the image is 0600 (another user is refused even with
  allow_other); -o umask=022 lets other users read it.
"""

import os
import stat
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

B = 64 * rt.MiB
S = rt.SECTOR


def swapped_backings(ctx):
    mnt = ctx.mkdir("mnt-swap")
    for n in ("a", "b"):
        rt.make_sparse(ctx.path(f"{n}.img"), B)
        rt.make_sparse(ctx.path(f"{n}.spare"), rt.MiB)
        d = ctx.mount_fg(ctx.path(f"{n}.img"), mnt, f"db={ctx.path(n + '.db')},spare={ctx.path(n + '.spare')},noscan")
        rt.write_direct(d.image, 5 * S, (n * S).encode())
        d.stop()
    os.rename(ctx.path("a.img"), ctx.path("t.img"))
    os.rename(ctx.path("b.img"), ctx.path("a.img"))
    os.rename(ctx.path("t.img"), ctx.path("b.img"))
    opts = f"db={ctx.path('a.db')},noscan"
    ctx.expect_mount_refused(ctx.path("a.img"), mnt, opts, "were two disks swapped")
    d = ctx.mount_fg(ctx.path("a.img"), mnt, opts + ",rebind")
    check_eq(rt.pread_file(d.image, 5 * S, S, direct=True), b"b" * S, "with -o rebind it serves what is there")
    d.stop()


def restored_database(ctx):
    backing, db, mnt = ctx.path("r.img"), ctx.path("r.db"), ctx.mkdir("mnt-restore")
    rt.make_sparse(backing, B)
    image_bytes = rt.expected_image_bytes(B)
    first, later = os.urandom(S), os.urandom(S)
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    rt.write_direct(d.image, 100 * S, first)
    rt.remapctl("--db", db, "remap", "100")
    d.stop()
    rt.sh([rt.tool("sqlite3"), db, f".backup {ctx.path('backup.db')}"])
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    rt.write_direct(d.image, 200 * S, later)
    rt.remapctl("--db", db, "remap", "200")
    slot = int(rt.sqlite(db, "select spare_slot from remap where lba = 200")[0][0])
    d.stop()
    # Sector 200's old place is reused meanwhile: the old table would serve what is there now.
    rt.pwrite_file(backing, 200 * S, b"\x55" * S)
    gen = rt.sqlite(db, "select generation from device")[0][0]
    rt.sh([rt.tool("sqlite3"), ctx.path("backup.db"), f".backup {db}"])
    check_eq(rt.sqlite(db, "select generation from device"), [["1"]], "the restored database is at generation 1")
    ctx.expect_mount_refused(backing, mnt, f"db={db}", "remapctl --db")
    rec = rt.remapctl_json("--db", db, "recover")
    check_eq((rec["remaps_before"], rec["remaps"], str(rec["generation"])), (1, 2, gen),
             "recover found both remaps and the device's generation")
    check_eq(rt.sqlite(db, "select lba, spare_slot from remap_list"), [["100", "0"], ["200", str(slot)]],
             "sqlite3 shows the rebuilt table")
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan")
    check_eq(rt.pread_file(d.image, 200 * S, S, direct=True), later, "the sector remapped since the backup reads right")
    check_eq(rt.pread_file(d.image, 100 * S, S, direct=True), first, "and the older one too")
    check_eq(rt.pread_file(backing, rt.slot_offset(image_bytes, slot, B), S), later, "from its slot")
    d.stop()


def used_disk(ctx):
    mnt = ctx.mkdir("mnt-used")
    gpt = ctx.path("gpt.img")
    rt.make_sparse(gpt, B)
    rt.sh([rt.tool("sfdisk"), "--quiet", gpt], input="label: gpt\n,,L\n")
    ctx.expect_mount_refused(gpt, mnt, f"db={ctx.path('gpt.db')}", "GPT backup header")
    check(not os.path.exists(ctx.path("gpt.db")), "no database was created")
    data = ctx.path("data.img")
    rt.make_sparse(data, B)
    rt.pwrite_file(data, B - 300 * 1024, os.urandom(4096))  # the end of a filesystem, say
    ctx.expect_mount_refused(data, mnt, f"db={ctx.path('data.db')}", "give -o force")
    d = ctx.mount_fg(data, mnt, f"db={ctx.path('data.db')},force,noscan")
    d.stop()
    d = ctx.mount_fg(data, mnt, f"db={ctx.path('data.db')},noscan")  # from now on it is remapfs's
    d.stop()


def permissions(ctx):
    backing, db, mnt = ctx.path("p.img"), ctx.path("p.db"), ctx.mkdir("mnt-perm")
    rt.make_sparse(backing, B)
    os.chmod(ctx.tmp, 0o711)  # others may reach the mountpoint: the mount's own modes decide
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,allow_other")
    check_eq(stat.S_IMODE(os.stat(db).st_mode), 0o600, "the database is created 0600")
    check_eq(stat.S_IMODE(os.stat(d.image).st_mode), 0o600, "the image is 0600")
    r = rt.sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "head", "-c", "1", d.image], check_rc=False)
    check(r.returncode != 0 and "Permission denied" in r.stderr, "another user cannot read the disk")
    d.stop()
    d = ctx.mount_fg(backing, mnt, f"db={db},noscan,allow_other,umask=022")
    check_eq(stat.S_IMODE(os.stat(d.image).st_mode), 0o644, "umask=022: the image is 0644")
    r = rt.sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "head", "-c", "1", d.image], check_rc=False)
    check_eq(r.returncode, 0, "another user may read it then")
    d.stop()


def body(ctx):
    log("--- two backings that swapped names")
    swapped_backings(ctx)
    log("--- a database restored from a backup")
    restored_database(ctx)
    log("--- a first mount on a used disk")
    used_disk(ctx)
    log("--- who may open the database and the image")
    permissions(ctx)


if __name__ == "__main__":
    rt.run("binding", body, tools=("sqlite3", "sfdisk", "setpriv"))
