#include "remapfs/block/memory_backing.hpp"

#include <algorithm>
#include <cstring>

namespace remapfs::block {

Result<void> MemoryBacking::pread(std::span<std::byte> buf, ByteOffset off) {
    std::lock_guard lock(mutex_);
    if (off.v + buf.size() > bytes_.size()) return Errno{EIO};
    std::memcpy(buf.data(), bytes_.data() + off.v, buf.size());
    return ok();
}

Result<void> MemoryBacking::pwrite(std::span<const std::byte> buf, ByteOffset off) {
    std::lock_guard lock(mutex_);
    if (off.v + buf.size() > bytes_.size()) return Errno{EIO};
    std::memcpy(bytes_.data() + off.v, buf.data(), buf.size());
    return ok();
}

Result<void> MemoryBacking::discard(ByteOffset off, ByteCount len) {
    std::lock_guard lock(mutex_);
    if (off.v + len.v > bytes_.size()) return Errno{EIO};
    std::fill_n(bytes_.begin() + static_cast<std::ptrdiff_t>(off.v), len.v, std::byte{0});
    return ok();
}

std::vector<std::byte> MemoryBacking::raw(ByteOffset off, ByteCount len) const {
    std::lock_guard lock(mutex_);
    return {bytes_.begin() + static_cast<std::ptrdiff_t>(off.v),
            bytes_.begin() + static_cast<std::ptrdiff_t>(off.v + len.v)};
}

}  // namespace remapfs::block
