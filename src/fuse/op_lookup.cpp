#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <cstring>

namespace remapfs::fuse_op {

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
    guarded(req, "lookup", [&] {
        FsContext& c = fs(req);
        if (parent != kRootIno || c.image_name != name) return reply_err(req, ENOENT);
        fuse_entry_param e{};
        e.ino = kImageIno;
        e.attr = c.attr(kImageIno);
        e.attr_timeout = kAttrTimeout;
        e.entry_timeout = kAttrTimeout;
        fuse_reply_entry(req, &e);
    });
}

}  // namespace remapfs::fuse_op
