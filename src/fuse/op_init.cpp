#include "fuse/ops.hpp"
#include "fuse/transport/session_loop.hpp"

#include <algorithm>

namespace remapfs::fuse_op {

void init(void* userdata, fuse_conn_info* conn) {
    FsContext& c = *static_cast<FsContext*>(userdata);
    // Splice is off because every sector's outcome must be seen by the remap layer (a failed
    // spliced transfer hides which sector failed).
    conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    // The session loop's receive buffers hold writes up to this size (and no larger).
    conn->max_write = std::min<unsigned>(conn->max_write, kMaxWrite);
    // Writeback caching: a buffered write (loop --direct-io=off, cp) is acknowledged from the
    // page cache, as on any file, and reaches the remap layer when the kernel writes it back;
    // fsync/close wait for it and return any error. Every write we receive is still remapped
    // and committed before we answer it. O_DIRECT openers bypass the cache. 3x the 4k random
    // write rate through a buffered loop device (bench/README.md).
    if (c.writeback_cache && !c.read_only && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    // Lets the kernel keep several O_DIRECT requests (loop --direct-io=on) in flight at once.
    if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
    // Those requests, and writeback, are "background" requests: the kernel sends at most
    // max_background of them at once (default 12) and queues the rest. With fewer than the
    // worker threads in flight, a QD16 job left threads idle while requests waited, and each
    // finished thread slept before its next request. Twice the threads keeps one queued
    // behind every busy thread (bench/README.md, "Changes measured").
    conn->max_background = 2 * c.threads;
    conn->congestion_threshold = conn->max_background * 3 / 4;
    // libfuse refuses the INIT if we want what the kernel cannot do.
    c.initialised = (conn->want & ~conn->capable) == 0;
}

}  // namespace remapfs::fuse_op
