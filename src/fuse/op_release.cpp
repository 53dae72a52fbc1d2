#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

namespace remapfs::fuse_op {

// No per-open state: the image is one shared block stack.
void release(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept { reply_err(req, 0); }

}  // namespace remapfs::fuse_op
