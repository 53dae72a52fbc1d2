#include "remapfs/sys/io_buffer.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace remapfs::sys {

IoBuffer::IoBuffer(std::size_t bytes) {
    if (bytes == 0) return;
    const std::size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    // Over-map by one huge page and trim, so the buffer starts on a huge-page boundary.
    void* m = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    auto* raw = static_cast<std::byte*>(m);
    const auto addr = reinterpret_cast<std::uintptr_t>(raw);
    std::byte* p = raw + ((kHugePage - addr % kHugePage) % kHugePage);
    if (p != raw) ::munmap(raw, static_cast<std::size_t>(p - raw));
    if (std::byte* tail = p + size; tail != raw + size + kHugePage)
        ::munmap(tail, static_cast<std::size_t>(raw + size + kHugePage - tail));
    (void)::madvise(p, size, MADV_HUGEPAGE);  // a hint: without THP it stays 4 KiB pages
    p_ = p;
    size_ = size;
}

void IoBuffer::release() {
    if (p_) ::munmap(p_, size_);
    p_ = nullptr;
    size_ = 0;
}

}  // namespace remapfs::sys
