#pragma once
// Memory that O_DIRECT transfers to and from the backing go through.
//
// Physically contiguous where the kernel can give it: mapped 2 MiB-aligned and madvised for
// transparent huge pages. A 1 MiB transfer from scattered 4 KiB pages is 256 segments, more
// than a virtio disk queue takes (254 here), so the block layer splits it, and the host maps
// every segment (twice as slow here: bench/README.md). Without THP the buffer is ordinary
// page-aligned memory. Pages become resident on first touch, 2 MiB at a time.
//
// Buffers under kHugeFrom stay in ordinary pages: a transfer that small is a few dozen segments,
// which the disk takes whole, and rounding it up to 2 MiB made every thread that ever moved
// 4 KiB hold 2 MiB (a daemon that had served a few 4 KiB requests: 50 MiB resident, not 20).

#include <cstddef>
#include <utility>

namespace remapfs::sys {

class IoBuffer {
public:
    static constexpr std::size_t kHugePage = std::size_t{2} << 20;
    static constexpr std::size_t kHugeFrom = std::size_t{256} << 10;

    IoBuffer() = default;
    // At least `bytes`: from kHugeFrom on rounded up to whole huge pages and huge-page aligned,
    // below it rounded up to whole pages. `headroom` bytes (rounded up to pages) of ordinary
    // memory come right before data(), for headers that precede the data: a small request
    // received there does not make the huge page behind it resident. Empty (data() null) if
    // the mapping fails.
    explicit IoBuffer(std::size_t bytes, std::size_t headroom = 0);
    IoBuffer(IoBuffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), size_(std::exchange(o.size_, 0)), headroom_(std::exchange(o.headroom_, 0)) {}
    IoBuffer& operator=(IoBuffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            size_ = std::exchange(o.size_, 0);
            headroom_ = std::exchange(o.headroom_, 0);
        }
        return *this;
    }
    IoBuffer(const IoBuffer&) = delete;
    IoBuffer& operator=(const IoBuffer&) = delete;
    ~IoBuffer() { release(); }

    std::byte* data() const { return p_; }
    std::size_t size() const { return size_; }          // from data() on
    std::size_t headroom() const { return headroom_; }  // before data()
    explicit operator bool() const { return p_ != nullptr; }

    // Makes the buffer at least `bytes` long (its contents and headroom are not kept); null on
    // failure.
    std::byte* reserve(std::size_t bytes) {
        if (size_ < bytes) *this = IoBuffer(bytes);
        return p_;
    }

private:
    void release();

    std::byte* p_ = nullptr;
    std::size_t size_ = 0;
    std::size_t headroom_ = 0;
};

}  // namespace remapfs::sys
