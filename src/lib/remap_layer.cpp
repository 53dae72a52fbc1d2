#include "remapfs/block/remap_layer.hpp"

#include <cassert>
#include <cstring>
#include <vector>

namespace remapfs::block {
namespace {

constexpr std::size_t kMaxSector = 4096;

// Calls f(physical offset, first index into the request, sector count) for each maximal run of
// sectors that are contiguous on the physical side: runs of unremapped sectors, and remapped
// sectors one at a time.
template <typename F>
Result<void> for_each_run(const Geometry& g, const remap::Table& t, Lba first, SectorCount n, F&& f) {
    std::uint64_t i = 0;
    for (const remap::Entry& e : t.range(first, n)) {
        std::uint64_t idx = e.lba.v - first.v;
        if (idx > i) REMAPFS_TRY(f(g.data_offset(first + SectorCount{i}), i, SectorCount{idx - i}));
        REMAPFS_TRY(f(g.slot_offset(e.slot), idx, SectorCount{1}));
        i = idx + 1;
    }
    if (i < n.v) REMAPFS_TRY(f(g.data_offset(first + SectorCount{i}), i, SectorCount{n.v - i}));
    return ok();
}

}  // namespace

RemapLayer::RemapLayer(std::unique_ptr<BlockLayer> physical, const Geometry& g, const remap::TableHolder& tables,
                       bool read_only)
    : BlockLayer(std::move(physical)), geometry_(g), tables_(tables), read_only_(read_only) {
    assert(g.sector_size.bytes() <= kMaxSector);
}

remap::Snapshot RemapLayer::settled_snapshot(Lba first, SectorCount n) const {
    for (;;) {
        remap::Snapshot s = tables_.load();
        if (!s->any_moving(first, n)) return s;
        tables_.wait_for_change(s);
    }
}

ByteOffset RemapLayer::where(const remap::Table& t, Lba lba) const {
    const remap::Entry* e = t.find(lba);
    return e ? geometry_.slot_offset(e->slot) : geometry_.data_offset(lba);
}

Result<void> RemapLayer::pread(std::span<std::byte> buf, ByteOffset off) {
    const SectorSize ss = geometry_.sector_size;
    assert(off.v + buf.size() <= size().v);
    const SectorSplit sp = split_sectors(ss, off, ByteCount{buf.size()});
    remap::Snapshot snap = settled_snapshot(sp.first(), sp.touched());

    std::byte* out = buf.data();
    alignas(kMaxSector) std::byte sector[kMaxSector];
    if (sp.head.length) {
        REMAPFS_TRY(next_->pread({sector, ss.bytes()}, where(*snap, sp.head.lba)));
        std::memcpy(out, sector + sp.head.offset_in_sector, sp.head.length);
        out += sp.head.length;
    }
    if (sp.body_count.v) {
        REMAPFS_TRY(for_each_run(geometry_, *snap, sp.body_first, sp.body_count,
                                 [&](ByteOffset phys, std::uint64_t idx, SectorCount n) {
                                     return next_->pread({out + idx * ss.bytes(), ss.bytes(n).v}, phys);
                                 }));
        out += ss.bytes(sp.body_count).v;
    }
    if (sp.tail.length) {
        REMAPFS_TRY(next_->pread({sector, ss.bytes()}, where(*snap, sp.tail.lba)));
        std::memcpy(out, sector, sp.tail.length);
    }
    return ok();
}

Result<void> RemapLayer::patch_sector(const remap::Table& t, const SectorSplit::Partial& p, const std::byte* data) {
    const SectorSize ss = geometry_.sector_size;
    alignas(kMaxSector) std::byte sector[kMaxSector];
    const ByteOffset phys = where(t, p.lba);
    std::lock_guard lock(rmw_locks_[p.lba.v % rmw_locks_.size()]);
    REMAPFS_TRY(next_->pread({sector, ss.bytes()}, phys));
    if (data)
        std::memcpy(sector + p.offset_in_sector, data, p.length);
    else
        std::memset(sector + p.offset_in_sector, 0, p.length);
    return next_->pwrite({sector, ss.bytes()}, phys);
}

Result<void> RemapLayer::pwrite(std::span<const std::byte> buf, ByteOffset off) {
    if (read_only_) return Errno{EROFS};
    const SectorSize ss = geometry_.sector_size;
    assert(off.v + buf.size() <= size().v);
    const SectorSplit sp = split_sectors(ss, off, ByteCount{buf.size()});
    remap::Snapshot snap = settled_snapshot(sp.first(), sp.touched());

    const std::byte* in = buf.data();
    if (sp.head.length) {
        REMAPFS_TRY(patch_sector(*snap, sp.head, in));
        in += sp.head.length;
    }
    if (sp.body_count.v) {
        REMAPFS_TRY(for_each_run(geometry_, *snap, sp.body_first, sp.body_count,
                                 [&](ByteOffset phys, std::uint64_t idx, SectorCount n) {
                                     return next_->pwrite({in + idx * ss.bytes(), ss.bytes(n).v}, phys);
                                 }));
        in += ss.bytes(sp.body_count).v;
    }
    if (sp.tail.length) REMAPFS_TRY(patch_sector(*snap, sp.tail, in));
    return ok();
}

Result<void> RemapLayer::discard(ByteOffset off, ByteCount len) {
    if (read_only_) return Errno{EROFS};
    const SectorSize ss = geometry_.sector_size;
    assert(off.v + len.v <= size().v);
    const SectorSplit sp = split_sectors(ss, off, len);
    remap::Snapshot snap = settled_snapshot(sp.first(), sp.touched());

    if (sp.head.length) REMAPFS_TRY(patch_sector(*snap, sp.head, nullptr));
    if (sp.body_count.v) {
        alignas(kMaxSector) static const std::byte zeros[kMaxSector] = {};
        REMAPFS_TRY(for_each_run(geometry_, *snap, sp.body_first, sp.body_count,
                                 [&](ByteOffset phys, std::uint64_t, SectorCount n) -> Result<void> {
                                     // A spare slot is one sector: zero it rather than punch a
                                     // hole in the spare area.
                                     if (phys >= geometry_.label_offset()) return next_->pwrite({zeros, ss.bytes()}, phys);
                                     return next_->discard(phys, ss.bytes(n));
                                 }));
    }
    if (sp.tail.length) REMAPFS_TRY(patch_sector(*snap, sp.tail, nullptr));
    return ok();
}

}  // namespace remapfs::block
