#pragma once
// The spare area's own record (spare_meta.hpp) against the database.
//
// reconcile: after a session that did not end cleanly, a crash in the middle of a change can
// leave a slot header ahead of the table (a remap that never committed) or behind it (an
// unremap that did), and the label's generation one commit behind. The database is the truth
// while it is current: the headers of every slot ever handed out are made to say what it says.
//
// rebuild: when the database is lost or stale (remapctl recover), the device is the truth. For
// each sector, the mapped header with the highest generation not above the label's wins;
// headers above it belong to changes that never committed, and those and the superseded ones
// are blanked so they can never win later.

#include "remapfs/db/store.hpp"
#include "remapfs/remap/spare_meta.hpp"
#include "remapfs/remap/table.hpp"

#include <span>

namespace remapfs::remap {

struct ReconcileReport {
    std::uint64_t checked = 0;  // headers read
    std::uint64_t fixed = 0;    // headers rewritten
    bool label_caught_up = false;
};
Result<ReconcileReport> reconcile(SpareMeta& meta, const Table& table, SpareSlot next_slot,
                                  std::span<const SpareSlot> retired, std::uint64_t generation);

struct RebuildReport {
    db::RebuiltState state;
    std::uint64_t headers_read = 0;
    std::uint64_t uncommitted = 0;   // mapped, generation above the label's
    std::uint64_t superseded = 0;    // mapped, another slot holds the same sector later
    std::uint64_t unreadable = 0;    // neither blank nor a valid header of this device
    std::uint64_t out_of_range = 0;  // naming a sector outside the image
};
Result<RebuildReport> rebuild(SpareMeta& meta, const Geometry& g);

}  // namespace remapfs::remap
