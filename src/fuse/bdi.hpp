#pragma once
// Kernel knobs of the mount's backing_dev_info (/sys/class/bdi/MAJ:MIN).

#include <cstdint>
#include <string>

namespace remapfs::fuse_op {

struct BdiTuning {
    // FUSE caps readahead at 128 KiB by default; a loop device with direct-io off reads the
    // image through it, so sequential reads come to us in 128 KiB pieces unless it is raised.
    std::uint32_t readahead_kib = 1024;
    // The share (percent) of the kernel's dirty page limit the image's buffered writers may hold
    // before they are throttled to our writeback rate. FUSE's default is 1 %, tight enough that a
    // buffered loop device's 4k random writes stall on it; the kernel's strict per-device limit
    // stays on, so a stuck daemon still pins only this share and other devices write on.
    std::uint32_t max_dirty_percent = 5;
};

// The kernel resets readahead when INIT is answered and copies it into a file at open, so this
// runs on the first open. Failures are logged and ignored: the mount works either way.
void tune_bdi(const std::string& mountpoint, const BdiTuning& t);

}  // namespace remapfs::fuse_op
