#!/usr/bin/env python3
"""Bad input gets one clear line on stderr, a non-zero exit, and changes nothing on disk.

Daemon cases run `remapfs BACKING MNT -o ...` without -f (the daemonize path: the error must still
reach the shell) and the same through the mount-helper convention `mount.remapfs BACKING MNT -o ...`.
For each case: exit status != 0, 1 (at most 2) non-empty stderr lines, no mount appeared, the
backing and any database file unchanged (sha256, size, mtime), no database file created.
All cases run; the failures are listed together at the end.
"""

import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import Fail, log  # noqa: E402

BACKING_BYTES = 64 * rt.MiB


def db_files(db):
    return [db, db + "-wal", db + "-shm", db + "-journal"]


class Runner:
    def __init__(self, ctx):
        self.ctx = ctx
        self.failures = []
        self.notes = []
        self.count = 0

    def expect_refused(self, desc, cmd, watch=(), mnt=None, exit_codes=None, timeout=30):
        """Run cmd; it must fail with one line and leave every path in `watch` as it was."""
        self.count += 1
        log(f"[{self.count}] {desc}")
        watch = list(dict.fromkeys(watch))
        before = {p: rt.file_state(p) for p in watch}
        mounted_before = rt.is_mounted(mnt) if mnt else False
        problems = []
        try:
            r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL)
            rc, out, err = r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
            problems.append(f"did not finish within {timeout}s")
        log("  $ " + " ".join(str(c) for c in cmd))
        log(f"  exit {rc}; stderr: {err.strip()!r}")
        if rc is not None:
            if rc == 0:
                problems.append("exit status 0")
            elif exit_codes is not None and rc not in exit_codes:
                problems.append(f"exit status {rc}, expected one of {sorted(exit_codes)}")
        lines = rt.nonempty_lines(err)
        if len(lines) == 0:
            problems.append("no message on stderr")
        elif len(lines) > 2:
            problems.append(f"{len(lines)} lines on stderr, expected one")
        elif len(lines) == 2:
            self.notes.append(f"{desc}: 2 stderr lines: {lines!r}")
        if mnt and not mounted_before:
            time.sleep(0.2)
            if rt.is_mounted(mnt) or rt.find_daemon_pids(mnt):
                problems.append(f"a mount/daemon appeared at {mnt}")
                pids = rt.find_daemon_pids(mnt)
                d = rt.Daemon(self.ctx, None, mnt, None, pids[0] if len(pids) == 1 else None)
                try:
                    d.release()
                except Exception as e:  # noqa: BLE001
                    problems.append(f"cleanup of the unexpected mount failed: {e}")
        for p in watch:
            after = rt.file_state(p)
            if p.endswith("-shm") or p.endswith("-wal"):
                # SQLite's side files come and go with connections; opening a database is not a
                # change. A WAL that grew holds new frames, which is one.
                b, a = before[p], after
                if p.endswith("-wal") and (a[1] if a else 0) > (b[1] if b else 0):
                    problems.append(f"{p} grew from {b[1] if b else 0} to {a[1]} bytes (new frames)")
                elif a != b and (a is None) != (b is None):
                    self.notes.append(f"{desc}: {p} was {'left behind' if b is None else 'removed'}")
                continue
            if after != before[p]:
                if before[p] is None:
                    problems.append(f"{p} was created")
                elif after is None:
                    problems.append(f"{p} was removed")
                else:
                    problems.append(f"{p} changed ({before[p][1:]} -> {after[1:]}, "
                                    f"content {'same' if after[0] == before[p][0] else 'differs'})")
        if problems:
            msg = f"{desc}: " + "; ".join(problems) + f"\n      command: {' '.join(str(c) for c in cmd)}" \
                  f"\n      exit {rc}, stderr: {err.strip()!r}"
            log(f"  FAILED: {msg}")
            self.failures.append(msg)
        else:
            log("  ok: refused with one line, nothing changed")

    def daemon_case(self, desc, backing, mnt, opts, watch=(), extra=()):
        """The same bad input through remapfs (no -f) and through mount.remapfs."""
        for label, prog in (("remapfs", rt.remapfs_bin()), ("mount.remapfs", self.ctx.mount_helper_path())):
            cmd = [prog, *extra, backing, mnt] if label == "remapfs" else [prog, backing, mnt, *extra]
            if opts:
                cmd += ["-o", opts]
            self.expect_refused(f"{label}: {desc}", cmd, watch=watch, mnt=mnt, exit_codes=None)


def sqlite_exec(db, sql):
    rt.sh([rt.tool("sqlite3"), "-batch", "-bail", db, sql])


def body(ctx):
    R = Runner(ctx)
    mnt = ctx.mkdir("mnt")
    good = ctx.path("good.img")
    rt.make_sparse(good, BACKING_BYTES)
    newdb = ctx.path("new.db")
    default_db_good = good + ".remapfs.db"
    fresh = [good, default_db_good, *db_files(newdb)]

    log("--- daemon: bad backing")
    missing = ctx.path("missing.img")
    R.daemon_case("backing does not exist", missing, mnt, f"db={newdb}",
                  watch=[missing, missing + ".remapfs.db", *db_files(newdb)])
    adir = ctx.mkdir("adir")
    R.daemon_case("backing is a directory", adir, mnt, f"db={newdb}", watch=[adir, *db_files(newdb)])
    small = ctx.path("small.img")
    rt.make_sparse(small, rt.MiB)
    R.daemon_case("1 MiB backing, too small for the default spare", small, mnt, f"db={newdb}",
                  watch=[small, *db_files(newdb)])
    R.daemon_case("1 MiB backing, default db path", small, mnt, "",
                  watch=[small, small + ".remapfs.db", small + ".remapfs.db-wal"])

    log("--- daemon: bad options")
    for opt in ("spare_size=0", "spare_size=abc", "spare_size=60%", "spare_size=0%", "spare_size=-5M",
                "spare_size=1Q", "sector_size=1000", "sector_size=abc", "frobnicate=1", "backing_io=sometimes",
                "name=a/b", "ro", "threads=0", "threads=many", "threads=100000", "umask=999", "umask=x",
                "uid=root", "gid=-1", "force=yes"):
        R.daemon_case(f"-o {opt}", good, mnt, f"db={newdb},{opt}", watch=fresh)
    R.daemon_case("-o frobnicate (no value), default db", good, mnt, "frobnicate", watch=fresh)
    R.daemon_case("missing mountpoint directory", good, ctx.path("no-such-mnt"), f"db={newdb}", watch=fresh)
    afile = ctx.path("afile")
    with open(afile, "w") as f:
        f.write("x\n")
    R.daemon_case("mountpoint is a regular file", good, afile, f"db={newdb}", watch=fresh + [afile])
    R.expect_refused("mount.remapfs: -N NS is unsupported",
                     [ctx.mount_helper_path(), good, mnt, "-N", "/proc/1/ns/mnt", "-o", f"db={newdb}"],
                     watch=fresh, mnt=mnt)
    R.expect_refused("remapfs: unknown flag --frobnicate",
                     [rt.remapfs_bin(), "--frobnicate", good, mnt, "-o", f"db={newdb}"], watch=fresh, mnt=mnt)
    R.expect_refused("remapfs: no mountpoint", [rt.remapfs_bin(), good, "-o", f"db={newdb}"], watch=fresh)
    # Mounted, the database would be hidden and SQLite's later open of its -wal a request to
    # ourselves before the session loop runs: it hung for good before this was refused.
    R.daemon_case("database under the mountpoint", good, mnt, f"db={mnt}/sub/remap.db",
                  watch=fresh + [os.path.join(mnt, "sub")])
    outer = ctx.mkdir("outer")
    inner = os.path.join(outer, "inner.img")
    rt.make_sparse(inner, 8 * rt.MiB)
    R.daemon_case("backing (and its default database) under the mountpoint", inner, outer, "",
                  watch=[inner, *db_files(inner + ".remapfs.db")])

    log("--- daemon: bad databases")
    foreign = ctx.path("foreign.db")
    sqlite_exec(foreign, "create table t(x); insert into t values (1);")
    R.daemon_case("foreign SQLite database", good, mnt, f"db={foreign}", watch=[good, *db_files(foreign)])
    toonew = ctx.path("toonew.db")
    sqlite_exec(toonew, f"pragma application_id={rt.APPLICATION_ID}; pragma user_version=99; create table future(x);")
    R.daemon_case("database with user_version 99 (newer than the code)", good, mnt, f"db={toonew}",
                  watch=[good, *db_files(toonew)])
    junk = ctx.path("junk.db")
    with open(junk, "w") as f:
        f.write("this is not an SQLite database\n" * 200)
    R.daemon_case("non-SQLite file as db", good, mnt, f"db={junk}", watch=[good, *db_files(junk)])

    log("--- daemon: a database bound to another backing")
    a = ctx.path("a.img")
    b = ctx.path("b.img")
    adb = ctx.path("a.db")
    rt.make_sparse(a, BACKING_BYTES)
    rt.make_sparse(b, BACKING_BYTES)
    log("  initialise a.db on a.img by mounting once")
    d = ctx.mount_fg(a, mnt, f"db={adb}")
    image_sectors = os.stat(d.image).st_size // rt.SECTOR
    d.stop()
    rt.sh(["sync"])
    R.daemon_case("a.db (made for a.img) with b.img of the same size", b, mnt, f"db={adb}",
                  watch=[a, b, *db_files(adb)])
    freshdb = ctx.path("fresh.db")
    R.daemon_case("a fresh database on a.img, which carries a.db's label", a, mnt, f"db={freshdb}",
                  watch=[a, *db_files(freshdb), *db_files(adb)])
    R.daemon_case("a.db with a conflicting sector_size=512", a, mnt, f"db={adb},sector_size=512",
                  watch=[a, *db_files(adb)])
    c = ctx.path("c.img")
    cdb = ctx.path("c.db")
    rt.make_sparse(c, BACKING_BYTES)
    d = ctx.mount_fg(c, mnt, f"db={cdb}")
    d.stop()
    with open(c, "r+b") as f:
        f.truncate(BACKING_BYTES + 16 * rt.MiB)
    R.daemon_case("c.db after c.img grew by 16 MiB", c, mnt, f"db={cdb}", watch=[c, *db_files(cdb)])

    log("--- remapctl: bad arguments (a.db is valid; nothing may change)")
    ctl = rt.remapctl_bin()
    wa = [a, *db_files(adb)]
    usage = {2}
    R.expect_refused("remapctl: unknown command", [ctl, "--db", adb, "frobnicate"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: no command", [ctl, "--db", adb], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: remap abc", [ctl, "--db", adb, "remap", "abc"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: remap 12abc", [ctl, "--db", adb, "remap", "12abc"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: remap -1", [ctl, "--db", adb, "remap", "-1"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: remap without LBA", [ctl, "--db", adb, "remap"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: remap 1 2 (extra argument)", [ctl, "--db", adb, "remap", "1", "2"], watch=wa,
                     exit_codes=usage)
    R.expect_refused(f"remapctl: remap {image_sectors} (first LBA past the image)",
                     [ctl, "--db", adb, "remap", str(image_sectors)], watch=wa, exit_codes={1, 2})
    R.expect_refused("remapctl: remap 2^64 (overflow)", [ctl, "--db", adb, "remap", str(1 << 64)], watch=wa,
                     exit_codes={1, 2})
    R.expect_refused("remapctl: unremap abc", [ctl, "--db", adb, "unremap", "abc"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: unremap of an LBA that is not remapped", [ctl, "--db", adb, "unremap", "3"],
                     watch=wa, exit_codes={1, 2})
    R.expect_refused("remapctl: verify 5 -1", [ctl, "--db", adb, "verify", "5", "-1"], watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: verify x", [ctl, "--db", adb, "verify", "x"], watch=wa, exit_codes=usage)
    R.expect_refused(f"remapctl: verify {image_sectors} 1 (range past the image)",
                     [ctl, "--db", adb, "verify", str(image_sectors), "1"], watch=wa, exit_codes={1, 2})
    R.expect_refused("remapctl: unknown option --frobnicate", [ctl, "--db", adb, "--frobnicate", "status"],
                     watch=wa, exit_codes=usage)
    R.expect_refused("remapctl: no --db/--backing/--mount", [ctl, "status"], watch=wa, exit_codes={1, 2})
    R.expect_refused("remapctl: no arguments at all", [ctl], watch=wa, exit_codes={1, 2})
    nodb = ctx.path("nonexistent.db")
    R.expect_refused("remapctl: nonexistent database", [ctl, "--db", nodb, "status"], watch=db_files(nodb),
                     exit_codes={1})
    R.expect_refused("remapctl: nonexistent database, remap", [ctl, "--db", nodb, "remap", "1"],
                     watch=db_files(nodb), exit_codes={1})
    R.expect_refused("remapctl: foreign database", [ctl, "--db", foreign, "list"], watch=db_files(foreign),
                     exit_codes={1})
    R.expect_refused("remapctl: database newer than the code", [ctl, "--db", toonew, "status"],
                     watch=db_files(toonew), exit_codes={1})
    R.expect_refused("remapctl: non-SQLite database", [ctl, "--db", junk, "status"], watch=db_files(junk),
                     exit_codes={1})
    R.expect_refused("remapctl: --backing with no database beside it", [ctl, "--backing", b, "status"],
                     watch=[b, *db_files(b + ".remapfs.db")], exit_codes={1})
    R.expect_refused("remapctl: --mount on a directory that is not a remapfs mount", [ctl, "--mount", mnt, "status"],
                     watch=[], exit_codes={1})

    for n in R.notes:
        log(f"note: {n}")
    log(f"{R.count} cases, {len(R.failures)} failed")
    if R.failures:
        raise Fail(f"{len(R.failures)} of {R.count} bad-input cases misbehaved:\n  - " + "\n  - ".join(R.failures))


if __name__ == "__main__":
    rt.run("bad_input", body, needs_loop=False, tools=("sqlite3",))
