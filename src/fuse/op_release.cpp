#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <fcntl.h>

namespace remapfs::fuse_op {

// The only per-open state is which page-cache mode open() chose (fi->fh).
void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
    if (ino == kImageIno) fs(req).handles.release(fi->fh != 0, (fi->flags & O_ACCMODE) != O_RDONLY);
    reply_err(req, 0);
}

}  // namespace remapfs::fuse_op
