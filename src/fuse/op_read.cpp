#include "fuse/ops.hpp"
#include "fuse/reply.hpp"
#include "fuse/session_loop.hpp"
#include "fuse/uring_transport.hpp"
#include "remapfs/sys/io_buffer.hpp"

namespace remapfs::fuse_op {
namespace {

// Outside both transports' workers (the single-threaded loop of -s), reads go through the
// thread's own buffer (sys/io_buffer.hpp: O_DIRECT reads straight into it).
std::byte* read_buffer(size_t len) {
    thread_local sys::IoBuffer buffer;
    return buffer.reserve(len);
}

}  // namespace

void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
    guarded(req, "read", [&] {
        if (ino != kImageIno) return reply_err(req, EISDIR);
        block::BlockLayer& image = fs(req).instance.image();
        const std::uint64_t end = image.size().v;
        if (off < 0) return reply_err(req, EINVAL);
        if (static_cast<std::uint64_t>(off) >= end || size == 0) return (void)fuse_reply_buf(req, nullptr, 0);
        const size_t len = static_cast<size_t>(std::min<std::uint64_t>(size, end - static_cast<std::uint64_t>(off)));
        // On a worker the data goes straight into the buffer the reply is sent from, the one
        // its requests arrive in: one huge page per worker, whatever it serves.
        std::byte* buf = ring_reply_buffer(len);
        if (!buf) buf = session_reply_buffer(len);
        if (!buf) buf = read_buffer(len);
        if (!buf) return reply_err(req, ENOMEM);
        auto r = image.pread({buf, len}, ByteOffset{static_cast<std::uint64_t>(off)});
        if (!r) return reply_err(req, r.error());
        fuse_reply_buf(req, reinterpret_cast<const char*>(buf), len);
    });
}

}  // namespace remapfs::fuse_op
