#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

namespace remapfs::fuse_op {

// close(2): nothing is buffered here. With the writeback cache the kernel writes the file's
// dirty pages back before sending this and reports their errors itself; durability is fsync's.
void flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) noexcept { reply_err(req, 0); }

}  // namespace remapfs::fuse_op
