#pragma once
// FUSE over io_uring (Linux 6.14+, when the admin has set /sys/module/fuse/parameters/enable_uring).
// Each ring worker registers one request buffer with its own io_uring; answering a request and
// fetching the next one is then a single io_uring_enter instead of a writev(2) and a read(2),
// and the kernel queues a request on the CPU that issued it, so the worker it wakes is told
// without a cross-CPU round trip. INIT, FORGET and INTERRUPT still come through /dev/fuse and
// run_session's workers, which also serve everything when the kernel does not offer the ring.
//
// libfuse 3.14 knows nothing of it. We still let libfuse parse and dispatch every request
// (fuse_session_process_buf) and catch its replies in a custom writev, which is also where the
// INIT reply gets FUSE_OVER_IO_URING added. Ops must reply before they return (ours all do).

#include "fuse/context.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace remapfs::fuse_op {

class UringTransport {
public:
    // Installs the custom I/O on a mounted session; the ring workers start once the kernel has
    // accepted an INIT that offered the ring. One transport per process. Throws on failure.
    UringTransport(fuse_session* se, unsigned workers_per_cpu);
    ~UringTransport();  // stops and joins the ring workers
    UringTransport(const UringTransport&) = delete;
    UringTransport& operator=(const UringTransport&) = delete;

    std::uint64_t requests_served() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace remapfs::fuse_op
