#include "fuse/ops.hpp"

namespace remapfs::fuse_op {

// The only place the handlers are wired (mergerfs _get_fuse_operations). Ops left out get
// libfuse's default reply (ENOSYS), which is right for a fixed single-file tree: no create,
// mkdir, rename, link or setxattr.
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
        o.getxattr = getxattr;
        o.listxattr = listxattr;
        return o;
    }();
    return ops;
}

}  // namespace remapfs::fuse_op
