#pragma once
// A physical address space held in memory: the bottom of the stack in unit tests.

#include "remapfs/block/layer.hpp"

#include <mutex>
#include <vector>

namespace remapfs::block {

class MemoryBacking final : public BlockLayer {
public:
    explicit MemoryBacking(ByteCount size) : bytes_(size.v) {}

    ByteCount size() const override { return ByteCount{bytes_.size()}; }
    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override;
    Result<void> pwrite(std::span<const std::byte> buf, ByteOffset off) override;
    Result<void> flush() override { return ok(); }
    Result<void> discard(ByteOffset off, ByteCount len) override;

    // Direct access for assertions ("read the spare slot directly").
    std::vector<std::byte> raw(ByteOffset off, ByteCount len) const;

private:
    mutable std::mutex mutex_;  // tests hammer it from many threads
    std::vector<std::byte> bytes_;
};

}  // namespace remapfs::block
