# Sourced by perf-report.sh and ab.sh: the bench.sh EXTRA_MOUNT_CMD that mounts remapfs.
#
# remapfs_mount_cmd BIN OPTS SRC_DIR SPARE_SIZE
#   BIN       the remapfs binary
#   OPTS      extra -o options (may be empty)
#   SRC_DIR   a directory with remapfs.db and remapfs.spare to start from (a prepared remap
#             table), or empty for a fresh database and a sparse SPARE_SIZE spare
# Every mount gets its own copy in {WORK}: bench.sh reuses its prefilled backing, and a
# database is bound to the spare label it wrote. A separate spare keeps disk.img as large as
# the backing (bench.sh runs fio with --size=<backing size>).
remapfs_mount_cmd() {
    local bin=$1 opts="db={WORK}/remapfs.db,spare={WORK}/remapfs.spare${2:+,$2}" src=$3 spare_size=$4
    local c="rm -f {WORK}/remapfs.db {WORK}/remapfs.db-wal {WORK}/remapfs.db-shm {WORK}/remapfs.spare"
    if [[ -n $src ]]; then
        c+=" && cp $src/remapfs.db {WORK}/remapfs.db && cp --sparse=always $src/remapfs.spare {WORK}/remapfs.spare"
    else
        c+=" && truncate -s $spare_size {WORK}/remapfs.spare"
    fi
    echo "$c && exec $bin -f -o $opts {BACKING} {MNT}"
}
