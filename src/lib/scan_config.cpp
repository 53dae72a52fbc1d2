#include "remapfs/health/scan_config.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace remapfs::health {
namespace {

std::uint32_t number(const std::string& key, const std::string& v, std::uint64_t lo, std::uint64_t hi) {
    std::size_t pos = 0;
    unsigned long long n = 0;
    try {
        n = std::stoull(v, &pos);
    } catch (const std::exception&) {
        pos = 0;
    }
    if (v.empty() || v[0] == '-' || pos != v.size() || n < lo || n > hi)
        throw std::invalid_argument(fmt::format("{}={} is not a whole number from {} to {}", key, v, lo, hi));
    return static_cast<std::uint32_t>(n);
}

bool boolean(const std::string& key, const std::string& v) {
    if (v == "on" || v == "1" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "0" || v == "no" || v == "false") return false;
    throw std::invalid_argument(fmt::format("{}={} is not on or off", key, v));
}

}  // namespace

const std::vector<std::string>& ScanConfig::keys() {
    static const std::vector<std::string> k = {"enabled",          "interval",  "sectors_per_scan", "intensity",
                                               "health_threshold", "staggered", "paused"};
    return k;
}

void ScanConfig::set(const std::string& key, const std::string& value) {
    if (key == "enabled") enabled = boolean(key, value);
    else if (key == "interval") interval_s = number(key, value, 60, 365u * 86400);  // seconds
    else if (key == "sectors_per_scan") sectors_per_scan = number(key, value, 1, 4096);
    else if (key == "intensity") intensity = number(key, value, 1, 10);
    else if (key == "health_threshold") health_threshold = number(key, value, 0, 1000);
    else if (key == "staggered") staggered = boolean(key, value);
    else if (key == "paused") paused = boolean(key, value);
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
