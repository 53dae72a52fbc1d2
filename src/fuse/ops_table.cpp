#include "fuse/ops.hpp"

namespace remapfs::fuse_op {

// The only place the handlers are wired (mergerfs _get_fuse_operations). Ops left out get
// libfuse's default reply (ENOSYS), which is right for a fixed single-file tree: no create,
// mkdir, rename, link or setxattr.
//
// No getxattr either, on purpose: while it answers, the kernel asks for security.capability
// before every write to the image (file_remove_privs), one synchronous round trip per write
// — a buffered loop device's 4k writes ran at half speed. The first ENOSYS makes the kernel
// stop asking for good. remapctl --mount finds the daemon through its control socket.
const fuse_lowlevel_ops& operations() {
    static const fuse_lowlevel_ops ops = [] {
        fuse_lowlevel_ops o{};
        o.init = init;
        o.lookup = lookup;
        o.getattr = getattr;
        o.setattr = setattr;
        o.opendir = opendir;
        o.readdir = readdir;
        o.open = open;
        o.read = read;
        o.write = write;
        o.flush = flush;
        o.release = release;
        o.fsync = fsync;
        o.fsyncdir = fsyncdir;
        o.statfs = statfs;
        o.fallocate = fallocate;
        return o;
    }();
    return ops;
}

}  // namespace remapfs::fuse_op
