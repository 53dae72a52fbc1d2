#pragma once
// How fast the scanner may go, decided like ZFS and md do it (reference/health-anchors.md):
// full speed only after the image has been idle for a window (ZFS: 5 completions; SAS BMS:
// 500 ms), otherwise a guaranteed minimum rate (md: 1000 KiB/s) with one scanner read in flight
// (ZFS scrub min_active = 1). While users are busy the reads are few and large rather than many
// and small: on a disk that seeks, each scanner read costs a user request's seek, so 1 MiB once
// a second costs about 2 % of a 7200 rpm disk's random IOPS where 16 x 64 KiB cost 20 %. Pure
// logic against an injected clock and an activity sample, so it is unit-tested without I/O.

#include "remapfs/block/activity.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/core/units.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace remapfs::health {

class Pacer {
public:
    static constexpr std::int64_t kIdleWindowUs = 500'000;
    static constexpr std::uint64_t kRatePerIntensity = 256 << 10;  // bytes/s while users are active
    static constexpr std::uint64_t kBusyReadBytes = 1 << 20;       // the largest read while busy

    struct Decision {
        std::int64_t wait_us = 0;   // sleep this long first (0: go)
        SectorCount sectors;        // then read at most this many
        bool idle = false;
    };

    // sectors_per_scan: the configured read size.
    Decision next(block::Activity::Sample a, std::int64_t now_us, SectorSize ss, std::uint32_t sectors_per_scan) const;
    // A read of `bytes` that started at started_us has finished. Intensity 1..10 scales the
    // busy rate: 256 KiB/s per step (the default 3 is 768 KiB/s, about md's floor).
    void done(std::uint64_t bytes, std::int64_t started_us, bool idle, std::uint32_t intensity);

private:
    std::int64_t next_allowed_us_ = 0;  // busy-mode token bucket
};

}  // namespace remapfs::health
