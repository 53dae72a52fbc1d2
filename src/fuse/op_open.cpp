#include "fuse/bdi.hpp"
#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <fcntl.h>

namespace remapfs::fuse_op {

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
    guarded(req, "open", [&] {
        if (ino == kRootIno) return reply_err(req, EISDIR);
        if (ino != kImageIno) return reply_err(req, ENOENT);
        if ((fi->flags & O_ACCMODE) != O_RDONLY && fs(req).read_only) return reply_err(req, EROFS);
        // Requests reach us aligned or not; the backing layer bounces unaligned ones into an
        // aligned buffer when the backing itself is O_DIRECT. Only we change the image, so
        // cached openers keep their pages across opens unless a bypassing writer came between
        // (handle_modes.hpp).
        FsContext& c = fs(req);
        std::call_once(c.bdi_tuned, [&] { tune_bdi(c.mountpoint, c.bdi); });
        // Nothing may throw between counting the handle and replying.
        const HandleModes::Decision d = c.handles.open((fi->flags & O_DIRECT) != 0);
        fi->direct_io = d.direct_io;
        fi->keep_cache = d.keep_cache;
        fi->fh = d.direct_io;  // release() needs to know which count to drop
        if (fuse_reply_open(req, fi) != 0) c.handles.release(d.direct_io, false);  // interrupted: no release follows
    });
}

}  // namespace remapfs::fuse_op
