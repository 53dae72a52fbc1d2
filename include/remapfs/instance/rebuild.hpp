#pragma once
// remapctl recover: rebuilds a lost or stale database's remap table from the device's own
// record (the labels and the slot headers of a layout 2 spare area; remap/recover.hpp has the
// rules). The backing is locked for the duration, so it refuses while a daemon serves it.
// History, settings and the mount log of an existing database are kept; its remap table,
// allocator and pending list are replaced. Throws std::runtime_error with a one-line message.

#include "remapfs/instance/device_layout.hpp"
#include "remapfs/remap/recover.hpp"
#include "remapfs/sys/storage.hpp"

#include <optional>
#include <string>

namespace remapfs {

struct RebuildOptions {
    std::string db_path;
    // Where the database has no device row (or is gone), the device is found from these, as
    // it was mounted: the backing, a separate spare, and a spare_size or sector_size given then.
    std::optional<std::string> backing_path;
    std::optional<std::string> spare_path;
    std::optional<SpareSize> spare_size;
    std::optional<std::uint32_t> sector_size;
    sys::BackingIo backing_io = sys::BackingIo::automatic;
    // Rebuild even a database that is not older than the device (normally refused: it is the
    // truth then, and a mount puts the device's record in step with it).
    bool force = false;
};

struct RebuildResult {
    std::string uuid;
    bool created_db = false;
    std::uint64_t remaps_before = 0;      // in the database, before
    std::uint64_t generation_before = 0;  // the database's, before
    std::uint64_t generation = 0;         // the device's, which the database now has
    remap::RebuildReport report;
};

RebuildResult rebuild_database(const RebuildOptions& o);

}  // namespace remapfs
