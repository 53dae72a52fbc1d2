#!/usr/bin/env python3
"""The background scanner finds bad and slow sectors on its own, records them in the history, and a
pass interrupted by SIGKILL resumes from its checkpoint.

Part 1 (finds): a 512 MiB backing prefilled with a known pattern, fault rules for 5 unreadable and
5 slow sectors, a mount with slow_ms=50,slow_count=1 and nobody doing I/O. The scanner's first pass
(it starts on a new database) must leave: every bad sector pending and in recent_sector_errors as a
read-error from source scan; every slow sector with a slow-read event from scan and remapped
pre-emptively (reason slow-reads) with its data intact; one finished pass in scan_history with
coverage 100 %; device_health_daily answering. The documented example queries are printed.

Part 2 (resume): a 4 GiB sparse backing with hdd_model=150 (a pass takes ~30 s) and one bad and
one slow sector early in the image. Once the pass is past 30 % and a checkpoint is in scan_state,
SIGKILL the daemon, fusermount3 -uz, restart with the same options: the same pass goes on from the
checkpoint (not 0), finishes once, its sector count and the per-region read counts are exactly one
coverage of the image, not more, not less, and its totals (errors, slow, max_us) still include
what it found before the kill.

Checks whose failure does not make the rest meaningless are collected (NOT OK lines) and fail the
test at the end, so one run shows every symptom. Run time ~50 s; meson timeout 300.
"""

import json
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import remaptest as rt  # noqa: E402
from remaptest import check, check_eq, log  # noqa: E402

S = rt.SECTOR
REGION_BYTES = 128 * rt.MiB
SECTORS_PER_SCAN = 256  # scan_config default: sectors per scanner read while the image is idle


# ---------------------------------------------------------------------------------------------
# helpers


def pattern(lba):
    """The known content of image sector lba written to the backing before the first mount."""
    head = f"remapfs scanner test, image sector {lba:012d}\n".encode()
    return (head * (S // len(head) + 1))[:S]


def prefill(backing, image_sectors):
    with open(backing, "r+b") as f:
        chunk = 256
        for first in range(0, image_sectors, chunk):
            n = min(chunk, image_sectors - first)
            f.seek(first * S)
            f.write(b"".join(pattern(lba) for lba in range(first, first + n)))
        f.flush()
        os.fsync(f.fileno())


def scan_status(db, quiet=True):
    r = rt.remapctl("--db", db, "scan", "status", "--json", quiet=quiet)
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise rt.Fail(f"scan status --json printed invalid JSON: {e}\n{r.stdout}") from e


def q(db, sql):
    """Rows of a query (sqlite3 CLI, lists of strings), without echoing the command."""
    r = rt.sh([rt.tool("sqlite3"), "-batch", "-bail", db, sql], quiet=True)
    return [line.split("|") for line in r.stdout.splitlines() if line != ""]


def q1(db, sql):
    rows = q(db, sql)
    return rows[0][0] if rows and rows[0] else None


def show(db, sql):
    """Print a query and its table the way a user would run it (the documented examples)."""
    log(f"  $ sqlite3 -header -column DB \"{sql}\"")
    r = rt.sh([rt.tool("sqlite3"), "-batch", "-bail", "-header", "-column", db, sql], quiet=True)
    for line in r.stdout.rstrip("\n").splitlines() or ["  (no rows)"]:
        log("    " + line)
    return r.stdout


def wait_for(what, fn, timeout, interval=0.25):
    """Poll fn() until it returns a truthy value; Fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            log(f"  ok: {what}")
            return last
        if time.monotonic() >= deadline:
            raise rt.Fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


# Failures that do not stop the test: every symptom of a bug is reported in one run, and the
# test fails at the end if there was any.
SOFT_FAILURES = []


def soft_check(cond, msg):
    if cond:
        log(f"  ok: {msg}")
    else:
        log(f"  NOT OK: {msg}")
        SOFT_FAILURES.append(msg)


def daemon_alive(d):
    if d.proc.poll() is not None:
        raise rt.Fail(f"remapfs exited with status {d.proc.returncode}; log:\n{d.log_text()}")


# ---------------------------------------------------------------------------------------------
# part 1: bad and slow sectors found by the scanner alone


def part_finds(ctx):
    log("=== part 1: the scanner finds bad and slow sectors")
    backing_bytes = 512 * rt.MiB
    image_bytes = rt.expected_image_bytes(backing_bytes)
    image_sectors = image_bytes // S
    log(f"  image: {image_bytes} bytes, {image_sectors} sectors")

    # Far apart (> 5 MiB = 1280 sectors) so a bad sector's neighbourhood rescan (10 MiB around
    # it) does not reach a slow one, and spread over all 4 regions of 128 MiB (32768 sectors).
    bad = [1000, 33000, 66000, 99000, image_sectors - 700]
    slow = [12000, 45000, 78000, 111000, image_sectors - 8000]
    for a in bad:
        for b in slow:
            assert abs(a - b) > 1280 + 256, (a, b)
    assert max(bad + slow) < image_sectors

    p1 = ctx.mkdir("p1")
    backing = os.path.join(p1, "backing.img")
    db = os.path.join(p1, "remap.db")
    mnt = ctx.mkdir("p1/mnt")
    rules_path = os.path.join(p1, "rules.json")
    rt.make_sparse(backing, backing_bytes)
    log(f"  prefilling the {image_sectors} image sectors of {backing} with a per-sector pattern")
    prefill(backing, image_sectors)
    rules = [{"sectors": str(lba), "op": "read", "errno": "EIO"} for lba in bad]
    rules += [{"sectors": str(lba), "op": "read", "errno": "none", "latency_ms": 80} for lba in slow]
    with open(rules_path, "w") as f:
        json.dump(rules, f, indent=1)
    log(f"  rules: {json.dumps(rules)}")

    opts = (f"db={db},allow_inject,inject_file={rules_path},slow_ms=50,slow_count=1,"
            f"read_retries=1,retry_delay_ms=1")
    t0 = time.monotonic()
    d = ctx.mount_fg(backing, mnt, opts)

    # No user I/O at all from here until the pass is done: only the scanner reads the image.
    def pass_done():
        daemon_alive(d)
        st = scan_status(db)
        return st if st.get("total_scans", 0) >= 1 else None

    st = wait_for("scan status: total_scans >= 1", pass_done, timeout=180, interval=0.5)
    log(f"  first pass done after {time.monotonic() - t0:.1f}s: {json.dumps(st)}")
    check_eq(st.get("pass"), 1, "scan status: pass")
    check_eq(st.get("total_scans"), 1, "scan status: total_scans (one pass, the next one is a day away)")
    check_eq(st.get("positions"), image_sectors, "scan status: positions (sequential order = image sectors)")
    check(st.get("state") in ("waiting", "rescanning"), f"scan status: state {st.get('state')!r} after the pass")

    # The history thread writes about once a second: wait until the pass row is final.
    wait_for("scan_pass row 1 is finished in the database",
             lambda: q1(db, "select count(*) from scan_pass where pass = 1 and finished is not null") == "1",
             timeout=15)
    # (Any source here: which source they carry is checked below.)
    wait_for("read-error / slow-read and remap events of every injected sector are in sector_event",
             lambda: q1(db, "select count(distinct lba || kind) from sector_event where "
                            f"(kind = 'read-error' and lba in ({','.join(map(str, bad))})) or "
                            f"(kind in ('slow-read', 'remap') and lba in ({','.join(map(str, slow))}))")
             == str(len(bad) + 2 * len(slow)),
             timeout=15)
    # Let the rescans of the neighbourhoods settle (they add events, nothing else).
    wait_for("scanner idle (state waiting)", lambda: scan_status(db).get("state") == "waiting", timeout=60)
    time.sleep(1.5)

    log("--- the documented example queries")
    show(db, "select * from scan_history")
    show(db, "select * from recent_sector_errors")
    show(db, "select * from device_health_daily")
    show(db, "select lba, first_seen, last_seen, errors, last_errno from pending order by lba")
    show(db, "select lba, spare_slot, state, reason from remap order by lba")
    show(db, "select kind, source, count(*) from sector_event group by 1, 2 order by 1, 2")
    show(db, "select * from region_latency")
    show(db, "select pass, region, b0, b1, b2, b3, b4, b5, b6, b7, errors, max_us from region_pass order by region")
    show(db, "select * from regions_getting_worse")
    show(db, "select * from scan_state")

    log("--- bad sectors: pending, read-error from the scanner")
    pending = {int(r[0]) for r in q(db, "select lba from pending")}
    for lba in bad:
        check(lba in pending, f"bad sector {lba} is in pending")
    check_eq(pending, set(bad), "pending holds exactly the bad sectors")
    rse = {int(r[0]): r for r in q(db, "select lba, kind, events, sources from recent_sector_errors "
                                       "where kind = 'read-error'")}
    for lba in bad:
        check(lba in rse, f"bad sector {lba} is in recent_sector_errors as a read-error")
        check("scan" in rse[lba][3].split(","), f"recent_sector_errors sources of {lba} ({rse[lba][3]!r}) contain scan")
    check_eq(set(rse), set(bad), "read-errors in recent_sector_errors are exactly the bad sectors")

    log("--- slow sectors: slow-read from the scanner, remapped pre-emptively, data intact")
    remaps = {int(r[0]): (int(r[1]), r[2]) for r in q(db, "select lba, spare_slot, reason from remap")}
    for lba in slow:
        srcs = q1(db, f"select group_concat(DISTINCT source) from sector_event where lba = {lba} "
                      "and kind = 'slow-read'") or ""
        soft_check("scan" in srcs.split(","),
                   f"slow sector {lba} has a slow-read event from source scan (its slow-read events "
                   f"carry source(s) {srcs!r}; nobody but the scanner read the image)")
        check(lba in remaps, f"slow sector {lba} is remapped")
        check_eq(remaps[lba][1], "slow-reads", f"remap reason of {lba}")
    check_eq(set(remaps), set(slow), "the remapped sectors are exactly the slow ones (bad ones stay pending)")
    for lba in bad:
        check(lba not in remaps, f"bad sector {lba} is not remapped (unreadable, nothing to copy)")

    # Only now user I/O: the slow sectors read through the mount (served from their slots) hold
    # the pattern written before the first mount; so do the slots themselves on the backing.
    for lba in slow:
        slot = remaps[lba][0]
        check_eq(rt.pread_file(d.image, lba * S, S, direct=True), pattern(lba),
                 f"image sector {lba} read via the mount (O_DIRECT) == the prefilled pattern")
        check_eq(rt.pread_file(backing, rt.slot_offset(image_bytes, slot, backing_bytes), S), pattern(lba),
                 f"spare slot {slot} on the backing holds sector {lba}'s data")
    for lba in (0, 12345, slow[0] - 1, slow[0] + 1, image_sectors - 1):
        check_eq(rt.pread_file(d.image, lba * S, S, direct=True), pattern(lba), f"image sector {lba} intact")

    log("--- scan_history, region_pass, device_health_daily")
    rows = q(db, "select pass, finished is not null, sectors, coverage_pct, errors, slow from scan_history")
    check_eq(len(rows), 1, "scan_history has one pass")
    pass_, fin, sectors, cov, errors, slow_n = rows[0]
    check_eq((pass_, fin), ("1", "1"), "scan_history: pass 1, finished")
    check_eq(float(cov), 100.0, "scan_history: coverage_pct")
    check_eq(int(sectors), image_sectors, "scan_history: sectors == image sectors")
    check_eq(int(errors), len(bad), "scan_history: errors == the bad sectors")
    check(int(slow_n) >= len(slow), f"scan_history: slow ({slow_n}) >= the slow sectors ({len(slow)})")
    reg = q(db, "select count(*), sum(errors), sum(b7) from region_pass where pass = 1")[0]
    regions = (image_bytes + REGION_BYTES - 1) // REGION_BYTES
    check_eq(int(reg[0]), regions, "region_pass rows of pass 1 == regions of the image")
    check_eq(int(reg[1]), len(bad), "region_pass: errors summed over the regions == the bad sectors")
    check(int(reg[2]) >= len(slow), f"region_pass: reads >= 50 ms ({reg[2]}) >= the slow sectors")
    dh = q(db, "select date, reads, scan_errors, io_errors, slow_reads, remaps from device_health_daily")
    check(len(dh) >= 1, f"device_health_daily answers ({len(dh)} row(s))")
    reads = sum(int(r[1]) for r in dh)
    check(reads >= image_sectors // SECTORS_PER_SCAN, f"device_health_daily: {reads} scanner reads")
    check_eq(sum(int(r[2]) for r in dh), len(bad), "device_health_daily: scan_errors")
    check(sum(int(r[3]) for r in dh) >= len(bad), "device_health_daily: io_errors >= the bad sectors")
    check(sum(int(r[4]) for r in dh) >= len(slow), "device_health_daily: slow_reads >= the slow sectors")
    check_eq(sum(int(r[5]) for r in dh), len(slow), "device_health_daily: remaps")

    show(db, "select * from scan_history")
    rep = rt.remapctl_json("--db", db, "scan", "report")
    log(f"  scan report: {json.dumps(rep)[:2000]}")
    d.stop()
    check_eq(q1(db, "select count(*) from scan_pass"), "1", "still one pass after the clean unmount")


# ---------------------------------------------------------------------------------------------
# part 2: SIGKILL mid-pass, restart, resume from the checkpoint


def part_resume(ctx):
    log("=== part 2: SIGKILL mid-pass resumes from the checkpoint")
    backing_bytes = 4 << 30
    image_bytes = rt.expected_image_bytes(backing_bytes)
    image_sectors = image_bytes // S
    reads_per_pass = (image_sectors + SECTORS_PER_SCAN - 1) // SECTORS_PER_SCAN
    regions = (image_bytes + REGION_BYTES - 1) // REGION_BYTES
    log(f"  image: {image_bytes} bytes, {image_sectors} sectors, {regions} regions, "
        f"{reads_per_pass} scanner reads of {SECTORS_PER_SCAN} sectors per pass")

    p2 = ctx.mkdir("p2")
    backing = os.path.join(p2, "backing.img")
    db = os.path.join(p2, "remap.db")
    mnt = ctx.mkdir("p2/mnt")
    rt.make_sparse(backing, backing_bytes)
    # One unreadable and one slow (80 ms) sector early in the image, so the pass finds them well
    # before the checkpoint the test interrupts after: the resumed pass must still count them.
    bad, slow = 5000, 20000
    rules_path = os.path.join(p2, "rules.json")
    with open(rules_path, "w") as f:
        json.dump([{"sectors": str(bad), "op": "read", "errno": "EIO"},
                   {"sectors": str(slow), "op": "read", "errno": "none", "latency_ms": 80}], f)
    opts = f"db={db},allow_inject,hdd_model=150,inject_file={rules_path}"

    t0 = time.monotonic()
    d = ctx.mount_fg(backing, mnt, opts)

    def past_30():
        daemon_alive(d)
        st = scan_status(db)
        if st.get("total_scans", 0) >= 1:
            raise rt.Fail(f"the pass finished before the test could interrupt it: {st}")
        return st if st.get("state") == "scanning" and st.get("percent", 0) > 30 else None

    st = wait_for("scan percent > 30", past_30, timeout=120, interval=0.25)
    log(f"  after {time.monotonic() - t0:.1f}s: {json.dumps(st)}")
    check_eq(st.get("positions"), image_sectors, "scan status: positions")
    the_pass = st["pass"]
    check_eq(the_pass, 1, "the pass under way is the first")

    def checkpointed():
        daemon_alive(d)
        rows = q(db, "select pass, cursor from scan_state")
        return rows[0] if rows and int(rows[0][1]) > 0 else None

    row = wait_for("scan_state.cursor > 0 (a checkpoint)", checkpointed, timeout=30)
    check_eq(int(row[0]), the_pass, "scan_state.pass")
    recorded = int(row[1])
    check(recorded > slow + SECTORS_PER_SCAN, f"the checkpoint ({recorded}) is past the bad and slow sectors")
    pre = q(db, f"select errors, slow, max_us from scan_pass where pass = {the_pass}")[0]
    log(f"  scan_pass at the checkpoint: errors {pre[0]} slow {pre[1]} max_us {pre[2]}")
    log(f"  recorded checkpoint: pass {row[0]} cursor {recorded} "
        f"({100.0 * recorded / image_sectors:.1f} %)")
    show(db, "select * from scan_state")
    show(db, "select * from scan_pass")

    log(f"--- SIGKILL pid {d.pid}")
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.stopped = True
    rt.sh(["fusermount3", "-uz", mnt], check_rc=False)
    if rt.is_mounted(mnt):
        rt.unmount(mnt, lazy_fallback=True)
    check(not rt.is_mounted(mnt), "dead mount removed")
    killed = q(db, "select pass, cursor, total_scans from scan_state")[0]
    at_kill = int(killed[1])
    log(f"  scan_state after the kill: pass {killed[0]} cursor {at_kill} total_scans {killed[2]}")
    check_eq(int(killed[0]), the_pass, "scan_state.pass after the kill")
    check(at_kill >= recorded, f"scan_state.cursor after the kill ({at_kill}) >= recorded ({recorded})")
    check(at_kill < image_sectors, "the pass was really interrupted (cursor < image sectors)")
    check_eq(killed[2], "0", "scan_state.total_scans after the kill")
    # What the database says about the half pass: the regions it flushed with the checkpoint.
    show(db, "select * from scan_pass")
    show(db, "select pass, region, b0+b1+b2+b3+b4+b5+b6+b7 as reads, errors from region_pass order by region")

    log("--- restart with the same options")
    d2 = ctx.mount_fg(backing, mnt, opts)
    st2 = scan_status(db, quiet=False)
    log(f"  right after the restart: {json.dumps(st2)}")
    check_eq(st2.get("pass"), the_pass, "scan status after the restart: same pass")
    check(st2.get("state") == "scanning", f"scan status after the restart: state {st2.get('state')!r} == scanning")
    check(st2.get("position", 0) >= recorded,
          f"scan status after the restart: position {st2.get('position')} >= recorded cursor {recorded} (not 0)")
    check_eq(st2.get("total_scans"), 0, "scan status after the restart: total_scans")
    msg = f"resuming pass {the_pass} at position {at_kill} of {image_sectors}"
    wait_for(f"daemon log says '{msg}'", lambda: msg in d2.log_text(), timeout=5)

    def finished():
        daemon_alive(d2)
        s = scan_status(db)
        if s.get("pass") != the_pass:
            raise rt.Fail(f"a new pass started instead of finishing pass {the_pass}: {s}")
        return s if s.get("total_scans", 0) >= 1 else None

    st3 = wait_for("the resumed pass finishes", finished, timeout=180, interval=0.5)
    log(f"  total {time.monotonic() - t0:.1f}s: {json.dumps(st3)}")
    check_eq(st3.get("total_scans"), 1, "total_scans after the resumed pass")
    wait_for("scan_pass row is finished in the database",
             lambda: q1(db, f"select count(*) from scan_pass where pass = {the_pass} and finished is not null") == "1",
             timeout=15)
    time.sleep(1.5)

    show(db, "select * from scan_history")
    show(db, "select * from scan_state")
    show(db, "select pass, region, b0+b1+b2+b3+b4+b5+b6+b7 as reads, errors, max_us from region_pass order by region")
    rows = q(db, "select pass, finished is not null, sectors from scan_pass")
    check_eq(len(rows), 1, "scan_pass has exactly one pass")
    check_eq(rows[0][:2], [str(the_pass), "1"], "scan_pass: that pass, finished")
    check_eq(int(rows[0][2]), image_sectors,
             "scan_pass.sectors of the resumed pass == image sectors (no double or under count)")
    check_eq(float(q1(db, "select coverage_pct from scan_history")), 100.0, "scan_history: coverage_pct")
    state = q(db, "select pass, cursor, total_scans from scan_state")[0]
    check_eq(state, [str(the_pass), str(image_sectors), "1"], "scan_state: pass, cursor at the end, total_scans")
    # The per-region read counts: the reads before the checkpoint were flushed with it, the ones
    # between it and the kill were lost and are read again, so every region counts one coverage.
    reg = q(db, f"select count(*), sum(sectors) from region_pass where pass = {the_pass}")[0]
    check_eq(int(reg[0]), regions, "region_pass rows of the pass == regions of the image")
    # The failing read is counted once as a run, then sector by sector: one run's worth extra.
    # (How many reads that takes depends on the read size, so coverage is checked in sectors.)
    check(image_sectors <= int(reg[1]) <= image_sectors + SECTORS_PER_SCAN,
          f"sectors summed over region_pass ({reg[1]}) == one coverage of the image ({image_sectors}), "
          f"give or take the re-read of the failing run (no double count)")
    # The pass totals must agree with the regions: what was found before the crash still counts.
    agg = q(db, f"select sum(errors), sum(b7), max(max_us) from region_pass where pass = {the_pass}")[0]
    tot = q(db, f"select errors, slow, max_us from scan_pass where pass = {the_pass}")[0]
    log(f"  region_pass totals: errors {agg[0]}, reads >= 50 ms {agg[1]}, max_us {agg[2]}; "
        f"scan_pass: errors {tot[0]}, slow {tot[1]}, max_us {tot[2]}")
    check_eq(int(agg[0]), 1, "region_pass: errors of the pass (the bad sector, found before the crash)")
    check(int(agg[1]) >= 1, f"region_pass: reads >= 50 ms of the pass ({agg[1]}) include the slow sector")
    soft_check(tot[0] == agg[0],
               f"scan_pass.errors of the resumed pass ({tot[0]}) == errors summed over region_pass ({agg[0]}); "
               f"before the kill scan_pass had errors {pre[0]}")
    soft_check(tot[1] == agg[1],
               f"scan_pass.slow of the resumed pass ({tot[1]}) == reads >= 50 ms summed over region_pass ({agg[1]}); "
               f"before the kill scan_pass had slow {pre[1]}")
    soft_check(tot[2] == agg[2],
               f"scan_pass.max_us of the resumed pass ({tot[2]}) == max over region_pass ({agg[2]}); "
               f"before the kill scan_pass had max_us {pre[2]}")
    check_eq(q1(db, f"select count(*) from pending where lba = {bad}"), "1", f"bad sector {bad} is pending")
    d2.stop()


def body(ctx):
    part_finds(ctx)
    part_resume(ctx)
    if SOFT_FAILURES:
        raise rt.Fail(f"{len(SOFT_FAILURES)} check(s) failed:\n    " + "\n    ".join(SOFT_FAILURES))


if __name__ == "__main__":
    rt.run("scanner", body, tools=("sqlite3",))
