#pragma once
// The remap layer: takes byte requests on the image (any alignment), checks every sector of
// each request on its own against the current table snapshot, sends remapped sectors to their
// spare slot and runs of the others to the backing, and turns partial sectors into
// read-modify-write (nbdkit cow filter: head / body / tail).

#include "remapfs/block/layer.hpp"
#include "remapfs/geometry.hpp"
#include "remapfs/remap/table.hpp"

#include <array>
#include <mutex>

namespace remapfs::block {

class RemapLayer final : public BlockLayer {
public:
    RemapLayer(std::unique_ptr<BlockLayer> physical, const Geometry& g, const remap::TableHolder& tables,
               bool read_only);

    ByteCount size() const override { return geometry_.image_bytes(); }
    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override;
    Result<void> pwrite(std::span<const std::byte> buf, ByteOffset off) override;
    Result<void> discard(ByteOffset off, ByteCount len) override;

private:
    // A snapshot with no sector of [first, first+n) in the middle of a move.
    remap::Snapshot settled_snapshot(Lba first, SectorCount n) const;
    ByteOffset where(const remap::Table& t, Lba lba) const;
    Result<void> patch_sector(const remap::Table& t, const SectorSplit::Partial& p, const std::byte* data);

    Geometry geometry_;
    const remap::TableHolder& tables_;
    bool read_only_;
    // Read-modify-write of a partial sector must not interleave with another RMW of the same
    // sector; striped so unrelated sectors never contend. Leaf lock: nothing is taken under it.
    std::array<std::mutex, 64> rmw_locks_;
};

}  // namespace remapfs::block
