#include "fuse/handle_modes.hpp"

namespace remapfs::fuse_op {

HandleModes::Decision HandleModes::open(bool o_direct) {
    std::lock_guard lock(m_);
    Decision d;
    d.direct_io = bypassing_ > 0 || (o_direct && bypass_for_o_direct_ && cached_ == 0);
    if (d.direct_io) {
        ++bypassing_;
        return d;
    }
    ++cached_;
    d.keep_cache = !cache_stale_;
    cache_stale_ = false;
    return d;
}

void HandleModes::release(bool direct_io, bool writable) {
    std::lock_guard lock(m_);
    if (!direct_io) {
        if (cached_) --cached_;
        return;
    }
    if (bypassing_) --bypassing_;
    if (writable) cache_stale_ = true;
}

}  // namespace remapfs::fuse_op
