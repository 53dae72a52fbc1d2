#include "fuse/ops.hpp"
#include "fuse/reply.hpp"
#include "fuse/transport/worker_buffer.hpp"
#include "remapfs/core/log.hpp"

namespace remapfs::fuse_op {

void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
    guarded(req, "read", [&] {
        if (ino != kImageIno) return reply_err(req, EISDIR);
        block::BlockLayer& image = fs(req).instance.image();
        const std::uint64_t end = image.size().v;
        if (off < 0) return reply_err(req, EINVAL);
        if (static_cast<std::uint64_t>(off) >= end || size == 0) return (void)fuse_reply_buf(req, nullptr, 0);
        const size_t len = static_cast<size_t>(std::min<std::uint64_t>(size, end - static_cast<std::uint64_t>(off)));
        // The data goes straight into the buffer the reply is sent from, the one the worker's
        // requests arrive in. Every op runs on a worker, and its buffer holds the largest read
        // the kernel sends (max_pages), so there is no other path.
        std::byte* buf = worker_buffer(len);
        if (!buf) {
            log::error("read of {} bytes at {}: no worker buffer holds it", len, off);
            return reply_err(req, EIO);
        }
        auto r = image.pread({buf, len}, ByteOffset{static_cast<std::uint64_t>(off)});
        if (!r) return reply_err(req, r.error());
        fuse_reply_buf(req, reinterpret_cast<const char*>(buf), len);
    });
}

}  // namespace remapfs::fuse_op
