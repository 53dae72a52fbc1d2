#include "remapfs/sys/io.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

namespace remapfs::sys {

namespace {

// Loops until `len` bytes are done: short transfers continue, EINTR retries, 0 bytes is EIO
// (the backing never shrinks under us).
template <typename Op>
Result<void> transfer_full(Op op, ByteCount len, ByteOffset off) {
    std::uint64_t done = 0;
    while (done < len.v) {
        ssize_t n = op(done, len.v - done, static_cast<off_t>(off.v + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return last_errno();
        }
        if (n == 0) return Errno{EIO};
        done += static_cast<std::uint64_t>(n);
    }
    return ok();
}

}  // namespace

Result<void> pread_full(int fd, void* buf, ByteCount len, ByteOffset off) {
    auto* p = static_cast<char*>(buf);
    return transfer_full([&](std::uint64_t at, std::uint64_t n, off_t o) { return ::pread(fd, p + at, n, o); }, len, off);
}

Result<void> pwrite_full(int fd, const void* buf, ByteCount len, ByteOffset off) {
    const auto* p = static_cast<const char*>(buf);
    return transfer_full([&](std::uint64_t at, std::uint64_t n, off_t o) { return ::pwrite(fd, p + at, n, o); }, len,
                         off);
}

Result<void> fdatasync(int fd) {
    if (::fdatasync(fd) != 0) return last_errno();
    return ok();
}

Result<void> punch_hole(int fd, ByteOffset off, ByteCount len) {
    if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off.v),
                    static_cast<off_t>(len.v)) != 0)
        return last_errno();
    return ok();
}

}  // namespace remapfs::sys
