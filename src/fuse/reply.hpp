#pragma once
// The single place where a Result becomes a FUSE reply, and where an escaped exception becomes
// EIO instead of a crash. libfuse rejects errors outside 1..999 with ERANGE; assert we never
// produce one.

#include "fuse/context.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/core/result.hpp"

#include <cassert>
#include <exception>

namespace remapfs::fuse_op {

inline void reply_err(fuse_req_t req, int err) {
    assert(err >= 0 && err < 1000);
    fuse_reply_err(req, err);
}

inline void reply_result(fuse_req_t req, const Result<void>& r) { reply_err(req, r ? 0 : r.error()); }

// Runs an op body; the body replies. If it throws, nothing was replied yet (bodies reply last).
template <typename F>
void guarded(fuse_req_t req, const char* op, F&& body) noexcept {
    try {
        body();
    } catch (const std::exception& e) {
        log::error("{}: {}", op, e.what());
        reply_err(req, EIO);
    } catch (...) {
        log::error("{}: unknown exception", op);
        reply_err(req, EIO);
    }
}

}  // namespace remapfs::fuse_op
