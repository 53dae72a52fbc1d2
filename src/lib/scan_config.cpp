#include "remapfs/health/scan_config.hpp"

#include "remapfs/parse.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace remapfs::health {
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

}  // namespace remapfs::health
