#include "fuse/ops.hpp"
#include "fuse/reply.hpp"

#include <string>
#include <vector>

namespace remapfs::fuse_op {

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
    guarded(req, "opendir", [&] {
        if (ino != kRootIno) return reply_err(req, ENOTDIR);
        fuse_reply_open(req, fi);
    });
}

// Three entries: ".", ".." and the image. Offsets are entry indexes.
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
    guarded(req, "readdir", [&] {
        if (ino != kRootIno) return reply_err(req, ENOTDIR);
        FsContext& c = fs(req);
        struct Item {
            const char* name;
            fuse_ino_t ino;
            mode_t mode;
        };
        const Item items[] = {{".", kRootIno, S_IFDIR}, {"..", kRootIno, S_IFDIR}, {c.image_name.c_str(), kImageIno, S_IFREG}};
        std::vector<char> buf(size);
        size_t used = 0;
        for (off_t i = off; i < static_cast<off_t>(std::size(items)); ++i) {
            struct stat st {};
            st.st_ino = items[i].ino;
            st.st_mode = items[i].mode;
            size_t need = fuse_add_direntry(req, buf.data() + used, size - used, items[i].name, &st, i + 1);
            if (need > size - used) break;
            used += need;
        }
        fuse_reply_buf(req, buf.data(), used);
    });
}

}  // namespace remapfs::fuse_op
