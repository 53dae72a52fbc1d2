#!/bin/bash
# Installs dependencies, builds, runs every test (unit + integration) and ends with the plain
# line "N passed, N failed" (CI reads it), after "N skipped". Integration tests need root,
# /dev/fuse and loop devices; without them they are reported as skipped, never as passed.
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh || { echo "dependency install failed"; echo "0 passed, 1 failed"; exit 1; }; fi
scripts/build.sh || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
rm -f build/meson-logs/testlog.json
meson test -C build --print-errorlogs --num-processes 1 "$@"
rc=$?
python3 - build/meson-logs/testlog.json <<'PY'
import json, sys
counts = {"passed": 0, "failed": 0, "skipped": 0}
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)["result"]
        key = {"OK": "passed", "EXPECTEDFAIL": "passed", "SKIP": "skipped"}.get(r, "failed")
        counts[key] += 1
except FileNotFoundError:
    counts["failed"] += 1
print(f'{counts["skipped"]} skipped')
print(f'{counts["passed"]} passed, {counts["failed"]} failed')
PY
exit $rc
