#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

namespace remapfs::fuse_op {

// close(2): nothing is buffered here (writes are written through before they are
// acknowledged), so there is nothing to report; durability is fsync's job.
void flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept { reply_err(req, 0); }

}  // namespace remapfs::fuse_op
