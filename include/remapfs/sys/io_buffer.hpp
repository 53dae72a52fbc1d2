#pragma once
// Memory that O_DIRECT transfers to and from the backing go through.
//
// Physically contiguous where the kernel can give it: mapped 2 MiB-aligned and madvised for
// transparent huge pages. A 1 MiB transfer from scattered 4 KiB pages is 256 segments, more
// than a virtio disk queue takes (254 here), so the block layer splits it, and the host maps
// every segment. On this VM a 1 MiB O_DIRECT pwrite at QD1 ran 1.8 GB/s from scattered pages
// and 3.5 GB/s from one huge page (bench/README.md). Without THP the buffer is ordinary
// page-aligned memory. Pages become resident on first touch, 2 MiB at a time.

#include <cstddef>
#include <utility>

namespace remapfs::sys {

class IoBuffer {
public:
    static constexpr std::size_t kHugePage = std::size_t{2} << 20;

    IoBuffer() = default;
    // At least `bytes`, rounded up to whole huge pages; empty (data() null) if the mapping fails.
    explicit IoBuffer(std::size_t bytes);
    IoBuffer(IoBuffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    IoBuffer& operator=(IoBuffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    IoBuffer(const IoBuffer&) = delete;
    IoBuffer& operator=(const IoBuffer&) = delete;
    ~IoBuffer() { release(); }

    std::byte* data() const { return p_; }
    std::size_t size() const { return size_; }
    explicit operator bool() const { return p_ != nullptr; }

    // Makes the buffer at least `bytes` long (its contents are not kept); null on failure.
    std::byte* reserve(std::size_t bytes) {
        if (size_ < bytes) *this = IoBuffer(bytes);
        return p_;
    }

private:
    void release();

    std::byte* p_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace remapfs::sys
