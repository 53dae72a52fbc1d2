#pragma once
// The remap store: device identity, the remap table and the spare allocator in SQLite.
// Startup calls may throw; the commit calls used while serving I/O are noexcept and return
// Result (EIO on any SQLite failure, logged with the extended code).

#include "remapfs/db/sqlite.hpp"
#include "remapfs/result.hpp"
#include "remapfs/units.hpp"

#include <optional>
#include <string>
#include <vector>

namespace remapfs::db {

struct DeviceIdentity {
    std::string uuid;
    std::string backing_path;
    std::uint64_t backing_bytes = 0;
    std::uint32_t sector_size = 0;
    std::uint64_t image_sectors = 0;
    std::optional<std::string> spare_path;  // nullopt: tail of the backing
    std::uint64_t spare_offset = 0;
    std::uint64_t spare_slots = 0;
    std::int64_t created = 0;
};

struct RemapRow {
    Lba lba;
    SpareSlot slot;
    std::string state;
    std::string reason;
    std::int64_t created = 0;
};

struct AllocatorState {
    std::uint64_t next_slot = 0;
    std::vector<std::uint64_t> free_slots;  // ascending
};

class Store {
public:
    // read_only: never writes (remapctl on a stopped instance reading status). Otherwise the
    // schema is migrated, WAL is switched on and commits are synchronous=FULL, so a committed
    // remap survives power loss.
    static Store open(const std::string& path, bool create, bool read_only);

    const std::string& path() const { return conn_.path(); }
    std::optional<DeviceIdentity> identity();
    void bind(const DeviceIdentity& id);  // first use: writes the device row

    std::vector<RemapRow> remaps();
    AllocatorState allocator();

    // New remap of lba to slot. from_free_list: the slot came from free_slot, else it is
    // next_slot (which advances).
    Result<void> commit_remap(Lba lba, SpareSlot slot, bool from_free_list, std::string_view reason) noexcept;
    Result<void> commit_unremap(Lba lba, SpareSlot slot) noexcept;

    Connection& connection() { return conn_; }

private:
    explicit Store(Connection c) : conn_(std::move(c)) {}
    Connection conn_;
};

std::string new_uuid();

}  // namespace remapfs::db
