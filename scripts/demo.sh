#!/bin/bash
# The main job, end to end: install dependencies, build, mount an image with mount.remapfs,
# attach it with losetup, put ext4 on it, write a file, remap a sector that holds the file's
# data on the live mount, show the remap in SQLite and read the file back intact.
# Cleans up everything it made (mounts, loop device, daemon, files). Run as root.
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (FUSE mount, losetup, mkfs)"; exit 1; }
scripts/install-deps.sh
scripts/build.sh
BIN=$PWD/build/src

work=$(mktemp -d /var/tmp/remapfs-demo.XXXXXX)
loop="" ; fsmnt=$work/fs ; mnt=$work/mnt
cleanup() {
    set +e
    mountpoint -q "$fsmnt" && umount "$fsmnt"
    [ -n "$loop" ] && losetup -d "$loop"
    mountpoint -q "$mnt" && fusermount3 -u "$mnt"
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$mnt" "$fsmnt" "$work/sbin"
ln -s "$BIN/remapfs" "$work/sbin/mount.remapfs"   # what `meson install` puts in /usr/sbin
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a 256 MiB backing file, served by remapfs (spare area: the last 1% of it)"
truncate -s 256M "$work/backing.img"
db=$work/backing.db
(set -x; "$work/sbin/mount.remapfs" "$work/backing.img" "$mnt" -o "db=$db")
ls -l "$mnt"

step "losetup --direct-io=on, mkfs.ext4, mount, write a file"
loop=$(losetup --direct-io=on --show -f "$mnt/disk.img")
mkfs.ext4 -q -F "$loop"
mount "$loop" "$fsmnt"
head -c 8M /dev/urandom > "$work/data"
cp "$work/data" "$fsmnt/data"
sync
sha256sum "$fsmnt/data" | sed 's/ .*/  (sha256 of the file)/'

step "remap a sector that holds the file's data, live"
block=$(debugfs -R "blocks /data" "$loop" 2>/dev/null | awk '{print $10}')
(set -x; "$BIN/remapctl" --mount "$mnt" remap "$block")
"$BIN/remapctl" --mount "$mnt" status

step "the remap table, read with sqlite3"
(set -x; sqlite3 -header -column "$db" "select lba, spare_slot, state, reason, created_at from remap_list")

step "read the file back after dropping caches"
echo 3 > /proc/sys/vm/drop_caches
cmp "$work/data" "$fsmnt/data" && echo "file intact: its sector $block is now served from the spare area"
umount "$fsmnt"
e2fsck -fn "$loop" >/dev/null && echo "e2fsck -fn: clean"

step "the background scanner reads the whole surface (paced while the disk is busy); its history is plain SQL"
"$BIN/remapctl" --mount "$mnt" scan
for _ in $(seq 120); do   # the image is idle now: the pass finishes at full speed
    "$BIN/remapctl" --mount "$mnt" scan --json | grep -q '"total_scans": [1-9]' && break
    sleep 0.5
done
sleep 1.5                 # the history writer commits about once a second
"$BIN/remapctl" --mount "$mnt" scan
(set -x; sqlite3 -header -column "$db" "select pass, started, seconds, coverage_pct, errors, slow from scan_history")
