#pragma once
// Creates and removes remaps while I/O goes on. A move is: mark the sector moving in a new
// snapshot (I/O on it now waits), wait out requests still on the old snapshot, copy the data,
// fdatasync, commit the row in SQLite, publish the final snapshot. No reader ever sees a slot
// that does not yet hold the sector's data, and nothing is published before it is durable.

#include "remapfs/block/layer.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/geometry.hpp"
#include "remapfs/remap/table.hpp"

#include <set>
#include <string_view>

namespace remapfs::remap {

struct SpareUsage {
    std::uint64_t used = 0;   // slots holding a remap
    std::uint64_t total = 0;  // usable slots
    bool exhausted() const { return used >= total; }
};

class Remapper {
public:
    Remapper(db::Store& store, TableHolder& tables, block::BlockLayer& physical, const Geometry& g,
             const db::AllocatorState& allocator);

    // EEXIST: already remapped; ENOSPC: no free slot; EINVAL: outside the image; EIO: the
    // sector could not be read or the slot not written, nothing changed.
    Result<SpareSlot> remap(Lba lba, std::string_view reason);
    // ENOENT: not remapped.
    Result<void> unremap(Lba lba);

    SpareUsage usage() const;

private:
    struct Allocation {
        SpareSlot slot;
        bool from_free_list;
    };
    Result<Allocation> allocate();
    void give_back(Allocation a);
    Result<void> copy_sector(ByteOffset from, ByteOffset to);

    db::Store& store_;
    TableHolder& tables_;
    block::BlockLayer& physical_;
    Geometry geometry_;
    // Guarded by tables_.writer_mutex().
    std::uint64_t next_slot_;
    std::set<std::uint64_t> free_slots_;
};

}  // namespace remapfs::remap
