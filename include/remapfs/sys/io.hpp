#pragma once
// Thin syscall wrappers returning Result instead of -1/errno (mergerfs fs_*.hpp idea).
// Full-length loops: a short read/write is retried until done or an error occurs.

#include "remapfs/core/result.hpp"
#include "remapfs/core/units.hpp"

#include <sys/uio.h>

#include <cstddef>
#include <span>

namespace remapfs::sys {

// Reads exactly len bytes; reading past EOF is EIO (the backing never shrinks under us).
Result<void> pread_full(int fd, void* buf, ByteCount len, ByteOffset off);
Result<void> pwrite_full(int fd, const void* buf, ByteCount len, ByteOffset off);
// The same, each piece with RWF_DSYNC: durable when it returns, and an error is this write's.
Result<void> pwrite_dsync(int fd, const void* buf, ByteCount len, ByteOffset off);
Result<void> fdatasync(int fd);
// Sends all of `data` on a connected socket; a peer that has gone is EPIPE, not SIGPIPE.
Result<void> send_full(int sock, std::span<const char> data);

// One transfer of a batch for run_concurrently(): `len` bytes at `off` of fd, from or into buf,
// or, when `segments` is not empty, scattered over those buffers in order (preadv/pwritev;
// `len` is then their total and buf is unused).
struct Transfer {
    int fd = -1;
    bool write = false;
    void* buf = nullptr;
    ByteCount len;
    ByteOffset off;
    Result<void> result = ok();
    std::span<const iovec> segments = {};
    bool dsync = false;  // writes: RWF_DSYNC
};
// Runs every transfer with all of them in flight at once (Linux native AIO, which is truly
// asynchronous for O_DIRECT fds) and waits for all; each gets its own result. Falls back to one
// after another where AIO is unavailable. Buffers must suit the fds (aligned for O_DIRECT).
void run_concurrently(std::span<Transfer> transfers);
Result<void> punch_hole(int fd, ByteOffset off, ByteCount len);

}  // namespace remapfs::sys
