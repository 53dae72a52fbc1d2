#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

namespace remapfs::fuse_op {

// The image has a fixed size and fixed ownership. Time updates are accepted and ignored (tools
// like cp -p and touch set them); a truncate to the current size is a no-op; anything else
// would change what a block device cannot change, so it is refused.
void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) noexcept {
    guarded(req, "setattr", [&] {
        FsContext& c = fs(req);
        if (ino != kRootIno && ino != kImageIno) return reply_err(req, ENOENT);
        if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) return reply_err(req, EPERM);
        if (to_set & FUSE_SET_ATTR_SIZE) {
            if (ino != kImageIno) return reply_err(req, EISDIR);
            if (c.read_only) return reply_err(req, EROFS);
            if (static_cast<std::uint64_t>(attr->st_size) != c.instance.geometry().image_bytes().v)
                return reply_err(req, EPERM);
        }
        struct stat st = c.attr(ino);
        fuse_reply_attr(req, &st, kAttrTimeout);
    });
}

}  // namespace remapfs::fuse_op
