#include "fuse/ops.hpp"

namespace remapfs::fuse_op {

void init(void*, fuse_conn_info* conn) {
    // Writeback caching would acknowledge writes before they reach the remap layer, and a loop
    // device on top already caches: keep it off. Splice is off because every sector's outcome
    // must be seen by the remap layer (a failed spliced transfer hides which sector failed).
    conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    // Lets the kernel keep several O_DIRECT requests (loop --direct-io=on) in flight at once.
    if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
}

}  // namespace remapfs::fuse_op
