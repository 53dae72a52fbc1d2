#include "fuse/context.hpp"

namespace remapfs::fuse_op {

struct stat FsContext::attr(fuse_ino_t ino) const {
    struct stat st {};
    st.st_ino = ino;
    st.st_uid = uid;
    st.st_gid = gid;
    st.st_atim = st.st_mtim = st.st_ctim = mount_time;
    if (ino == kRootIno) {
        st.st_mode = S_IFDIR | dir_mode;
        st.st_nlink = 2;
        return st;
    }
    const std::uint64_t size = instance.geometry().image_bytes().v;
    st.st_mode = S_IFREG | (read_only ? image_mode & 0555 : image_mode);
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(size);
    st.st_blksize = static_cast<blksize_t>(instance.geometry().sector_size.bytes());
    st.st_blocks = static_cast<blkcnt_t>(size / 512);
    return st;
}

}  // namespace remapfs::fuse_op
