"""Helpers for the fault-injection integration tests (Python 3, stdlib only).

Builds on remaptest (temp dir, cleanup stack, daemon/loop/mount resources); adds what the fault
tests need on top: fault-rule files, status/remap queries, the SQLite integrity check, a kernel
log watch for I/O errors on our own loop device, and fio.
"""

import json
import os
import re
import shutil
import subprocess
import time

import remaptest as rt
from remaptest import Fail, Skip, log

MiB = rt.MiB
SECTOR = rt.SECTOR


def write_rules(path, rules):
    """Write a fault-rule file (JSON array) for -o inject_file=PATH."""
    with open(path, "w") as f:
        json.dump(rules, f)
    return path


def status(db):
    return rt.remapctl_json("--db", db, "status")


def query(db, sql, quiet=True):
    """Rows (lists of strings) of a query run with the sqlite3 CLI."""
    r = rt.sh([rt.tool("sqlite3"), "-batch", "-bail", db, sql], quiet=quiet)
    return [line.split("|") for line in r.stdout.splitlines() if line != ""]


def injected_count(db):
    """Faults injected so far on the live mount ('remapctl inject list' text: 'N rule(s), M faults
    injected so far'); None if the line is not there."""
    r = rt.remapctl("--db", db, "inject", "list", quiet=True)
    m = re.search(r"(\d+) faults? injected", r.stdout)
    return int(m.group(1)) if m else None


def remap_rows(db):
    """{lba: (spare_slot, state, reason)} from table remap, read with the sqlite3 CLI."""
    rows = query(db, "select lba, spare_slot, state, reason from remap order by lba")
    return {int(r[0]): (int(r[1]), r[2], r[3]) for r in rows}


def pending_lbas(db):
    return [int(r[0]) for r in query(db, "select lba from pending order by lba")]


def integrity_check(db):
    """The text PRAGMA integrity_check prints ('ok' when the database is sound)."""
    r = rt.sh([rt.tool("sqlite3"), "-batch", db, "PRAGMA integrity_check"], check_rc=False, quiet=True)
    out = (r.stdout.strip() + (" " + r.stderr.strip() if r.stderr.strip() else "")).strip()
    return out if r.returncode == 0 else f"sqlite3 exit {r.returncode}: {out}"


def allocator_problems(db):
    """Cross-table consistency of the spare allocator, as a list of problems (empty: consistent):
    a slot is used by at most one remap, never both used and free or retired, and every slot
    handed out lies below allocator.next_slot <= device.spare_slots."""
    q = lambda sql: [r[0] for r in query(db, sql)]  # noqa: E731
    problems = []
    tables = set(q("select name from sqlite_master where type = 'table'"))
    used = [int(x) for x in q("select spare_slot from remap")]
    free = set(int(x) for x in q("select slot from free_slot"))
    retired = set(int(x) for x in q("select slot from retired_slot")) if "retired_slot" in tables else set()
    next_slot = int(q("select next_slot from allocator")[0])
    total = int(q("select spare_slots from device")[0])
    if len(used) != len(set(used)):
        problems.append("a spare slot is used by two remaps")
    for name, other in (("free_slot", free), ("retired_slot", retired)):
        both = sorted(set(used) & other)
        if both:
            problems.append(f"slots both in remap and in {name}: {both[:10]}")
    if free & retired:
        problems.append(f"slots both free and retired: {sorted(free & retired)[:10]}")
    beyond = sorted(x for x in set(used) | free | retired if x >= next_slot)
    if beyond:
        problems.append(f"slots at or past allocator.next_slot {next_slot}: {beyond[:10]}")
    if next_slot > total:
        problems.append(f"allocator.next_slot {next_slot} > device.spare_slots {total}")
    return problems


def check_db_ok(db):
    res = integrity_check(db)
    rt.check(res == "ok", f"PRAGMA integrity_check on {os.path.basename(db)} says {res!r}")
    probs = allocator_problems(db)
    rt.check(not probs, f"spare allocator tables are consistent {probs if probs else ''}")


class KernelLog:
    """Watches /dev/kmsg from now on for I/O errors naming one of our devices.

    Reading /dev/kmsg from a descriptor positioned at the end (SEEK_END) returns only records
    logged after that point, so other tests' old messages never count; records are filtered by
    our device names, so concurrent tests on other loop devices do not either."""

    def __init__(self):
        self.fd = None
        try:
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError as e:
            log(f"  note: /dev/kmsg unavailable ({e}); kernel log not checked")
            self.fd = None
        self.lines = []

    def _drain(self):
        if self.fd is None:
            return
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == 32:  # EPIPE: records overwritten; keep reading from the next one
                    continue
                return
            if not rec:
                return
            text = rec.decode(errors="replace")
            self.lines.append(text.split(";", 1)[-1].splitlines()[0] if ";" in text else text.strip())

    def errors_for(self, *names):
        """Kernel messages since creation that mention an I/O or filesystem error on these devices."""
        self._drain()
        pats = [re.compile(r"\b" + re.escape(os.path.basename(n)) + r"\b") for n in names if n]
        bad = re.compile(r"I/O error|EXT4-fs error|Buffer I/O|error -5|critical medium error|blk_update_request",
                         re.IGNORECASE)
        return [ln for ln in self.lines if bad.search(ln) and any(p.search(ln) for p in pats)]

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def check_no_kernel_errors(klog, *devs):
    errs = klog.errors_for(*devs)
    if errs:
        raise Fail("kernel logged I/O errors on " + ", ".join(devs) + ":\n    " + "\n    ".join(errs[:20]))
    log(f"  ok: no kernel I/O errors logged for {', '.join(devs)}")


def device_bytes(dev):
    r = rt.sh(["blockdev", "--getsize64", dev], quiet=True)
    return int(r.stdout.strip())


def run_fio(dev, size, cwd, runtime=50, name="faults", extra=(), timeout=180):
    """randwrite with crc32c verify (write, then read back and check) through DEV.

    Returns (CompletedProcess, parsed json or None)."""
    fio = shutil.which("fio")
    if fio is None:
        raise Skip("fio not installed (apt-get install fio)")
    cmd = [fio, f"--name={name}", f"--filename={dev}", "--rw=randwrite", "--bs=4k", "--direct=1",
           "--ioengine=libaio", "--iodepth=16", f"--size={size}", "--verify=crc32c", "--do_verify=1",
           "--verify_fatal=1", "--verify_state_save=0", f"--runtime={runtime}", "--randrepeat=0",
           "--output-format=json", *extra]
    log("  $ " + " ".join(cmd))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise Fail(f"fio did not finish within {timeout}s") from e
    data = None
    out = r.stdout
    # fio may print non-JSON notes before the JSON object.
    i = out.find("{")
    if i >= 0:
        try:
            data = json.loads(out[i:])
        except ValueError:
            data = None
    return r, data


def fio_summary(data):
    """(write ios, read ios, errors, write MiB/s, read MiB/s) from fio's JSON."""
    j = data["jobs"][0]
    w, rd = j["write"], j["read"]
    return {
        "write_ios": w["total_ios"],
        "read_ios": rd["total_ios"],
        "error": j.get("error", 0),
        "write_MiBps": w["bw_bytes"] / MiB,
        "read_MiBps": rd["bw_bytes"] / MiB,
        "write_iops": w["iops"],
        "runtime_s": j.get("job_runtime", 0) / 1000.0,
    }


def fio_verify(dev, size, cwd, daemon, runtime=50):
    """fio randwrite with crc32c verify on dev: checks it passed and read back every block."""
    r, data = run_fio(dev, size, cwd, runtime=runtime)
    if r.returncode != 0 or data is None:
        log(r.stdout[-3000:])
        log(r.stderr[-3000:])
        log("remapfs log tail:\n" + daemon.log_text()[-3000:])
    rt.check_eq(r.returncode, 0, "fio exit status")
    s = fio_summary(data)
    log(f"  fio: {s['write_ios']} writes ({s['write_iops']:.0f} IOPS, {s['write_MiBps']:.1f} MiB/s), "
        f"{s['read_ios']} verify reads ({s['read_MiBps']:.1f} MiB/s), {s['runtime_s']:.1f} s")
    rt.check_eq(s["error"], 0, "fio job error")
    rt.check(s["write_ios"] > 0 and s["read_ios"] >= s["write_ios"],
             f"every written block was read back and verified ({s['read_ios']} reads >= {s['write_ios']} writes)")
    return s


def remap_reasons(db):
    """{reason: count} over table remap."""
    reasons = {}
    for (_, _, reason) in remap_rows(db).values():
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def wait_until(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
