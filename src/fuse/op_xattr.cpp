#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <cstring>
#include <string>

namespace remapfs::fuse_op {
namespace {

// How remapctl --mount DIR finds the instance behind a mountpoint.
constexpr const char* kDbAttr = "user.remapfs.db";
constexpr const char* kUuidAttr = "user.remapfs.uuid";

void reply_value(fuse_req_t req, const std::string& v, size_t size) {
    if (size == 0) return (void)fuse_reply_xattr(req, v.size());
    if (size < v.size()) return reply_err(req, ERANGE);
    fuse_reply_buf(req, v.data(), v.size());
}

}  // namespace

void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
    guarded(req, "getxattr", [&] {
        if (ino != kRootIno && ino != kImageIno) return reply_err(req, ENOENT);
        FsContext& c = fs(req);
        if (std::strcmp(name, kDbAttr) == 0) return reply_value(req, c.instance.db_path(), size);
        if (std::strcmp(name, kUuidAttr) == 0) return reply_value(req, c.instance.identity().uuid, size);
        reply_err(req, ENODATA);
    });
}

void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
    guarded(req, "listxattr", [&] {
        if (ino != kRootIno && ino != kImageIno) return reply_err(req, ENOENT);
        std::string names = std::string(kDbAttr) + '\0' + kUuidAttr + '\0';
        reply_value(req, names, size);
    });
}

}  // namespace remapfs::fuse_op
