#pragma once
// Thin syscall wrappers returning Result instead of -1/errno (mergerfs fs_*.hpp idea).
// Full-length loops: a short read/write is retried until done or an error occurs.

#include "remapfs/result.hpp"
#include "remapfs/units.hpp"

#include <cstddef>

namespace remapfs::sys {

// Reads exactly len bytes; reading past EOF is EIO (the backing never shrinks under us).
Result<void> pread_full(int fd, void* buf, ByteCount len, ByteOffset off);
Result<void> pwrite_full(int fd, const void* buf, ByteCount len, ByteOffset off);
Result<void> fdatasync(int fd);
Result<void> punch_hole(int fd, ByteOffset off, ByteCount len);

}  // namespace remapfs::sys
