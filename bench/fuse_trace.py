#!/usr/bin/env python3
"""Summarise `perf script` output of fuse:fuse_request_send/end for one FUSE connection.

Usage: perf script -i perf.data | fuse_trace.py CONNECTION

Prints, per opcode: requests, reply sizes, latency (send to end) p50/p90/p99/max, and for
all requests together the share of time 0, 1, 2, ... requests were in flight and the data
rate of READ replies and WRITE requests over the traced span. Used by bench/fuse-trace.sh.
"""

import collections
import re
import sys

LINE = re.compile(
    r"\s(?P<t>\d+\.\d+):\s+fuse:fuse_request_(?P<kind>send|end): connection (?P<conn>\d+) "
    r"req (?P<req>\d+)(?: opcode \d+ \((?P<op>\w+)\))? len (?P<len>\d+)"
)
# fuse_out_header / fuse_in_header + fuse_write_in: what a reply or request carries besides data.
OUT_HEADER = 16
WRITE_HEADER = 80


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def size_label(nbytes):
    if nbytes >= 1 << 20 and nbytes % (1 << 20) == 0:
        return f"{nbytes >> 20}M"
    if nbytes >= 1024 and nbytes % 1024 == 0:
        return f"{nbytes >> 10}K"
    return f"{nbytes}B"


def summarise(lines, conn):
    sent = {}  # req -> (t, op, request len)
    latency = collections.defaultdict(list)
    sizes = collections.defaultdict(collections.Counter)
    data_bytes = 0
    edges = []  # (t, +1/-1)
    for line in lines:
        m = LINE.search(line)
        if not m or m["conn"] != conn:
            continue
        t, req, length = float(m["t"]), int(m["req"]), int(m["len"])
        if m["kind"] == "send":
            sent[req] = (t, m["op"] or "?", length)
            edges.append((t, 1))
            continue
        if req not in sent:
            continue  # sent before the trace began
        t0, op, in_len = sent.pop(req)
        edges.append((t, -1))
        latency[op].append(t - t0)
        if op == "FUSE_READ":
            payload = max(0, length - OUT_HEADER)
        elif op == "FUSE_WRITE":
            payload = max(0, in_len - WRITE_HEADER)
        else:
            payload = None
        if payload is not None:
            sizes[op][payload] += 1
            data_bytes += payload
    return latency, sizes, data_bytes, edges


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: perf script | fuse_trace.py CONNECTION")
    latency, sizes, data_bytes, edges = summarise(sys.stdin, sys.argv[1])
    if not edges:
        sys.exit(f"fuse_trace.py: no requests on connection {sys.argv[1]} in the trace")

    print("| opcode | requests | sizes (top 4) | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for op in sorted(latency, key=lambda o: -len(latency[o])):
        lat = sorted(latency[op])
        top = ", ".join(f"{size_label(s)} ×{n}" for s, n in sizes[op].most_common(4)) or "-"
        print(f"| {op} | {len(lat)} | {top} | {percentile(lat, 50) * 1e3:.3f} | "
              f"{percentile(lat, 90) * 1e3:.3f} | {percentile(lat, 99) * 1e3:.3f} | {lat[-1] * 1e3:.3f} |")

    edges.sort()
    in_flight, previous = 0, edges[0][0]
    time_at = collections.Counter()
    for t, step in edges:
        time_at[in_flight] += t - previous  # never negative: only ends of seen sends count
        previous, in_flight = t, in_flight + step
    span = sum(time_at.values())
    shares = " ".join(f"{k}:{100 * v / span:.0f}%" for k, v in sorted(time_at.items()) if v / span >= 0.005)
    print()
    print(f"span {span:.2f} s; time with N requests in flight: {shares}")
    if data_bytes:
        print(f"READ+WRITE data {data_bytes / 2**20:.0f} MiB, {data_bytes / 2**20 / span:.0f} MiB/s over the span")


if __name__ == "__main__":
    main()
