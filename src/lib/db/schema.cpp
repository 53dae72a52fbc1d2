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

void create_v4(Connection& c) {
    c.exec(R"sql(
        -- Scanner knobs (the seed's), changed with `remapctl scan set`; one row.
        CREATE TABLE scan_config (
            id               INTEGER PRIMARY KEY CHECK (id = 1),
            enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
            interval_s       INTEGER NOT NULL,  -- from the start of one pass to the next
            sectors_per_scan INTEGER NOT NULL,  -- sectors per scanner read
            intensity        INTEGER NOT NULL CHECK (intensity BETWEEN 1 AND 10),
            health_threshold INTEGER NOT NULL CHECK (health_threshold BETWEEN 0 AND 1000),
            staggered        INTEGER NOT NULL CHECK (staggered IN (0, 1)),
            paused           INTEGER NOT NULL CHECK (paused IN (0, 1))
        ) STRICT;
        INSERT INTO scan_config VALUES (1, 1, 86400, 256, 3, 700, 0, 0);
        -- Where the scanner is (checkpointed every few seconds, so a restart resumes).
        CREATE TABLE scan_state (
            id              INTEGER PRIMARY KEY CHECK (id = 1),
            pass            INTEGER NOT NULL,  -- current or last pass number
            cursor          INTEGER NOT NULL,  -- sectors of this pass already scanned
            pass_started    INTEGER NOT NULL,  -- unix seconds, 0: no pass yet
            total_scans     INTEGER NOT NULL,  -- completed passes
            warnings_issued INTEGER NOT NULL
        ) STRICT;
        INSERT INTO scan_state VALUES (1, 0, 0, 0, 0, 0);
        CREATE TABLE scan_pass (
            pass      INTEGER PRIMARY KEY,
            started   INTEGER NOT NULL,
            finished  INTEGER,                 -- NULL while running or if abandoned
            sectors   INTEGER NOT NULL,        -- scanned so far
            errors    INTEGER NOT NULL,
            slow      INTEGER NOT NULL,
            max_us    INTEGER NOT NULL
        ) STRICT;
        -- Latency classes per region and pass (hdck-style buckets, upper bounds in ms:
        -- b0 <0.5, b1 <2.1, b2 <4.2, b3 <8.3, b4 <16.7, b5 <33.3, b6 <50, b7 >=50), counted per
        -- scanner read, and the sectors read. Raw tier; tiers below keep it bounded.
        CREATE TABLE region_pass (
            pass   INTEGER NOT NULL,
            region INTEGER NOT NULL,
            t      INTEGER NOT NULL,           -- unix seconds when the region was done
            b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
            b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
            sectors INTEGER NOT NULL,          -- sectors read (the pass's coverage of the region)
            errors INTEGER NOT NULL,
            sum_us INTEGER NOT NULL,           -- total read time, for the mean
            max_us INTEGER NOT NULL,
            PRIMARY KEY (pass, region)
        ) STRICT, WITHOUT ROWID;
        CREATE INDEX region_pass_t ON region_pass (t);
        CREATE TABLE region_daily (
            day    INTEGER NOT NULL,           -- unix day (t / 86400)
            region INTEGER NOT NULL,
            b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
            b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
            sectors INTEGER NOT NULL,          -- sectors read (the pass's coverage of the region)
            errors INTEGER NOT NULL, sum_us INTEGER NOT NULL, max_us INTEGER NOT NULL,
            PRIMARY KEY (day, region)
        ) STRICT, WITHOUT ROWID;
        CREATE TABLE region_monthly (
            month  INTEGER NOT NULL,           -- year * 12 + month - 1
            region INTEGER NOT NULL,
            b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
            b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
            sectors INTEGER NOT NULL,          -- sectors read (the pass's coverage of the region)
            errors INTEGER NOT NULL, sum_us INTEGER NOT NULL, max_us INTEGER NOT NULL,
            PRIMARY KEY (month, region)
        ) STRICT, WITHOUT ROWID;
        -- The whole device per day (all regions), kept for ever: a few hundred rows a year.
        CREATE TABLE device_daily (
            day    INTEGER PRIMARY KEY,
            b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
            b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, b6 INTEGER NOT NULL, b7 INTEGER NOT NULL,
            sectors INTEGER NOT NULL,          -- sectors read (the pass's coverage of the region)
            errors INTEGER NOT NULL, sum_us INTEGER NOT NULL, max_us INTEGER NOT NULL
        ) STRICT;
        -- Per-sector events, from user I/O and from the scanner.
        CREATE TABLE sector_event (
            id         INTEGER PRIMARY KEY,
            t          INTEGER NOT NULL,       -- unix seconds
            lba        INTEGER NOT NULL,
            kind       TEXT NOT NULL CHECK (kind IN ('read-error', 'write-error', 'slow-read', 'pending',
                                                     'remap', 'heal')),
            latency_us INTEGER,
            source     TEXT NOT NULL CHECK (source IN ('user', 'scan', 'admin')),
            detail     TEXT
        ) STRICT;
        CREATE INDEX sector_event_t ON sector_event (t);
        CREATE INDEX sector_event_lba ON sector_event (lba);
        -- Daily counts of events older than the raw window.
        CREATE TABLE event_daily (
            day   INTEGER NOT NULL,
            kind  TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (day, kind)
        ) STRICT, WITHOUT ROWID;
    )sql");
}

void create_v5(Connection& c) {
    c.exec(R"sql(
        -- Mean read latency of a bucket row, in microseconds.
        CREATE VIEW region_latency AS
            SELECT 'pass' AS tier, t / 86400 AS day, region,
                   (b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7) AS reads, errors,
                   sum_us * 1.0 / max(1, b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7) AS mean_us, max_us
            FROM region_pass
            UNION ALL
            SELECT 'daily', day, region, (b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7), errors,
                   sum_us * 1.0 / max(1, b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7), max_us
            FROM region_daily;
        -- Regions whose mean scanner read latency over the last 7 days is 20 % above the 7 days
        -- before, or that had more errors (copy the query and change the 7s for another window).
        -- Reads the raw tier through its time index and the daily tier by its key.
        CREATE VIEW regions_getting_worse AS
            WITH latest(tmax) AS (SELECT max(t) FROM region_pass),
            w AS (
                SELECT region, t > tmax - 7 * 86400 AS recent,
                       b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7 AS reads, sum_us, errors
                FROM region_pass, latest WHERE t > tmax - 14 * 86400
                UNION ALL
                SELECT region, day * 86400 > tmax - 7 * 86400,
                       b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7, sum_us, errors
                FROM region_daily, latest WHERE day > (tmax - 14 * 86400) / 86400
            ),
            agg AS (
                SELECT region,
                       sum(sum_us) FILTER (WHERE NOT recent) * 1.0 / max(1, sum(reads) FILTER (WHERE NOT recent)) AS before_us,
                       sum(sum_us) FILTER (WHERE recent) * 1.0 / max(1, sum(reads) FILTER (WHERE recent)) AS recent_us,
                       coalesce(sum(errors) FILTER (WHERE NOT recent), 0) AS before_errors,
                       coalesce(sum(errors) FILTER (WHERE recent), 0) AS recent_errors,
                       count(*) FILTER (WHERE NOT recent) AS before_rows
                FROM w GROUP BY region
            )
            SELECT region, region * 134217728 AS first_byte, round(before_us) AS before_us,
                   round(recent_us) AS recent_us, round(recent_us / max(before_us, 1), 2) AS ratio,
                   before_errors, recent_errors
            FROM agg
            WHERE before_rows > 0 AND (recent_us > 1.2 * before_us OR recent_errors > before_errors)
            ORDER BY ratio DESC;
        -- Sectors with errors (or pending, remapped) in the last 24 hours.
        CREATE VIEW recent_sector_errors AS
            SELECT lba, kind, count(*) AS events, datetime(min(t), 'unixepoch') AS first,
                   datetime(max(t), 'unixepoch') AS last, group_concat(DISTINCT source) AS sources
            FROM sector_event
            WHERE t >= (SELECT max(t) FROM sector_event) - 86400 AND kind != 'heal'
            GROUP BY lba, kind ORDER BY max(t) DESC;
        -- Scan coverage and pass history.
        CREATE VIEW scan_history AS
            SELECT p.pass, datetime(p.started, 'unixepoch') AS started,
                   datetime(p.finished, 'unixepoch') AS finished, p.finished - p.started AS seconds,
                   p.sectors, round(100.0 * p.sectors / d.image_sectors, 2) AS coverage_pct,
                   p.errors, p.slow, p.max_us
            FROM scan_pass p, device d ORDER BY p.pass;
        -- Device health per day: scanner reads, their mean and worst latency and errors, plus
        -- I/O errors, slow reads and remaps from the event log (raw and downsampled).
        CREATE VIEW device_health_daily AS
            WITH ev AS (SELECT t / 86400 AS day, kind, count(*) AS n FROM sector_event GROUP BY 1, 2
                        UNION ALL SELECT day, kind, count FROM event_daily)
            SELECT date(d.day * 86400, 'unixepoch') AS date,
                   d.b0 + d.b1 + d.b2 + d.b3 + d.b4 + d.b5 + d.b6 + d.b7 AS reads,
                   d.errors AS scan_errors,
                   round(d.sum_us * 1.0 / max(1, d.b0 + d.b1 + d.b2 + d.b3 + d.b4 + d.b5 + d.b6 + d.b7), 1) AS mean_us,
                   d.max_us,
                   d.b5 + d.b6 + d.b7 AS reads_over_16ms,
                   coalesce((SELECT sum(n) FROM ev WHERE ev.day = d.day AND kind IN ('read-error', 'write-error')), 0) AS io_errors,
                   coalesce((SELECT sum(n) FROM ev WHERE ev.day = d.day AND kind = 'slow-read'), 0) AS slow_reads,
                   coalesce((SELECT sum(n) FROM ev WHERE ev.day = d.day AND kind = 'remap'), 0) AS remaps
            FROM device_daily d ORDER BY d.day;
    )sql");
}

void create_v6(Connection& c) {
    c.exec(R"sql(
        -- One row per read-write mount of the daemon. stopped stays NULL while it runs; on an
        -- older row it means the daemon did not stop cleanly (crash, kill -9, power loss).
        CREATE TABLE mount_log (
            id         INTEGER PRIMARY KEY,
            started    INTEGER NOT NULL,   -- unix seconds
            stopped    INTEGER,            -- unix seconds, NULL: running or not stopped cleanly
            pid        INTEGER NOT NULL,
            version    TEXT    NOT NULL,   -- of the daemon
            mountpoint TEXT    NOT NULL
        ) STRICT;
    )sql");
}

void create_v7(Connection& c) {
    c.exec(R"sql(
        -- layout: 1 = label + slots (remapfs 0.1), 2 = two label copies + slot headers + slots.
        ALTER TABLE device ADD COLUMN layout INTEGER NOT NULL DEFAULT 1;
        -- Bumped by every committed change of the remap table and written to the label after
        -- it: a database whose generation is below the label's is an old copy and is refused.
        ALTER TABLE device ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
        -- 1 while a read-write session has the device open; still 1 at the next open means it
        -- did not end cleanly, and the slot headers are checked against the table.
        ALTER TABLE device ADD COLUMN dirty INTEGER NOT NULL DEFAULT 1 CHECK (dirty IN (0, 1));
        -- 0 from binding until the labels are on disk: an open that finds 0 finishes the job.
        ALTER TABLE device ADD COLUMN initialised INTEGER NOT NULL DEFAULT 1 CHECK (initialised IN (0, 1));
        -- What the backing is (sys/storage_id.hpp: a disk's WWN or serial, a file's inode); with
        -- a separate spare the backing carries no label, and this tells two same-size disks
        -- apart. NULL: not recorded yet.
        ALTER TABLE device ADD COLUMN backing_id TEXT;
    )sql");
}

}  // namespace

const std::vector<Migration>& schema_ladder() {
    static const std::vector<Migration> ladder = {
        {1, "device identity, spare allocator and remap table", create_v1},
        {2, "remap_list view", create_v2},
        {3, "pending sectors and retired spare slots", create_v3},
        {4, "scanner configuration, state, passes and health history", create_v4},
        {5, "health views", create_v5},
        {6, "mount log", create_v6},
        {7, "layout, commit generation and session state of the device", create_v7},
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
