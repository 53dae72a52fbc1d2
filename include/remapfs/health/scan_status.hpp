#pragma once
// Where the scanner is, as values: from the live scanner, or from the database alone when no
// daemon runs. scan_status_json.hpp turns it into what `remapctl scan --json` prints.

#include "remapfs/db/records.hpp"
#include "remapfs/health/scan_order.hpp"

#include <cstdint>
#include <optional>

namespace remapfs::health {

enum class ScanState { disabled, paused, rescanning, scanning, waiting, no_daemon };
const char* to_string(ScanState s);  // "stopped (no daemon)" for no_daemon

struct ScanStatus {
    ScanState state = ScanState::waiting;
    std::uint64_t pass = 0;
    std::uint64_t position = 0;
    std::uint64_t positions = 0;
    double percent = 100.0;
    std::uint64_t total_scans = 0;
    std::uint64_t warnings_issued = 0;
    db::ScanConfig config;
    std::optional<std::int64_t> next_pass_at;  // unix seconds, between passes
    struct Live {                               // only a running scanner knows these
        std::uint64_t rate_bytes_per_s = 0;
        std::uint64_t pass_errors = 0;
        std::uint64_t pass_slow_reads = 0;
        std::uint64_t rescanned_sectors = 0;
        bool cache_bypassed = true;
        std::optional<std::int64_t> eta_s;
    };
    std::optional<Live> live;
};

// What the database says, with no daemon to ask.
ScanStatus stored_scan_status(const db::ScanConfig& c, const db::ScanCheckpoint& st, const ScanOrder& order);

}  // namespace remapfs::health
