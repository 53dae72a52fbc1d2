#pragma once
// Kernel knobs of the mount's backing_dev_info (/sys/class/bdi/MAJ:MIN).

#include <cstdint>
#include <string>

namespace remapfs::fuse_op {

struct BdiTuning {
    // FUSE caps readahead at 128 KiB by default; a loop device with direct-io off reads the
    // image through it one request at a time, so the readahead window is all the parallelism
    // our reads get. 1 MiB doubled sequential reads through a buffered loop; 4 MiB gave another
    // third (5 of 5 interleaved pairs, bench/README.md); 16 MiB was no better than 4.
    std::uint32_t readahead_kib = 4096;
    // The share (percent) of the kernel's dirty page limit the image's buffered writers may hold
    // before they are throttled to our writeback rate. FUSE's default is 1 %, tight enough that a
    // buffered loop device's 4k random writes stall on it; the kernel's strict per-device limit
    // stays on, so a stuck daemon still pins only this share and other devices write on.
    // Not more: whatever is dirty is written back later, while the next reader or writer runs
    // (sync(2) does not wait for FUSE on 6.18, so it is also data a sync did not make durable),
    // and random pages go back one request each. bench.sh's job order through a buffered loop
    // (4k random reads and writes, then 1M reads, then 1M writes, one mount), interleaved pairs
    // against 5 %: 3 % wrote 1 MiB 1.59 × as fast and read it 1.13 ×, 4k QD16 writes 0.88 ×
    // (still above every peer); 2 % 1.62 / 1.49 / 0.86 but 4k QD1 writes 0.80 ×; 20 % had
    // doubled 4k writes and halved the 1M jobs after them. On a fresh mount 3 % and 5 % write
    // 1 MiB alike.
    std::uint32_t max_dirty_percent = 3;
};

// The kernel resets readahead when INIT is answered and copies it into a file at open, so this
// runs on the first open. Failures are logged and ignored: the mount works either way.
void tune_bdi(const std::string& mountpoint, const BdiTuning& t);

}  // namespace remapfs::fuse_op
