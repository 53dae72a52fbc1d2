#pragma once
// Kernel knobs of the mount's backing_dev_info (/sys/class/bdi/MAJ:MIN).

#include <cstdint>
#include <string>

namespace remapfs::fuse_op {

struct BdiTuning {
    // FUSE caps readahead at 128 KiB by default; a loop device with direct-io off reads the
    // image through it one request at a time, so the readahead window is all the parallelism
    // our reads get (4 MiB: bench/README.md, "Changes measured").
    std::uint32_t readahead_kib = 4096;
    // The share (percent) of the kernel's dirty page limit the image's buffered writers may hold
    // before they are throttled to our writeback rate. FUSE's default is 1 %, tight enough that a
    // buffered loop device's 4k random writes stall on it; the kernel's strict per-device limit
    // stays on, so a stuck daemon still pins only this share and other devices write on.
    // Not more: whatever is dirty is written back later, while the next reader or writer runs
    // (sync(2) does not wait for FUSE on 6.18, so it is also data a sync did not make durable),
    // and random pages go back one request each. 3 % is the measured trade (bench/README.md).
    std::uint32_t max_dirty_percent = 3;
};

// The kernel resets readahead when INIT is answered and copies it into a file at open, so this
// runs on the first open. Failures are logged and ignored: the mount works either way.
void tune_bdi(const std::string& mountpoint, const BdiTuning& t);

}  // namespace remapfs::fuse_op
