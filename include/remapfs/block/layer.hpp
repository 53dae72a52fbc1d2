#pragma once
// One interface for every block layer (nbdkit filter shape): each layer owns the layer below
// (`next_`) and forwards what it does not change. Offsets and lengths are validated once, at the
// top (the FUSE ops / remapctl), so layers assert instead of re-checking. Below the remap layer
// every request is whole sectors of the remap granularity.

#include "remapfs/core/result.hpp"
#include "remapfs/core/units.hpp"

#include <cstddef>
#include <memory>
#include <span>

namespace remapfs::block {

// One piece of a split request: `len` bytes at `off`, read into or written from `data`.
struct IoRun {
    std::byte* data = nullptr;  // not modified by writes
    ByteCount len;
    ByteOffset off;
    Result<void> result = ok();
};

class BlockLayer {
public:
    explicit BlockLayer(std::unique_ptr<BlockLayer> next = nullptr) : next_(std::move(next)) {}
    virtual ~BlockLayer() = default;
    BlockLayer(const BlockLayer&) = delete;
    BlockLayer& operator=(const BlockLayer&) = delete;

    virtual ByteCount size() const { return next_->size(); }
    virtual Result<void> pread(std::span<std::byte> buf, ByteOffset off) { return next_->pread(buf, off); }
    virtual Result<void> pwrite(std::span<const std::byte> buf, ByteOffset off) { return next_->pwrite(buf, off); }
    // Independent transfers that may run concurrently: the runs a request is split into around
    // remapped sectors. Each gets a result; runs that a layer merges into one transfer share
    // theirs, so a failure names a few runs, and the remap layer's slow path finds the sector.
    // By default one after another, through this layer's pread/pwrite.
    virtual void pread_runs(std::span<IoRun> runs) {
        for (IoRun& r : runs) r.result = pread({r.data, r.len.v}, r.off);
    }
    virtual void pwrite_runs(std::span<IoRun> runs) {
        for (IoRun& r : runs) r.result = pwrite({r.data, r.len.v}, r.off);
    }
    // Writes and makes this write durable before returning (RWF_DSYNC at the bottom), so a
    // failure names this write, not a later flush: the remap path's slot, header and label
    // writes. By default a write, then a flush.
    virtual Result<void> pwrite_durable(std::span<const std::byte> buf, ByteOffset off) {
        REMAPFS_TRY(pwrite(buf, off));
        return flush();
    }
    // Makes every acknowledged write durable.
    virtual Result<void> flush() { return next_->flush(); }
    // Afterwards the range reads as zeros.
    virtual Result<void> discard(ByteOffset off, ByteCount len) { return next_->discard(off, len); }

    BlockLayer* next() { return next_.get(); }

protected:
    std::unique_ptr<BlockLayer> next_;
};

}  // namespace remapfs::block
