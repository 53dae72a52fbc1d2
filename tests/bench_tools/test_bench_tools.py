#!/usr/bin/env python3
"""The benchmark report tools on made-up inputs: a report's verdicts and counts must follow from
its numbers, and a trace summary from its events. No root, no mounts."""

import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PERF_REPORT = os.path.join(REPO, "bench", "perf_report.py")
FUSE_TRACE = os.path.join(REPO, "bench", "fuse_trace.py")
HEADER = "label\tjob\tmode\tiops\tmbps\tp99_us\tmean_us\terr\tdaemon_cpu_pct\n"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run_dir(root, name, rows, notes=()):
    d = os.path.join(root, name)
    os.makedirs(d)
    with open(os.path.join(d, "results.tsv"), "w") as f:
        f.write(HEADER)
        for label, job, mode, mbps in rows:
            iops = mbps  # 1M jobs are judged by MB/s, 4k jobs by IOPS: same number here
            f.write(f"{label}\t{job}\t{mode}\t{iops}\t{mbps}\t100\t50\t0\t10\n")
    with open(os.path.join(d, "notes.tsv"), "w") as f:
        for label, text in notes:
            f.write(f"{label}\t{text}\n")
    return d


def report(root, peers, remapped, *extra):
    out = os.path.join(root, "report.md")
    if os.path.exists(out):
        os.remove(out)  # a call that fails must not be judged on the report before it
    args = [sys.executable, PERF_REPORT, "--out", out]
    for p in peers:
        args += ["--peers", p]
    for r in remapped:
        args += ["--remapped", r]
    res = subprocess.run(args + list(extra), capture_output=True, text=True)
    text = open(out).read() if os.path.exists(out) else ""
    return res, text


def table_row(text, view, job, section):
    """The row for view/job in the given section (1, 2 or 4) of the report."""
    part = text.split(f"## {section}.")[1].split("\n## ")[0]
    return [l for l in part.splitlines() if l.startswith(f"| {view} | {job} |")]


def test_subset_report():
    with tempfile.TemporaryDirectory() as root:
        peers = run_dir(root, "r1-peers", [
            ("remapfs.loopdio", "sr1m", "bdev", 2000),
            ("pt.loopdio", "sr1m", "bdev", 1000),
            ("raw.loopdio", "sr1m", "bdev", 2000),
        ])
        remapped = run_dir(root, "r1-remapped", [
            ("remapfs.loopdio", "sr1m", "bdev", 2000),
            ("remapfs-1pct.loopdio", "sr1m", "bdev", 1700),
        ])
        res, text = report(root, [peers], [remapped], "--views", "loopdio", "--jobs", "sr1m")
        check(res.returncode == 0, f"subset report runs (rc {res.returncode}: {res.stderr.strip()})")
        check("**Subset**: views loopdio, jobs sr1m" in text, "a subset report says so at its top")
        check("ERR" not in text and "did not run" not in text, "no rows for views or jobs that were not run")
        row = table_row(text, "loopdio", "sr1m", 1)
        check(len(row) == 1 and "| 2.00 |" in row[0] and "PASS" in row[0], "2000 vs pt 1000: ratio 2.00, PASS")
        row = table_row(text, "loopdio", "sr1m", 2)
        check(len(row) == 1 and "| 1.00 |" in row[0] and "PASS" in row[0], "2000 vs raw.loopdio 2000: 1.00 ≥ 0.85")
        row = table_row(text, "loopdio", "sr1m", 4)
        check(len(row) == 1 and "| 0.85 |" in row[0] and "FAIL" in row[0], "1 % remapped 1700 vs 2000: 0.85 < 0.90, FAIL")
        check("2 of 3 targets met" in text, "summary counts what it checked: 2 of 3")
        check(not re.search(r"^\| (loopbuf|file) \|", text, re.M), "no rows for the views that were not run")

        # A job that was asked for and has no row is a failure, not a gap.
        res, text = report(root, [peers], [remapped], "--views", "loopdio", "--jobs", "sr1m sw1m")
        row = table_row(text, "loopdio", "sw1m", 1)
        check(len(row) == 1 and "did not run" in row[0] and "FAIL" in row[0], "a requested job without rows: FAIL")

        res, _ = report(root, [peers], [remapped], "--views", "loopdio nosuchview")
        check(res.returncode != 0 and "nosuchview" in res.stderr and res.stderr.count("\n") == 1,
              "an unknown view: one line, non-zero exit")


def test_full_report_counts_every_job():
    with tempfile.TemporaryDirectory() as root:
        peers = run_dir(root, "r1-peers", [("remapfs.file", "sr1m", "direct", 1000)],
                        notes=[("remapfs.file", "O_DIRECT 4k read: works, write: works (dd probe)")])
        res, text = report(root, [peers], [])
        # Section 1: 17 jobs did not run (failed); file sr1m ran but no peer did (not counted).
        # Section 2: its 4 jobs did not run. Section 3: the probe and every file job ran direct.
        m = re.search(r"(\d+) of (\d+) targets met", text)
        check(m is not None and m.group(0) == "1 of 22 targets met",
              f"a full report checks every job: 1 of 17 + 4 + 1 (got {m and m.group(0)})")


SEND = "  kworker/u8:1  100 [000] {t:.6f}: fuse:fuse_request_send: connection {c} req {r} opcode {o} ({name}) len {n} "
END = "  remapfs  200 [001] {t:.6f}:  fuse:fuse_request_end: connection {c} req {r} len {n} error 0"


def test_fuse_trace_summary():
    lines = [
        SEND.format(t=10.000, c=40, r=2, o=15, name="FUSE_READ", n=80),
        SEND.format(t=10.001, c=40, r=4, o=15, name="FUSE_READ", n=80),
        SEND.format(t=10.001, c=41, r=2, o=15, name="FUSE_READ", n=80),  # another mount: ignored
        END.format(t=10.002, c=40, r=2, n=16 + (1 << 20)),
        END.format(t=10.004, c=40, r=4, n=16 + (1 << 20)),
        SEND.format(t=10.006, c=40, r=6, o=16, name="FUSE_WRITE", n=80 + 4096),
        END.format(t=10.008, c=40, r=6, n=16 + 16),
        END.format(t=10.009, c=40, r=99, n=16),  # sent before the trace began: ignored
    ]
    res = subprocess.run([sys.executable, FUSE_TRACE, "40"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True)
    out = res.stdout
    check(res.returncode == 0, f"fuse_trace.py runs (rc {res.returncode}: {res.stderr.strip()})")
    read = [l for l in out.splitlines() if l.startswith("| FUSE_READ |")]
    check(len(read) == 1 and "| 2 | 1M ×2 |" in read[0], "two 1 MiB READs on connection 40 only")
    check(len(read) == 1 and "| 3.000 |" in read[0], "READ latency max 3 ms (10.001 → 10.004)")
    write = [l for l in out.splitlines() if l.startswith("| FUSE_WRITE |")]
    check(len(write) == 1 and "| 1 | 4K ×1 |" in write[0] and "| 2.000 |" in write[0], "one 4 KiB WRITE, 2 ms")
    # 10.000-10.001 one in flight, -10.002 two, -10.004 one, -10.006 none, -10.008 one.
    shares = dict(re.findall(r"(\d+):(\d+)%", out.split("flight:")[-1]))
    want = {"0": 25, "1": 62.5, "2": 12.5}
    check("span 0.01 s" in out and shares.keys() == want.keys() and
          all(abs(int(shares[k]) - v) <= 1 for k, v in want.items()),
          f"time by requests in flight 25/62.5/12.5 %: {shares}")
    check("READ+WRITE data 2 MiB" in out, "data counted: 2 MiB read + 4 KiB written")
    res = subprocess.run([sys.executable, FUSE_TRACE, "7"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True)
    check(res.returncode != 0 and "no requests on connection 7" in res.stderr, "an empty trace: one line, non-zero exit")


if __name__ == "__main__":
    test_subset_report()
    test_full_report_counts_every_job()
    test_fuse_trace_summary()
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")
