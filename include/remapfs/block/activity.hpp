#pragma once
// User I/O in flight, and when the last request finished: counted by the remap layer around
// every user request, read by the scanner's pacer to tell an idle image from a busy one. Kept
// per thread, so requests on different CPUs never write the same cache line; a sample adds the
// threads' counts up.

#include "remapfs/core/clock.hpp"
#include "remapfs/core/per_thread.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace remapfs::block {

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

}  // namespace remapfs::block
