#pragma once
// What the database keeps, as values: the sector events the remap machinery and the scanner
// report, the per-region latency classes of a pass, the scanner's position, passes and knobs.
// The history writer (health/history.hpp) and the store (db/store.hpp) write them; the SQL
// tables they land in are in db/schema.cpp.

#include "remapfs/core/units.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace remapfs::db {

enum class EventKind { read_error, write_error, slow_read, pending, remap, heal };
enum class Source { user, scan, admin };

// As stored in sector_event.kind and .source (what sqlite3 users see).
const char* to_string(EventKind k);
const char* to_string(Source s);

// Why a sector was remapped; stored as text in remap.reason (what sqlite3 users read).
enum class RemapReason { manual, write_error, rewrite_pending, read_errors, slow_reads, recovered, bench };
const char* to_string(RemapReason r);
std::optional<RemapReason> remap_reason_from(std::string_view text);

struct SectorEvent {
    std::int64_t t = 0;  // unix seconds
    Lba lba;
    EventKind kind = EventKind::read_error;
    std::int64_t latency_us = -1;  // -1: not measured
    Source source = Source::user;
    std::string detail;
};

inline constexpr int kRawDays = 15;
inline constexpr int kDailyDays = 90;
inline constexpr int kEventDays = 90;
inline constexpr int kBuckets = 8;
// Upper bounds of the latency classes in microseconds (hdck's 7200 rpm classes plus one for
// solid-state); the last class is everything slower.
inline constexpr std::array<std::int64_t, kBuckets - 1> kBucketUpperUs = {500, 2100, 4200, 8300, 16700, 33300, 50000};
int bucket_of(std::int64_t us);

struct RegionStats {
    std::uint64_t pass = 0;
    std::uint64_t region = 0;
    std::int64_t t = 0;
    std::array<std::uint64_t, kBuckets> buckets{};
    std::uint64_t sectors = 0;  // read (or attempted) in this pass
    std::uint64_t errors = 0;
    std::uint64_t sum_us = 0;
    std::uint64_t max_us = 0;
    std::uint64_t reads() const;
    void add(std::int64_t us);
};

struct ScanCheckpoint {
    std::uint64_t pass = 0;
    std::uint64_t cursor = 0;
    std::int64_t pass_started = 0;
    std::uint64_t total_scans = 0;
    std::uint64_t warnings_issued = 0;
};

struct PassRecord {
    std::uint64_t pass = 0;
    std::int64_t started = 0;
    std::int64_t finished = 0;  // 0: still running
    std::uint64_t sectors = 0, errors = 0, slow = 0, max_us = 0;
};

// The scanner's knobs (the seed's: enable, interval, sectors per scan, intensity 1-10, health
// threshold) plus the staggered order and pause. Persisted in scan_config; every change goes
// through set(), which refuses out-of-range values with a one-line reason.
struct ScanConfig {
    bool enabled = true;
    std::uint32_t interval_s = 86400;      // from one pass's start to the next's
    std::uint32_t sectors_per_scan = 256;  // sectors per scanner read when the image is idle
    std::uint32_t intensity = 3;           // 1..10: busy rate 256 KiB/s per step
    std::uint32_t health_threshold = 700;  // 0..1000: a region scoring below it raises a warning
    bool staggered = false;                // regions x segments order
    bool paused = false;

    // key=value from the command line; throws std::invalid_argument.
    void set(const std::string& key, const std::string& value);
    static const std::vector<std::string>& keys();
    std::string get(const std::string& key) const;
};

}  // namespace remapfs::db
