#include "remapfs/db/schema.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace remapfs::db {

namespace {

void create_v1(Connection& c) {
    c.exec(R"sql(
        -- The backing this database belongs to; one row, written on first use.
        CREATE TABLE device (
            id            INTEGER PRIMARY KEY CHECK (id = 1),
            uuid          TEXT    NOT NULL,   -- also in the spare label on disk
            backing_path  TEXT    NOT NULL,
            backing_bytes INTEGER NOT NULL,
            sector_size   INTEGER NOT NULL,   -- remap granularity in bytes
            image_sectors INTEGER NOT NULL,
            spare_path    TEXT,               -- NULL: spare at the tail of the backing
            spare_offset  INTEGER NOT NULL,   -- byte offset of the spare label in its file
            spare_slots   INTEGER NOT NULL,
            created       INTEGER NOT NULL    -- unix seconds
        ) STRICT;
        -- Spare allocator: slots below next_slot were handed out at some time; freed ones are
        -- listed in free_slot and reused first.
        CREATE TABLE allocator (
            id        INTEGER PRIMARY KEY CHECK (id = 1),
            next_slot INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE free_slot (slot INTEGER PRIMARY KEY) STRICT;
        -- One row per remapped sector (lba and spare_slot in units of sector_size).
        CREATE TABLE remap (
            lba        INTEGER PRIMARY KEY,
            spare_slot INTEGER NOT NULL UNIQUE,
            state      TEXT    NOT NULL DEFAULT 'active',
            reason     TEXT    NOT NULL,   -- manual, write-error, ...
            created    INTEGER NOT NULL    -- unix seconds
        ) STRICT;
        INSERT INTO allocator (id, next_slot) VALUES (1, 0);
    )sql");
}

void create_v2(Connection& c) {
    c.exec(R"sql(
        -- For people reading the table with sqlite3: times as text, byte offsets spelled out.
        CREATE VIEW remap_list AS
            SELECT r.lba, r.spare_slot, r.state, r.reason,
                   datetime(r.created, 'unixepoch') AS created_at,
                   r.lba * d.sector_size AS image_byte_offset
            FROM remap r, device d ORDER BY r.lba;
    )sql");
}

void create_v3(Connection& c) {
    c.exec(R"sql(
        -- Sectors that could not be read even after retries. The next write of such a sector
        -- is sent to a fresh spare slot; the row goes away in the same transaction.
        CREATE TABLE pending (
            lba        INTEGER PRIMARY KEY,
            first_seen INTEGER NOT NULL,   -- unix seconds
            last_seen  INTEGER NOT NULL,
            errors     INTEGER NOT NULL,   -- failed reads (after retries) so far
            last_errno INTEGER NOT NULL
        ) STRICT;
        -- Spare slots that failed a write; never handed out again.
        CREATE TABLE retired_slot (
            slot       INTEGER PRIMARY KEY,
            retired    INTEGER NOT NULL,   -- unix seconds
            last_errno INTEGER NOT NULL
        ) STRICT;
    )sql");
}

}  // namespace

const std::vector<Migration>& schema_ladder() {
    static const std::vector<Migration> ladder = {
        {1, "device identity, spare allocator and remap table", create_v1},
        {2, "remap_list view", create_v2},
        {3, "pending sectors and retired spare slots", create_v3},
    };
    return ladder;
}

int latest_version(const std::vector<Migration>& ladder) { return ladder.empty() ? 0 : ladder.back().to_version; }

int check_header(Connection& c, const std::vector<Migration>& ladder) {
    // Reading the header pages is all we do until we know the file is ours.
    std::int64_t app = c.query_int("PRAGMA application_id");
    std::int64_t version = c.query_int("PRAGMA user_version");
    std::int64_t objects = c.query_int("SELECT count(*) FROM sqlite_schema");
    if (app == 0 && version == 0 && objects == 0) return 0;
    if (app != kApplicationId)
        throw std::runtime_error(fmt::format("{} is not a remapfs database (application_id {:#x})", c.path(), app));
    if (version > latest_version(ladder))
        throw std::runtime_error(fmt::format("{} has schema version {}, newer than this remapfs understands ({})",
                                             c.path(), version, latest_version(ladder)));
    return static_cast<int>(version);
}

int migrate(Connection& c, const std::vector<Migration>& ladder) {
    int version = check_header(c, ladder);
    if (version == latest_version(ladder)) return version;
    Transaction txn(c);
    for (const Migration& m : ladder) {
        if (m.to_version <= version) continue;
        m.apply(c);
        version = m.to_version;
    }
    c.exec(fmt::format("PRAGMA application_id = {}", kApplicationId));
    c.exec(fmt::format("PRAGMA user_version = {}", version));
    txn.commit();
    return version;
}

}  // namespace remapfs::db
