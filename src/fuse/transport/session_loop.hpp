#pragma once
// Our own multi-threaded session loop in place of fuse_session_loop_mt. The one thing it does
// differently: every worker receives into a buffer placed so that a FUSE_WRITE's data starts on
// a page boundary. libfuse's loop mallocs its buffers, which puts the data 96 bytes into a page,
// and an O_DIRECT backing then copied every write into a bounce buffer first (1 MiB for each
// sequential write).

#include "fuse/context.hpp"

#include <cstddef>

namespace remapfs::fuse_op {

// The largest write the kernel may send us (set in init). The receive buffers are sized for it,
// whatever libfuse's own default is.
inline constexpr std::size_t kMaxWrite = std::size_t{1} << 20;

// Runs the session on `threads` workers until it exits (unmount, signal, fatal read error).
// Returns 0, or the negative errno of the read that ended it.
int run_session(fuse_session* se, unsigned threads);

}  // namespace remapfs::fuse_op
