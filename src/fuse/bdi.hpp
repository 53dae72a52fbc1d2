#pragma once
// Kernel knobs of the mount's backing_dev_info (/sys/class/bdi/MAJ:MIN).

#include <cstdint>
#include <string>

namespace remapfs::fuse_op {

// FUSE caps readahead at 128 KiB by default; a loop device with direct-io off reads the image
// through it, so sequential reads come to us in 128 KiB pieces unless it is raised. The kernel
// resets the knob when INIT is answered and copies it into a file at open, so this runs on the
// first open. Failure is logged and ignored: the mount works either way.
void set_readahead(const std::string& mountpoint, std::uint32_t kib);

}  // namespace remapfs::fuse_op
