#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

namespace remapfs::fuse_op {

// Makes every acknowledged write durable on the backing and the spare. Remaps are already
// durable: each is committed to SQLite (synchronous=FULL) before it is published.
void fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) noexcept {
    guarded(req, "fsync", [&] {
        if (ino != kImageIno) return reply_err(req, 0);
        reply_result(req, fs(req).instance.image().flush());
    });
}

void fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) noexcept { reply_err(req, 0); }

}  // namespace remapfs::fuse_op
