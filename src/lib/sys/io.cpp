#include "remapfs/sys/io.hpp"

#include "remapfs/core/log.hpp"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/falloc.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

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

// A per-thread AIO context, made on first use; glibc has no wrappers for these syscalls.
class AioContext {
public:
    static constexpr unsigned kDepth = 64;  // transfers in flight per thread
    ~AioContext() {
        if (id_) ::syscall(SYS_io_destroy, id_);
    }
    // 0 when the kernel refuses (ENOSYS, aio-max-nr reached): callers go one by one.
    aio_context_t get() {
        if (!id_ && !failed_ && ::syscall(SYS_io_setup, kDepth, &id_) != 0) {
            failed_ = true;
            id_ = 0;
            log::warning("io_setup: {}; backing transfers go one at a time on this thread", std::strerror(errno));
        }
        return id_;
    }

private:
    aio_context_t id_ = 0;
    bool failed_ = false;
};

// The transfer from byte `skip` on (what a short AIO completion left), one call per buffer.
Result<void> transfer_sync(const Transfer& t, std::uint64_t skip = 0) {
    const iovec whole{t.buf, t.len.v};
    const std::span<const iovec> segs = t.segments.empty() ? std::span<const iovec>(&whole, 1) : t.segments;
    std::uint64_t at = 0;  // file position of the current segment, relative to t.off
    for (const iovec& s : segs) {
        const std::uint64_t end = at + s.iov_len;
        if (end > skip) {
            const std::uint64_t from = skip > at ? skip - at : 0;
            auto* p = static_cast<char*>(s.iov_base) + from;
            const ByteCount len{s.iov_len - from};
            const ByteOffset off{t.off.v + at + from};
            REMAPFS_TRY(!t.write ? pread_full(t.fd, p, len, off)
                        : t.dsync ? pwrite_dsync(t.fd, p, len, off)
                                  : pwrite_full(t.fd, p, len, off));
        }
        at = end;
    }
    return ok();
}

// At most kDepth transfers: submit all, then reap all. Nothing returns while a transfer is in
// flight: the buffers belong to the caller.
void run_batch(aio_context_t ctx, std::span<Transfer> ts) {
    std::array<iocb, AioContext::kDepth> cbs{};
    std::array<iocb*, AioContext::kDepth> ptrs{};
    for (std::size_t i = 0; i < ts.size(); ++i) {
        iocb& cb = cbs[i];
        cb.aio_data = i;
        const bool vectored = !ts[i].segments.empty();
        cb.aio_lio_opcode = vectored ? (ts[i].write ? IOCB_CMD_PWRITEV : IOCB_CMD_PREADV)
                                     : (ts[i].write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD);
        cb.aio_fildes = static_cast<std::uint32_t>(ts[i].fd);
        cb.aio_buf = reinterpret_cast<std::uint64_t>(vectored ? static_cast<const void*>(ts[i].segments.data()) : ts[i].buf);
        cb.aio_nbytes = vectored ? ts[i].segments.size() : ts[i].len.v;
        cb.aio_offset = static_cast<std::int64_t>(ts[i].off.v);
        if (ts[i].write && ts[i].dsync) cb.aio_rw_flags = RWF_DSYNC;
        ptrs[i] = &cb;
    }
    std::size_t submitted = 0;
    while (submitted < ts.size()) {
        long n = ::syscall(SYS_io_submit, ctx, static_cast<long>(ts.size() - submitted), ptrs.data() + submitted);
        if (n > 0) {
            submitted += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;  // EAGAIN, or an fd AIO refuses: the rest go synchronously below
    }
    std::array<io_event, AioContext::kDepth> events{};
    std::size_t reaped = 0;
    while (reaped < submitted) {
        long n = ::syscall(SYS_io_getevents, ctx, 1L, static_cast<long>(submitted - reaped), events.data(), nullptr);
        if (n < 0) {
            if (errno != EINTR) {
                log::error("io_getevents: {} (retrying)", std::strerror(errno));
                ::usleep(1000);
            }
            continue;
        }
        for (long k = 0; k < n; ++k) {
            Transfer& t = ts[events[static_cast<std::size_t>(k)].data];
            const std::int64_t res = events[static_cast<std::size_t>(k)].res;
            if (res < 0) t.result = Errno{static_cast<int>(-res)};
            else if (static_cast<std::uint64_t>(res) < t.len.v) t.result = transfer_sync(t, static_cast<std::uint64_t>(res));
            else t.result = ok();
        }
        reaped += static_cast<std::size_t>(n);
    }
    for (std::size_t i = submitted; i < ts.size(); ++i) ts[i].result = transfer_sync(ts[i]);
}

}  // namespace

void run_concurrently(std::span<Transfer> transfers) {
    thread_local AioContext aio;
    // A lone vectored transfer still goes through AIO: one preadv instead of one call per buffer.
    const aio_context_t ctx = transfers.size() > 1 || (transfers.size() == 1 && !transfers[0].segments.empty()) ? aio.get() : 0;
    if (!ctx) {
        for (Transfer& t : transfers) t.result = transfer_sync(t);
        return;
    }
    for (std::size_t at = 0; at < transfers.size(); at += AioContext::kDepth)
        run_batch(ctx, transfers.subspan(at, std::min<std::size_t>(AioContext::kDepth, transfers.size() - at)));
}

Result<void> pread_full(int fd, void* buf, ByteCount len, ByteOffset off) {
    auto* p = static_cast<char*>(buf);
    return transfer_full([&](std::uint64_t at, std::uint64_t n, off_t o) { return ::pread(fd, p + at, n, o); }, len, off);
}

Result<void> pwrite_full(int fd, const void* buf, ByteCount len, ByteOffset off) {
    const auto* p = static_cast<const char*>(buf);
    return transfer_full([&](std::uint64_t at, std::uint64_t n, off_t o) { return ::pwrite(fd, p + at, n, o); }, len,
                         off);
}

Result<void> pwrite_dsync(int fd, const void* buf, ByteCount len, ByteOffset off) {
    const auto* p = static_cast<const char*>(buf);
    return transfer_full(
        [&](std::uint64_t at, std::uint64_t n, off_t o) {
            iovec v{const_cast<char*>(p + at), n};
            return ::pwritev2(fd, &v, 1, o, RWF_DSYNC);
        },
        len, off);
}

Result<void> send_full(int sock, std::span<const char> data) {
    // transfer_full's offset only counts progress here: a socket has no position.
    return transfer_full([&](std::uint64_t at, std::uint64_t n, off_t) { return ::send(sock, data.data() + at, n, MSG_NOSIGNAL); },
                         ByteCount{data.size()}, ByteOffset{0});
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
