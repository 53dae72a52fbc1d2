#pragma once
// The bottom layer: pread/pwrite/fdatasync on the backing file or block device, and on the
// separate spare file when there is one. Exposes the physical address space of geometry.hpp.
// With O_DIRECT, unaligned user buffers go through a per-thread aligned bounce buffer
// (libfuse's passthrough_ll skips this and fails direct writes).

#include "remapfs/block/layer.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/core/unique_fd.hpp"

#include <atomic>
#include <cstdint>
#include <memory>

namespace remapfs::block {

// One file holding part of the physical space: [phys_begin, phys_begin + length) maps to
// [file_offset, file_offset + length) of fd.
struct Extent {
    int fd = -1;
    ByteOffset phys_begin;
    ByteOffset file_offset;
    ByteCount length;
};

class Backing final : public BlockLayer {
public:
    // data: the image part (and, for a tail spare, the spare part too); spare: separate file or
    // -1. The fds stay owned by the caller (the Instance), which outlives the stack.
    Backing(const Geometry& g, int data_fd, int spare_fd, ByteOffset spare_file_offset, bool direct);

    ByteCount size() const override { return size_; }
    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override;
    Result<void> pwrite(std::span<const std::byte> buf, ByteOffset off) override;
    Result<void> pwrite_durable(std::span<const std::byte> buf, ByteOffset off) override;
    // All runs in flight at once (a 1 MiB request with two remapped sectors in it costs about
    // one transfer's latency, not five), runs that follow each other in a file merged into one.
    void pread_runs(std::span<IoRun> runs) override;
    void pwrite_runs(std::span<IoRun> runs) override;
    Result<void> flush() override;
    Result<void> discard(ByteOffset off, ByteCount len) override;

    // Bytes copied through the bounce buffer because a caller's buffer was not aligned for
    // O_DIRECT. FUSE write data arrives page-aligned (fuse/session_loop.hpp) and reads land in
    // aligned buffers, so on the data path this stays at zero; remapctl status shows it.
    std::uint64_t bounced_bytes() const { return bounced_bytes_.load(std::memory_order_relaxed); }
    // flush() calls so far: what an O_DSYNC writer or fsync of the image costs, for status.
    std::uint64_t flushes() const { return flushes_.load(std::memory_order_relaxed); }

private:
    const Extent& extent_for(ByteOffset off, ByteCount len) const;
    void transfer_runs(std::span<IoRun> runs, bool write, bool dsync = false);

    Extent data_;
    Extent spare_;
    ByteCount size_;
    bool direct_;
    std::atomic<std::uint64_t> bounced_bytes_{0};  // written only when a copy is made anyway
    std::atomic<std::uint64_t> flushes_{0};
};

}  // namespace remapfs::block
