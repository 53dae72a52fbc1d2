#include "remapfs/sys/storage.hpp"

#include "remapfs/core/log.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace remapfs::sys {

using std::runtime_error;

std::string canonical(const std::string& p) {
    char buf[PATH_MAX];
    if (!::realpath(p.c_str(), buf)) throw runtime_error(fmt::format("{}: {}", p, std::strerror(errno)));
    return buf;
}

OpenedFile open_storage(const std::string& path, const char* what, bool read_only, BackingIo io) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw runtime_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        throw runtime_error(fmt::format("{} {} is not a regular file or block device", what, path));
    OpenedFile f;
    f.block = S_ISBLK(st.st_mode);
    const int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (f.block ? O_EXCL : 0);
    int fd = -1;
    if (io != BackingIo::buffered) {
        fd = ::open(path.c_str(), flags | O_DIRECT);
        if (fd < 0 && errno == EINVAL)
            throw runtime_error(fmt::format(
                "{} {} refuses O_DIRECT (its filesystem does not support it); through the page cache a failed "
                "write surfaces only at the next flush, naming no sector, so it cannot be remapped: give "
                "-o backing_io=buffered to use it anyway", what, path));
        if (fd < 0) throw runtime_error(fmt::format("cannot open {} {}: {}", what, path, std::strerror(errno)));
    } else {
        fd = ::open(path.c_str(), flags);
        if (fd < 0) throw runtime_error(fmt::format("cannot open {} {}: {}", what, path, std::strerror(errno)));
        log::warning("{} {}: buffered I/O (backing_io=buffered): write errors surface at flush without naming a "
                     "sector and cannot be remapped; writes to spare slots still report their own errors",
                     what, path);
    }
    f.direct = (::fcntl(fd, F_GETFL) & O_DIRECT) != 0;
    f.fd = UniqueFd(fd);
    if (::flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0)
        throw runtime_error(fmt::format("{} {} is in use by another remapfs instance", what, path));
    if (f.block) {
        if (::ioctl(fd, BLKGETSIZE64, &f.bytes) != 0)
            throw runtime_error(fmt::format("{} {}: cannot read its size: {}", what, path, std::strerror(errno)));
        int lbs = 512;
        if (::ioctl(fd, BLKSSZGET, &lbs) == 0) f.logical_block = static_cast<std::uint32_t>(lbs);
    } else {
        f.bytes = static_cast<std::uint64_t>(st.st_size);
    }
    return f;
}

}  // namespace remapfs::sys
