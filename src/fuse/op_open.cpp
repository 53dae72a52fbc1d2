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
        // O_DIRECT opens (losetup --direct-io=on) are served by the kernel's FUSE direct I/O
        // path; every request reaches us unaligned or not, and the backing layer bounces it
        // into an aligned buffer when the backing itself is O_DIRECT. Only we change the image,
        // so buffered openers may keep their page cache across opens.
        fi->keep_cache = 1;
        FsContext& c = fs(req);
        std::call_once(c.readahead_set, [&] { set_readahead(c.mountpoint, c.readahead_kib); });
        fuse_reply_open(req, fi);
    });
}

}  // namespace remapfs::fuse_op
