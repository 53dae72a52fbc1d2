#include "remapfs/db/records.hpp"

#include "remapfs/core/parse.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace remapfs::db {

const char* to_string(EventKind k) {
    switch (k) {
    case EventKind::read_error: return "read-error";
    case EventKind::write_error: return "write-error";
    case EventKind::slow_read: return "slow-read";
    case EventKind::pending: return "pending";
    case EventKind::remap: return "remap";
    case EventKind::heal: return "heal";
    }
    return "?";
}

const char* to_string(RemapReason r) {
    switch (r) {
    case RemapReason::manual: return "manual";
    case RemapReason::write_error: return "write-error";
    case RemapReason::rewrite_pending: return "rewrite-pending";
    case RemapReason::read_errors: return "read-errors";
    case RemapReason::slow_reads: return "slow-reads";
    case RemapReason::recovered: return "recovered";
    case RemapReason::bench: return "bench";
    }
    return "?";
}

std::optional<RemapReason> remap_reason_from(std::string_view text) {
    for (RemapReason r : {RemapReason::manual, RemapReason::write_error, RemapReason::rewrite_pending,
                          RemapReason::read_errors, RemapReason::slow_reads, RemapReason::recovered, RemapReason::bench})
        if (text == to_string(r)) return r;
    return std::nullopt;
}

const char* to_string(Source s) {
    switch (s) {
    case Source::user: return "user";
    case Source::scan: return "scan";
    case Source::admin: return "admin";
    }
    return "?";
}

int bucket_of(std::int64_t us) {
    for (int i = 0; i < kBuckets - 1; ++i)
        if (us < kBucketUpperUs[static_cast<std::size_t>(i)]) return i;
    return kBuckets - 1;
}

std::uint64_t RegionStats::reads() const {
    std::uint64_t n = 0;
    for (auto b : buckets) n += b;
    return n;
}

void RegionStats::add(std::int64_t us) {
    ++buckets[static_cast<std::size_t>(bucket_of(us))];
    sum_us += static_cast<std::uint64_t>(us);
    max_us = std::max<std::uint64_t>(max_us, static_cast<std::uint64_t>(us));
}

namespace {

std::uint32_t number(const std::string& key, const std::string& v, std::uint64_t lo, std::uint64_t hi) {
    return static_cast<std::uint32_t>(parse_uint(key, v, lo, hi));
}

}  // namespace

const std::vector<std::string>& ScanConfig::keys() {
    static const std::vector<std::string> k = {"enabled",          "interval",  "sectors_per_scan", "intensity",
                                               "health_threshold", "staggered", "paused"};
    return k;
}

void ScanConfig::set(const std::string& key, const std::string& value) {
    if (key == "enabled") enabled = parse_bool(key, value);
    else if (key == "interval") interval_s = number(key, value, 60, 365u * 86400);  // seconds
    else if (key == "sectors_per_scan") sectors_per_scan = number(key, value, 1, 4096);
    else if (key == "intensity") intensity = number(key, value, 1, 10);
    else if (key == "health_threshold") health_threshold = number(key, value, 0, 1000);
    else if (key == "staggered") staggered = parse_bool(key, value);
    else if (key == "paused") paused = parse_bool(key, value);
    else
        throw std::invalid_argument(fmt::format("unknown scan setting '{}' (enabled, interval, sectors_per_scan, "
                                                "intensity, health_threshold, staggered, paused)", key));
}

std::string ScanConfig::get(const std::string& key) const {
    if (key == "enabled") return enabled ? "on" : "off";
    if (key == "interval") return std::to_string(interval_s);
    if (key == "sectors_per_scan") return std::to_string(sectors_per_scan);
    if (key == "intensity") return std::to_string(intensity);
    if (key == "health_threshold") return std::to_string(health_threshold);
    if (key == "staggered") return staggered ? "on" : "off";
    if (key == "paused") return paused ? "on" : "off";
    throw std::invalid_argument(fmt::format("unknown scan setting '{}'", key));
}

}  // namespace remapfs::db
