#include "remapfs/health/pacer.hpp"

#include <algorithm>

namespace remapfs::health {

Pacer::Decision Pacer::next(block::Activity::Sample a, std::int64_t now_us, SectorSize ss,
                            std::uint32_t sectors_per_scan) const {
    Decision d;
    d.idle = a.in_flight == 0 && now_us - a.last_done_us >= kIdleWindowUs;
    if (d.idle) {
        d.sectors = SectorCount{sectors_per_scan};
        return d;
    }
    // Users are active: small reads at a guaranteed minimum rate, never starved, never more.
    d.sectors = SectorCount{std::clamp<std::uint64_t>(kBusyReadBytes / ss.bytes(), 1, sectors_per_scan)};
    d.wait_us = std::max<std::int64_t>(0, next_allowed_us_ - now_us);
    return d;
}

void Pacer::done(std::uint64_t bytes, std::int64_t started_us, bool idle, std::uint32_t intensity) {
    if (idle) {
        next_allowed_us_ = started_us;
        return;
    }
    // Token bucket: each busy read buys bytes/rate of time from when it started (or from when
    // the previous budget ran out, if later). A read slower than its budget costs no extra wait.
    const std::uint64_t rate = kRatePerIntensity * std::clamp<std::uint32_t>(intensity, 1, 10);
    next_allowed_us_ = std::max(next_allowed_us_, started_us) + static_cast<std::int64_t>(bytes * 1'000'000 / rate);
}

}  // namespace remapfs::health
