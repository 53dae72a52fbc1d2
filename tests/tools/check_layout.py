#!/usr/bin/env python3
"""The layout rules of the tree, checked (a meson test, so CI fails on a regression).

1. Floors: a folder of include/remapfs/ and src/lib/ includes only its own folder and folders on
   floors below it, so there is no include circle between folders:
       core -> sys -> block -> db -> remap -> health -> control -> instance
   The programs (src/daemon, src/fuse, src/ctl) sit on top; nothing in the library includes them.
2. src/lib/ mirrors include/remapfs/: every source has a header of the same name and folder (or,
   for one class split by concern, X_part.cpp beside X.hpp), and no header sits outside a folder.
3. No source or header over 420 lines ("about 400").
Prints every violation; exit 1 if there is one.
"""

import os
import re
import sys

FLOORS = ["core", "sys", "block", "db", "remap", "health", "control", "instance"]
MAX_LINES = 420
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def files_under(*parts):
    base = os.path.join(ROOT, *parts)
    for dp, _, fns in os.walk(base):
        for fn in sorted(fns):
            if fn.endswith((".hpp", ".cpp", ".h")):
                yield os.path.join(dp, fn)


def rel(p):
    return os.path.relpath(p, ROOT)


def main():
    problems = []
    lib_dirs = (("include", "remapfs"), ("src", "lib"))
    for parts in lib_dirs:
        base = os.path.join(ROOT, *parts)
        for path in files_under(*parts):
            inner = os.path.relpath(path, base).split(os.sep)
            if len(inner) < 2:
                problems.append(f"{rel(path)}: outside a folder (one of {', '.join(FLOORS)})")
                continue
            folder = inner[0]
            if folder not in FLOORS:
                problems.append(f"{rel(path)}: folder '{folder}' is not a floor ({', '.join(FLOORS)})")
                continue
            mine = FLOORS.index(folder)
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    if inc.startswith(("fuse/", "daemon/", "ctl/")):
                        problems.append(f"{rel(path)}:{n}: the library includes the program header {inc}")
                        continue
                    if not inc.startswith("remapfs/"):
                        continue
                    bits = inc.split("/")
                    if len(bits) < 3:
                        problems.append(f"{rel(path)}:{n}: {inc} is outside a folder")
                        continue
                    other = bits[1]
                    if other not in FLOORS:
                        problems.append(f"{rel(path)}:{n}: {inc}: '{other}' is not a floor")
                    elif FLOORS.index(other) > mine:
                        problems.append(f"{rel(path)}:{n}: {folder} includes {inc}, a floor above it "
                                        f"({' -> '.join(FLOORS)})")
    for path in files_under("src", "lib"):
        inner = os.path.relpath(path, os.path.join(ROOT, "src", "lib"))
        stem = os.path.splitext(inner)[0]
        candidates = [stem] + [stem[:i] for i in range(len(stem)) if stem[i] == "_"]
        if path.endswith(".cpp") and not any(
                os.path.exists(os.path.join(ROOT, "include", "remapfs", c + ".hpp")) for c in candidates):
            problems.append(f"{rel(path)}: no header include/remapfs/{os.path.splitext(inner)[0]}.hpp beside it")
    for top in ("include", "src", "tests", "bench"):
        for path in files_under(top):
            with open(path, encoding="utf-8", errors="replace") as f:
                n = sum(1 for _ in f)
            if n > MAX_LINES:
                problems.append(f"{rel(path)}: {n} lines (at most {MAX_LINES}: split it by what it does)")
    for p in problems:
        print(p)
    print(f"layout: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
