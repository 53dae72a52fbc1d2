#include "remapfs/health/score.hpp"

#include <algorithm>

namespace remapfs::health {

int region_score(std::uint64_t reads, std::uint64_t errors, std::uint64_t slow, std::uint64_t very_slow) {
    const double n = static_cast<double>(std::max<std::uint64_t>(1, reads));
    double score = 1000.0 - 250.0 * static_cast<double>(errors) - 1000.0 * static_cast<double>(very_slow) / n -
                   500.0 * static_cast<double>(slow) / n;
    return static_cast<int>(std::clamp(score, 0.0, 1000.0));
}

int region_score(const db::RegionStats& r) {
    // >= 50 ms is very slow, 16.7-50 ms slow.
    return region_score(r.reads(), r.errors, r.buckets[5] + r.buckets[6], r.buckets[7]);
}

}  // namespace remapfs::health
