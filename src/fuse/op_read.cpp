#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <cstdlib>

namespace remapfs::fuse_op {
namespace {

// Page-aligned, so an O_DIRECT backing reads straight into it without a bounce copy.
std::byte* read_buffer(size_t len) {
    struct Buffer {
        std::byte* p = nullptr;
        size_t cap = 0;
        ~Buffer() { std::free(p); }
    };
    thread_local Buffer b;
    if (b.cap < len) {
        std::free(b.p);
        b.cap = (len + 4095) / 4096 * 4096;
        b.p = static_cast<std::byte*>(std::aligned_alloc(4096, b.cap));
        if (!b.p) b.cap = 0;
    }
    return b.p;
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
        // Also on a ring worker: reading straight into its reply buffer saved a copy but made the
        // backing's 1 MiB reads slower, sr1m through a direct-io loop 0.7x (bench/README.md).
        std::byte* buf = read_buffer(len);
        if (!buf) return reply_err(req, ENOMEM);
        auto r = image.pread({buf, len}, ByteOffset{static_cast<std::uint64_t>(off)});
        if (!r) return reply_err(req, r.error());
        fuse_reply_buf(req, reinterpret_cast<const char*>(buf), len);
    });
}

}  // namespace remapfs::fuse_op
