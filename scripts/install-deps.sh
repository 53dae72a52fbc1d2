#!/bin/bash
# Debian 12 packages remapfs needs to build, test and demonstrate itself. Run as root.
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    g++ meson ninja-build pkg-config cmake \
    libfuse3-dev liburing-dev fuse3 libsqlite3-dev sqlite3 libfmt-dev libboost-program-options-dev \
    doctest-dev nlohmann-json3-dev \
    python3 e2fsprogs util-linux fdisk fio attr nbdkit libnbd-bin >/dev/null
