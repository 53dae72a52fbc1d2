#!/bin/bash
# Configure (once) and build into ./build from Debian packages only (wraps are fallbacks).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build --wrap-mode=nodownload >/dev/null
ninja -C build >/dev/null
