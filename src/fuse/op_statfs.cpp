#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <sys/statvfs.h>

namespace remapfs::fuse_op {

// One file that fills the filesystem: df shows the image size, fully used.
void statfs(fuse_req_t req, fuse_ino_t) noexcept {
    guarded(req, "statfs", [&] {
        const Geometry& g = fs(req).instance.geometry();
        struct statvfs st {};
        st.f_bsize = st.f_frsize = g.sector_size.bytes();
        st.f_blocks = g.image_sectors.v;
        st.f_files = 1;
        st.f_namemax = 255;
        fuse_reply_statfs(req, &st);
    });
}

}  // namespace remapfs::fuse_op
