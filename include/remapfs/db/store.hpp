#pragma once
// The remap store: device identity, the remap table and the spare allocator in SQLite.
// Startup calls may throw; the commit calls used while serving I/O are noexcept and return
// Result (EIO on any SQLite failure, logged with the extended code).

#include "remapfs/db/sqlite.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/db/records.hpp"
#include "remapfs/db/records.hpp"
#include "remapfs/core/result.hpp"
#include "remapfs/core/units.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace remapfs::db {

struct DeviceIdentity {
    std::string uuid;
    std::string backing_path;
    ByteCount backing_bytes;
    std::uint32_t sector_size = 0;  // bytes (512 or 4096)
    SectorCount image_sectors;
    std::optional<std::string> spare_path;  // nullopt: tail of the backing
    ByteOffset spare_offset;                // of the spare label in its file
    SectorCount spare_slots;
    std::int64_t created = 0;
    std::uint32_t layout = 1;      // of the spare area (geometry.hpp)
    std::uint64_t generation = 0;  // of the last committed change of the remap table
    bool dirty = false;            // a read-write session is open, or the last one crashed
    bool initialised = true;       // false: bound, labels not yet confirmed on disk
    std::optional<std::string> backing_id;  // sys/storage_id.hpp; nullopt: not recorded

    Geometry geometry() const { return {SectorSize(sector_size), image_sectors, spare_slots, layout}; }
};

struct RemapRow {
    Lba lba;
    SpareSlot slot;
    std::string state;
    std::string reason;  // as stored: to_string(RemapReason) for every row remapfs writes
    std::int64_t created = 0;
};

struct AllocatorState {
    SpareSlot next_slot;                // the first never handed out
    std::vector<SpareSlot> free_slots;  // ascending
    std::uint64_t retired = 0;
};

struct PendingRow {
    Lba lba;
    std::int64_t first_seen = 0;
    std::int64_t last_seen = 0;
    std::uint64_t errors = 0;
    int last_errno = 0;
};

// The remap state rebuilt from the device's own records (remapctl recover).
struct RebuiltState {
    std::vector<std::pair<Lba, SpareSlot>> remaps;  // ascending lba
    std::vector<SpareSlot> retired;
    std::vector<SpareSlot> free_slots;  // below next_slot, neither remapped nor retired
    SpareSlot next_slot;
    std::uint64_t generation = 0;
};

struct MountRow {
    std::int64_t id = 0;
    std::int64_t started = 0;
    std::optional<std::int64_t> stopped;  // nullopt: running, or did not stop cleanly
    std::int64_t pid = 0;
    std::string version;
    std::string mountpoint;
};

struct MountSummary {
    std::uint64_t count = 0;
    std::uint64_t not_stopped = 0;    // rows without a stop time (the running one included)
    std::optional<MountRow> last;     // the newest row
};

class Store {
public:
    // read_only: never writes (remapctl on a stopped instance reading status). Otherwise the
    // schema is migrated, WAL is switched on and commits are synchronous=FULL, so a committed
    // remap survives power loss.
    // Owner::checked: a database that belongs to another user than the caller is refused (its
    // table decides where every sector is read from). Owner::any: for reading it (remapctl
    // status, list, pending as root).
    enum class Owner { checked, any };
    static Store open(const std::string& path, bool create, bool read_only, Owner owner = Owner::checked);

    const std::string& path() const { return conn_.path(); }
    std::optional<DeviceIdentity> identity();
    void bind(const DeviceIdentity& id);  // first use: writes the device row
    void set_initialised();               // the labels are on disk
    void set_dirty(bool dirty);           // a read-write session starts (true) or ends cleanly
    void set_backing_id(const std::string& id);

    std::vector<RemapRow> remaps();
    // What loading the table at startup needs: each remap's lba and slot in lba order, in one
    // pass and without building a row per remap.
    void each_remap(const std::function<void(Lba, SpareSlot)>& f);
    std::uint64_t remap_count();
    AllocatorState allocator();
    std::vector<SpareSlot> retired_slots();  // ascending

    std::vector<PendingRow> pending();

    // Every commit waits out another connection holding the write lock (the history writer's
    // batch, an operator's sqlite3 session) for as long as it takes: the data it records is
    // already safe in its slot, and failing would turn a saved write into EIO.
    //
    // Changes of the mapping carry the generation they make the table (device.generation).
    // New remap of lba to slot (and lba is no longer pending). from_free_list: the slot came
    // from free_slot, else it is next_slot (which advances).
    Result<void> commit_remap(Lba lba, SpareSlot slot, bool from_free_list, RemapReason reason,
                              std::uint64_t generation) noexcept;
    // The slot is freed, or retired if it was the failing copy (a pending sector); the sector is
    // no longer pending.
    Result<void> commit_unremap(Lba lba, SpareSlot slot, bool retire_slot, std::uint64_t generation) noexcept;
    // lba moves from a failed slot to a new one; the old slot is retired.
    Result<void> commit_relocate(Lba lba, SpareSlot old_slot, SpareSlot new_slot, bool from_free_list,
                                 int old_errno, std::uint64_t generation) noexcept;
    // A slot that was never used for a remap failed its first write.
    Result<void> commit_retire(SpareSlot slot, bool from_free_list, int err) noexcept;
    Result<void> commit_pending(Lba lba, int err) noexcept;
    // Offline bulk load (benchmarks, imports): remaps each of lbas (none remapped yet) to the
    // slots from next_slot on, in one transaction, so next_slot stays the count of slots handed
    // out. Not for a store a running Remapper uses: its allocator state would go stale. Throws.
    void commit_remaps_bulk(std::span<const Lba> lbas, RemapReason reason);
    // Replaces the remap table, the allocator and the pending list with a rebuilt state, in
    // one transaction (remapctl recover). Throws.
    void replace_remap_state(const RebuiltState& s);

    ScanConfig scan_config();
    void save_scan_config(const ScanConfig& c);
    ScanCheckpoint scan_state();
    PassRecord scan_pass(std::uint64_t pass);  // zeros if there is no such pass

    // The mount log: a row when a read-write daemon starts serving, its stop time when it
    // stops cleanly. Throws.
    std::int64_t log_mount_start(std::int64_t started, std::int64_t pid, std::string_view version,
                                 std::string_view mountpoint);
    void log_mount_stop(std::int64_t id, std::int64_t stopped);
    MountSummary mount_summary();

    // For tests and the db/ functions that take a connection; not guarded by the store's lock.
    Connection& connection() { return conn_; }

private:
    explicit Store(Connection c) : conn_(std::move(c)), mutex_(std::make_unique<std::mutex>()) {}
    // Every public call holds it: the store is used from the remap path (under the table's
    // writer mutex, which only orders table changes), the scanner's settings and the control
    // workers, on one connection.
    std::unique_lock<std::mutex> lock() const { return std::unique_lock<std::mutex>(*mutex_); }
    Connection conn_;
    std::unique_ptr<std::mutex> mutex_;
};

std::string new_uuid();

}  // namespace remapfs::db
