#include "remapfs/sys/io_buffer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace remapfs::sys {
namespace {

std::size_t round_up(std::size_t n, std::size_t unit) { return (n + unit - 1) / unit * unit; }

}  // namespace

IoBuffer::IoBuffer(std::size_t bytes, std::size_t headroom) {
    if (bytes == 0) return;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const bool huge = bytes >= kHugeFrom;
    const std::size_t size = round_up(bytes, huge ? kHugePage : page);
    const std::size_t head = round_up(headroom, page);
    // Over-map by one huge page and trim, so that data() starts on a huge-page boundary.
    const std::size_t slack = huge ? kHugePage : 0;
    void* m = ::mmap(nullptr, head + size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    auto* raw = static_cast<std::byte*>(m);
    std::byte* p = raw + head;
    if (huge) p += (kHugePage - reinterpret_cast<std::uintptr_t>(p) % kHugePage) % kHugePage;
    if (p - head != raw) ::munmap(raw, static_cast<std::size_t>(p - head - raw));
    if (std::byte* tail = p + size; tail != raw + head + size + slack)
        ::munmap(tail, static_cast<std::size_t>(raw + head + size + slack - tail));
    if (huge) (void)::madvise(p, size, MADV_HUGEPAGE);  // a hint: without THP it stays 4 KiB pages
    // Where THP is "always", headroom merged into a neighbouring mapping could get a huge page.
    if (head) (void)::madvise(p - head, head, MADV_NOHUGEPAGE);
    p_ = p;
    size_ = size;
    headroom_ = head;
}

void IoBuffer::release() {
    if (p_) ::munmap(p_ - headroom_, headroom_ + size_);
    p_ = nullptr;
    size_ = 0;
    headroom_ = 0;
}

}  // namespace remapfs::sys
