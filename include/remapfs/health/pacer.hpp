#pragma once
// How fast the scanner may go, decided like ZFS and md do it (reference/health-anchors.md):
// full speed only after the image has been idle for a window (ZFS: 5 completions; SAS BMS:
// 500 ms), otherwise a guaranteed minimum rate (md: 1000 KiB/s) with one scanner read in flight
// (ZFS scrub min_active = 1). While users are busy the reads are few and large rather than many
// and small: on a disk that seeks, each scanner read costs a user request's seek, so 1 MiB once
// a second costs about 2 % of a 7200 rpm disk's random IOPS where 16 x 64 KiB cost 20 %. Pure
// logic against an injected clock and an activity sample, so it is unit-tested without I/O.

#include "remapfs/clock.hpp"
#include "remapfs/per_thread.hpp"
#include "remapfs/units.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace remapfs::health {

// User I/O in flight and when the last one finished; updated by the remap layer on every
// user request, read by the scanner. Kept per thread so requests on different CPUs never write
// the same cache line; a sample adds the threads' counts up.
class Activity {
public:
    explicit Activity(Clock& clock) : clock_(clock) {}
    void begin() {
        Counts& c = counts_.local();
        c.in_flight.store(c.in_flight.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    void end() {
        Counts& c = counts_.local();
        c.last_done_us.store(clock_.now_us(), std::memory_order_relaxed);
        c.in_flight.store(c.in_flight.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    }
    struct Sample {
        std::uint32_t in_flight = 0;
        std::int64_t last_done_us = 0;
    };
    Sample sample() const {
        Sample s;
        counts_.for_each([&](const Counts& c) {
            s.in_flight += c.in_flight.load(std::memory_order_relaxed);
            s.last_done_us = std::max(s.last_done_us, c.last_done_us.load(std::memory_order_relaxed));
        });
        return s;
    }

    class Scope {
    public:
        explicit Scope(Activity* a) : a_(a) { if (a_) a_->begin(); }
        ~Scope() { if (a_) a_->end(); }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        Activity* a_;
    };

private:
    struct Counts {
        std::atomic<std::uint32_t> in_flight{0};  // written only by its own thread
        std::atomic<std::int64_t> last_done_us{0};
    };
    Clock& clock_;
    PerThread<Counts> counts_;
};

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
    Decision next(Activity::Sample a, std::int64_t now_us, SectorSize ss, std::uint32_t sectors_per_scan) const;
    // A read of `bytes` that started at started_us has finished. Intensity 1..10 scales the
    // busy rate: 256 KiB/s per step (the default 3 is 768 KiB/s, about md's floor).
    void done(std::uint64_t bytes, std::int64_t started_us, bool idle, std::uint32_t intensity);

private:
    std::int64_t next_allowed_us_ = 0;  // busy-mode token bucket
};

}  // namespace remapfs::health
