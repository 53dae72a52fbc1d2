#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <fcntl.h>

namespace remapfs::fuse_op {

void write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, fuse_file_info* fi) noexcept {
    guarded(req, "write", [&] {
        if (ino != kImageIno) return reply_err(req, EISDIR);
        FsContext& c = fs(req);
        if (c.read_only) return reply_err(req, EROFS);
        block::BlockLayer& image = c.instance.image();
        const std::uint64_t end = image.size().v;
        if (off < 0) return reply_err(req, EINVAL);
        // The image cannot grow: a write that starts at or past its end fails; one that
        // crosses it is cut short, as on a block device.
        if (size == 0) return (void)fuse_reply_write(req, 0);
        if (static_cast<std::uint64_t>(off) >= end) return reply_err(req, EFBIG);
        const size_t len = static_cast<size_t>(std::min<std::uint64_t>(size, end - static_cast<std::uint64_t>(off)));
        auto r = image.pwrite({reinterpret_cast<const std::byte*>(data), len}, ByteOffset{static_cast<std::uint64_t>(off)});
        if (!r) return reply_err(req, r.error());
        // On a bypassing handle (FOPEN_DIRECT_IO) the kernel does not sync after an O_DSYNC or
        // O_SYNC write (or any write on a `sync` mount): it passes the flag and expects us to.
        // Page-cache writeback is not the writer's: its fsync follows on its own.
        const bool dsync = c.sync_writes || (fi && !fi->writepage && (fi->flags & O_DSYNC) != 0);
        if (dsync) {
            if (auto f = image.flush(); !f) return reply_err(req, f.error());
        }
        fuse_reply_write(req, len);
    });
}

}  // namespace remapfs::fuse_op
