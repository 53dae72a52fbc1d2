#!/usr/bin/env python3
"""Render bench/perf-report.sh's one report: issue 6's targets as ratios within one run.

usage: perf_report.py --peers RUN1 [--peers RUN1b ...] [--remapped RUN2 ...] [--micro FILE]...
                      [--extra FILE]... --out REPORT

RUN1 is a bench.sh result directory with raw, the peers (pt, qsd, nbd) and remapfs; RUN2 one
with remapfs-1pct (the same remapfs with 1 % of its sectors remapped) and, when paired job by job
(perf-report.sh does), a plain remapfs measured next to it; older RUN2s without the plain rows
are compared with RUN1's remapfs.
Given several rounds (--peers/--remapped repeated, in the order they ran), every figure is the
median over the rounds and the report says in how many rounds each target was met on its own:
absolute numbers drift between runs on these shared machines, and one 4 s job is noisy.
"""
import statistics
import argparse
import csv
import os
import sys

JOBS = ["rr4k_qd1", "rw4k_qd1", "rr4k_qd16", "rw4k_qd16", "sr1m", "sw1m"]
PEERS = ["pt", "qsd", "nbd"]
VIEWS = ["loopdio", "loopbuf", "file"]


def load_rounds(dirs):
    """{(label, job): [row per round, None where missing]} and the first round's notes."""
    merged, notes = {}, {}
    for i, d in enumerate(dirs):
        rows, n = load(d)
        if i == 0:
            notes = n
        for key, row in rows.items():
            merged.setdefault(key, [None] * len(dirs))[i] = row
    return merged, notes


def median_value(rows, job):
    """Median throughput over the rounds; None if any round failed or is missing."""
    vals = [value(r, job) for r in rows] if rows else [None]
    if any(v is None for v in vals):
        return None
    return statistics.median(vals)


def peer_value(rows, job):
    """A peer's median over the rounds where it worked (a peer failing is not our problem)."""
    vals = [v for v in (value(r, job) for r in rows or []) if v is not None]
    return statistics.median(vals) if vals else None


def per_round(rows, job):
    return [value(r, job) for r in rows] if rows else []


def spread(rows, job):
    vals = [v for v in per_round(rows, job) if v is not None]
    if len(vals) < 2:
        return ""
    return f" ({fmt_value(min(vals), job)}–{fmt_value(max(vals), job)})"


def load(run_dir):
    path = os.path.join(run_dir, "results.tsv")
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[(r["label"], r["job"])] = r
    notes = {}
    npath = os.path.join(run_dir, "notes.tsv")
    if os.path.exists(npath):
        with open(npath) as f:
            for line in f:
                label, _, text = line.rstrip("\n").partition("\t")
                notes.setdefault(label, []).append(text)
    return rows, notes


def value(row, job):
    """Throughput of a row (IOPS for 4k jobs, MB/s for 1M jobs); None if it failed or is missing."""
    if row is None or row.get("err", "0") not in ("0", ""):
        return None
    try:
        return float(row["mbps"] if job.startswith("s") else row["iops"])
    except (KeyError, ValueError):
        return None


def fmt_value(v, job):
    if v is None:
        return "ERR/-"
    if job.startswith("s"):
        return f"{v:.0f} MB/s"
    return f"{v / 1000:.1f}k"


def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", action="append", required=True, help="bench.sh result dir with raw, peers and remapfs")
    ap.add_argument("--remapped", action="append", default=[], help="bench.sh result dir with remapfs-1pct")
    ap.add_argument("--micro", action="append", default=[], help="markdown file from a micro-benchmark")
    ap.add_argument("--extra", action="append", default=[], help="more markdown to append")
    ap.add_argument("--name", default="remapfs")
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="", help="the command line that produced the report")
    ap.add_argument("--setup", default="", help="one line on the kernel and transport the run used")
    ap.add_argument("--views", default=" ".join(VIEWS), help="the views that were run (bench.sh VIEWS)")
    ap.add_argument("--jobs", default=" ".join(JOBS), help="the jobs that were run (bench.sh JOBS)")
    a = ap.parse_args()
    # A run of a subset (VIEWS=/JOBS=) checks only what it ran; a requested job with no row
    # is still a failure (remapfs did not mount, fio failed).
    views = [v for v in VIEWS if v in a.views.split()]
    jobs = [j for j in JOBS if j in a.jobs.split()]
    unknown = sorted(set(a.views.split()) - set(VIEWS)) + sorted(set(a.jobs.split()) - set(JOBS))
    if unknown or not views or not jobs:
        sys.exit(f"perf_report.py: views/jobs not understood: {' '.join(unknown) or '(none given)'}")

    rows, notes = load_rounds(a.peers)
    n_rounds = len(a.peers)
    me = a.name
    out = []
    w = out.append
    w("# remapfs performance report (issue 6 targets)\n")
    if a.command:
        w(f"Command: `{a.command}`\n")
    if a.setup:
        w(f"Setup: {a.setup}. With enable_uring=Y the kernel offers FUSE over io_uring; remapfs takes it, "
          "the peers (libfuse 3.14 passthrough_ll and nbdfuse, qemu-storage-daemon 7.2) cannot.\n")
    w(f"{n_rounds} round(s) of bench.sh, each with its own raw baseline and peers; every figure is the "
      "median over the rounds (min–max in brackets), and \"rounds\" says in how many rounds the target "
      "was met on that round's own numbers. Throughput: IOPS for 4k jobs, MB/s (10^6 B/s) for 1M jobs. "
      "Absolute numbers drift between runs on this shared 2-vCPU VM; the full bench.sh report of each "
      "round (p99 latency, daemon CPU) follows at the end. remapfs ran right after raw in odd rounds and "
      "last in even ones, so drift during a run does not always favour the same side.\n")
    if views != VIEWS or jobs != JOBS:
        w(f"**Subset**: views {' '.join(views)}, jobs {' '.join(jobs)}; the targets of the other views "
          "and jobs were not checked, so this is not a full report.\n")

    failures = 0
    checks = 0

    # A remapfs that did not mount has no rows: say so up front, and count its jobs as failed below.
    trouble = []
    for d in a.peers + a.remapped:
        for label, ns in load(d)[1].items():
            trouble += [(os.path.basename(d.rstrip("/")), label, n) for n in ns if label.startswith(me) and "failed" in n]
    if trouble:
        w("**Runs that failed** (bench.sh notes):\n")
        for run, label, n in trouble:
            w(f"- {run}, {label}: {n}")
        w("")

    def count(ok):
        nonlocal failures, checks
        checks += 1
        failures += not ok

    def did_not_run(view, job, empty_cells):
        count(False)
        w(f"| {view} | {job} | did not run | {empty_cells} | **FAIL** |")

    def rounds_met(mine_rows, other_rows, job, factor, other_is_peer_list=None):
        """How many rounds mine >= factor x other, on that round's own rows."""
        met = 0
        for i in range(n_rounds):
            m = value(mine_rows[i], job) if mine_rows else None
            if other_is_peer_list is not None:
                vals = [value(r[i], job) for r in other_is_peer_list if r and value(r[i], job) is not None]
                o = max(vals) if vals else None
            else:
                o = value(other_rows[i], job) if other_rows else None
            met += m is not None and o is not None and m >= factor * o
        return f"{met}/{n_rounds}"

    # -- 1. loop views and file view against the best peer
    w("## 1. remapfs vs the best FUSE peer\n")
    w("pt = libfuse passthrough_ll, qsd = qemu-storage-daemon, nbd = nbdkit + nbdfuse. In the file view a "
      "peer that refuses O_DIRECT ran buffered (through the page cache): shown, not compared.\n")
    w("| view | job | remapfs | best peer | ratio | rounds | target ≥ 1.00 |")
    w("|---|---|---|---|---|---|---|")
    for view in views:
        for job in jobs:
            mine_rows = rows.get((f"{me}.{view}", job))
            if not mine_rows:
                did_not_run(view, job, "- | - | -")
                continue
            mine = median_value(mine_rows, job)
            best, best_name, skipped, compared = None, "-", [], []
            for p in PEERS:
                prow = rows.get((f"{p}.{view}", job))
                v = peer_value(prow, job)
                if v is None:
                    continue
                first = next(r for r in prow if r is not None)
                if view == "file" and first.get("mode") != "direct":
                    skipped.append(f"{p} buffered {fmt_value(v, job)}")
                    continue
                compared.append(prow)
                if best is None or v > best:
                    best, best_name = v, p
            note = f"; {'; '.join(skipped)} not compared" if skipped else ""
            if best is None:
                w(f"| {view} | {job} | {fmt_value(mine, job)} | no peer ran{note} | - | - | n/a |")
                continue
            ok = mine is not None and mine >= best
            count(ok)
            ratio = f"{mine / best:.2f}" if mine else "-"
            w(f"| {view} | {job} | {fmt_value(mine, job)}{spread(mine_rows, job)} | {best_name} {fmt_value(best, job)}"
              f"{spread(rows.get((f'{best_name}.{view}', job)), job)}{note} | {ratio} | "
              f"{rounds_met(mine_rows, None, job, 1.0, compared)} | {verdict(ok)} |")
    w("")

    # -- 2. sequential vs a loop device straight on the backing
    w("## 2. Sequential throughput vs a loop device straight on the backing file\n")
    w("The target names `raw.loopdio`; for the loopbuf view the same-view limit `raw.loopbuf` is shown too "
      "(a buffered loop device on the raw file reads slower than `raw.loopdio` and writes into the page cache).\n")
    w("| view | job | remapfs | vs | raw | ratio | rounds | target ≥ 0.85 |")
    w("|---|---|---|---|---|---|---|---|")
    for view in [v for v in ("loopdio", "loopbuf") if v in views]:
        for job in [j for j in ("sr1m", "sw1m") if j in jobs]:
            mine_rows = rows.get((f"{me}.{view}", job))
            if not mine_rows:
                did_not_run(view, job, "raw.loopdio | - | - | -")
                continue
            mine = median_value(mine_rows, job)
            for raw_label in (["raw.loopdio"] if view == "loopdio" else ["raw.loopdio", "raw.loopbuf"]):
                raw_rows = rows.get((raw_label, job))
                raw = median_value(raw_rows, job)
                if raw is None:
                    w(f"| {view} | {job} | {fmt_value(mine, job)} | {raw_label} | not run | - | - | n/a |")
                    continue
                ok = mine is not None and mine >= 0.85 * raw
                ratio = f"{mine / raw:.2f}" if mine else "-"
                counted = raw_label == "raw.loopdio"
                if counted:
                    count(ok)
                w(f"| {view} | {job} | {fmt_value(mine, job)} | {raw_label} | {fmt_value(raw, job)}{spread(raw_rows, job)} | "
                  f"{ratio} | {rounds_met(mine_rows, raw_rows, job, 0.85)} | "
                  f"{verdict(ok) if counted else ('(met)' if ok else '(not met)')} |")
    w("")

    # -- 3. O_DIRECT on the file view
    if "file" in views:
        w("## 3. O_DIRECT on the exposed file\n")
        probe = [n for n in notes.get(f"{me}.file", []) if "O_DIRECT" in n]
        ran = [(r, j) for j in jobs for r in (rows.get((f"{me}.file", j)) or []) if r is not None]
        all_direct = bool(ran) and all(r.get("mode") == "direct" and value(r, j) is not None for r, j in ran)
        ok = bool(probe) and "read: works, write: works" in probe[0] and all_direct
        count(ok)
        w(f"- probe: {probe[0] if probe else 'no probe note'}; every file-view job of every round ran with "
          f"direct=1 and without error: {'yes' if all_direct else 'no'} → {verdict(ok)}\n")

    # -- 4. 1 % remapped
    if a.remapped:
        rrows, _ = load_rounds(a.remapped)
        paired = any(k[0].startswith(f"{me}.") for k in rrows)
        w("## 4. 1 % of the sectors remapped vs none remapped\n")
        if paired:
            per_round = len(a.remapped) // max(1, n_rounds)
            w(f"Paired: {per_round} time(s) in every round, each job ran on a plain remapfs (fresh "
              "database) and on the 1 % remapped one back to back, on fresh mounts, alternating which "
              "went first. The ratio is the median of the pairs' own ratios (\"per pair\", in the order "
              "they ran; \"pairs\" counts those at or above the target); the plain column is these "
              "runs, not section 1's.\n")
        else:
            w("Each round's remapped run came right after that round's run with the peers.\n")
        w("| view | job | none remapped | 1 % remapped | ratio | per pair | pairs | target ≥ 0.90 |")
        w("|---|---|---|---|---|---|---|---|")
        for view in views:
            for job in jobs:
                base_rows = (rrows if paired else rows).get((f"{me}.{view}", job))
                pct_rows = rrows.get((f"{me}-1pct.{view}", job))
                base = median_value(base_rows, job)
                pct = median_value(pct_rows, job)
                pairs = [(value(p, job), value(b, job)) for p, b in zip(pct_rows or [], base_rows or [])]
                ratios = [p / b for p, b in pairs if p is not None and b]
                ok = base is not None and pct is not None and len(ratios) == len(pairs) and \
                    statistics.median(ratios) >= 0.9
                count(ok)
                ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
                each = " ".join(f"{r:.2f}" for r in ratios) if ratios else "-"
                met = f"{sum(r >= 0.9 for r in ratios)}/{len(pairs)}" if pairs else "-"
                w(f"| {view} | {job} | {fmt_value(base, job)}{spread(base_rows, job)} | "
                  f"{fmt_value(pct, job)}{spread(pct_rows, job)} | {ratio} | {each} | {met} | {verdict(ok)} |")
        w("")

    # -- 5. micro-benchmarks and anything else
    for path in a.micro + a.extra:
        with open(path) as f:
            text = f.read().strip()
        w(text + "\n")
        # Micro-benchmarks print one "PASS"/"FAIL" word per target in their tables.
        if path in a.micro:
            for line in text.splitlines():
                if line.startswith("|") and ("PASS" in line or "FAIL" in line):
                    count("FAIL" not in line)

    w(f"## Summary: {checks - failures} of {checks} targets met (medians)\n")
    for dirs, what in ((a.peers, "with the peers"), (a.remapped, "1 % remapped")):
        for i, d in enumerate(dirs):
            report_md = os.path.join(d, "report.md")
            if os.path.exists(report_md):
                w(f"## bench.sh report, round {i + 1} ({what})\n")
                with open(report_md) as f:
                    w(f.read())

    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"{checks - failures} of {checks} targets met; report: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
