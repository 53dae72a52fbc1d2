#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

namespace remapfs::fuse_op {

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
    guarded(req, "getattr", [&] {
        if (ino != kRootIno && ino != kImageIno) return reply_err(req, ENOENT);
        struct stat st = fs(req).attr(ino);
        fuse_reply_attr(req, &st, kAttrTimeout);
    });
}

}  // namespace remapfs::fuse_op
