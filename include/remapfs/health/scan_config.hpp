#pragma once
// The scanner's knobs (the seed's: enable, interval, sectors per scan, intensity 1-10, health
// threshold) plus the staggered order and pause. Persisted in scan_config; every change goes
// through set(), which refuses out-of-range values with a one-line reason.

#include <cstdint>
#include <string>
#include <vector>

namespace remapfs::health {

struct ScanConfig {
    bool enabled = true;
    std::uint32_t interval_s = 86400;      // from one pass's start to the next's
    std::uint32_t sectors_per_scan = 256;  // sectors per scanner read when the image is idle
    std::uint32_t intensity = 3;           // 1..10: busy rate 1 MiB/s per step
    std::uint32_t health_threshold = 700;  // 0..1000: a region scoring below it raises a warning
    bool staggered = false;                // regions x segments order (SDG10)
    bool paused = false;

    // key=value from the command line; throws std::invalid_argument.
    void set(const std::string& key, const std::string& value);
    static const std::vector<std::string>& keys();
    std::string get(const std::string& key) const;
};

}  // namespace remapfs::health
