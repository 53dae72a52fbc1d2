#include "remapfs/remap/remapper.hpp"

#include "remapfs/log.hpp"

namespace remapfs::remap {

Remapper::Remapper(db::Store& store, TableHolder& tables, block::BlockLayer& physical, const Geometry& g,
                   const db::AllocatorState& allocator)
    : store_(store),
      tables_(tables),
      physical_(physical),
      geometry_(g),
      next_slot_(allocator.next_slot),
      free_slots_(allocator.free_slots.begin(), allocator.free_slots.end()) {}

Result<Remapper::Allocation> Remapper::allocate() {
    if (!free_slots_.empty()) {
        auto it = free_slots_.begin();
        Allocation a{SpareSlot{*it}, true};
        free_slots_.erase(it);
        return a;
    }
    if (next_slot_ >= geometry_.spare_slots.v) return Errno{ENOSPC};
    return Allocation{SpareSlot{next_slot_++}, false};
}

void Remapper::give_back(Allocation a) {
    if (a.from_free_list)
        free_slots_.insert(a.slot.v);
    else if (a.slot.v + 1 == next_slot_)
        --next_slot_;
}

Result<void> Remapper::copy_sector(ByteOffset from, ByteOffset to) {
    alignas(4096) std::byte sector[4096];
    const std::uint32_t n = geometry_.sector_size.bytes();
    REMAPFS_TRY(physical_.pread({sector, n}, from));
    REMAPFS_TRY(physical_.pwrite({sector, n}, to));
    return physical_.flush();
}

Result<SpareSlot> Remapper::remap(Lba lba, std::string_view reason) {
    if (!geometry_.contains(lba)) return Errno{EINVAL};
    std::lock_guard lock(tables_.writer_mutex());
    if (tables_.load()->find(lba)) return Errno{EEXIST};
    auto alloc = allocate();
    if (!alloc) return Errno{alloc.error()};

    tables_.update([&](const Table& t) { return t.with({lba, alloc->slot, true}); });
    auto done = copy_sector(geometry_.data_offset(lba), geometry_.slot_offset(alloc->slot));
    if (done) done = store_.commit_remap(lba, alloc->slot, alloc->from_free_list, reason);
    if (!done) {
        tables_.update([&](const Table& t) { return t.without(lba); });
        give_back(*alloc);
        return Errno{done.error()};
    }
    tables_.update([&](const Table& t) { return t.with({lba, alloc->slot, false}); });
    log::info("sector {} remapped to spare slot {} ({})", lba.v, alloc->slot.v, reason);
    return alloc->slot;
}

Result<void> Remapper::unremap(Lba lba) {
    if (!geometry_.contains(lba)) return Errno{EINVAL};
    std::lock_guard lock(tables_.writer_mutex());
    SpareSlot slot;
    {
        Snapshot cur = tables_.load();  // dropped before publish(), which waits for old readers
        const Entry* e = cur->find(lba);
        if (!e) return Errno{ENOENT};
        slot = e->slot;
    }

    tables_.update([&](const Table& t) { return t.with({lba, slot, true}); });
    auto done = copy_sector(geometry_.slot_offset(slot), geometry_.data_offset(lba));
    if (done) done = store_.commit_unremap(lba, slot);
    if (!done) {
        tables_.update([&](const Table& t) { return t.with({lba, slot, false}); });
        return Errno{done.error()};
    }
    tables_.update([&](const Table& t) { return t.without(lba); });
    free_slots_.insert(slot.v);
    log::info("sector {} unremapped, spare slot {} freed", lba.v, slot.v);
    return ok();
}

SpareUsage Remapper::usage() const {
    return {tables_.load()->size(), geometry_.spare_slots.v};
}

}  // namespace remapfs::remap
