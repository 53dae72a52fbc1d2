#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <fcntl.h>
#include <linux/falloc.h>

namespace remapfs::fuse_op {

// The loop driver turns discard into PUNCH_HOLE and write-zeroes into ZERO_RANGE; both end in
// the remap layer's discard (reads as zeros afterwards, remapped sectors zeroed in their slot).
// Plain allocation inside the image is a no-op: every byte already exists.
void fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info*) noexcept {
    guarded(req, "fallocate", [&] {
        if (ino != kImageIno) return reply_err(req, EISDIR);
        FsContext& c = fs(req);
        const std::uint64_t end = c.instance.geometry().image_bytes().v;
        if (off < 0 || len <= 0) return reply_err(req, EINVAL);
        const std::uint64_t first = static_cast<std::uint64_t>(off);
        const std::uint64_t last = first + static_cast<std::uint64_t>(len);
        const int zeroing = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
        if (mode & ~(zeroing | FALLOC_FL_KEEP_SIZE)) return reply_err(req, EOPNOTSUPP);
        if (!(mode & zeroing)) return reply_err(req, last <= end ? 0 : EFBIG);
        if (c.read_only) return reply_err(req, EROFS);
        if (first >= end) return reply_err(req, 0);
        reply_result(req, c.instance.image().discard(ByteOffset{first}, ByteCount{std::min(last, end) - first}));
    });
}

}  // namespace remapfs::fuse_op
