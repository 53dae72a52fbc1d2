#pragma once
// A physical address space with no storage: reads leave the buffer as it is, writes vanish.
// For simulations that only care about timing (a fault injector's latency model on an injected
// clock) on devices far larger than memory.

#include "remapfs/block/layer.hpp"

namespace remapfs::block {

class NullBacking final : public BlockLayer {
public:
    explicit NullBacking(ByteCount size) : size_(size) {}
    ByteCount size() const override { return size_; }
    Result<void> pread(std::span<std::byte>, ByteOffset) override { return ok(); }
    Result<void> pwrite(std::span<const std::byte>, ByteOffset) override { return ok(); }
    Result<void> flush() override { return ok(); }
    Result<void> discard(ByteOffset, ByteCount) override { return ok(); }

private:
    ByteCount size_;
};

}  // namespace remapfs::block
