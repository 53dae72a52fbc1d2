#pragma once
// Time is injected: fault rules, retries, scanning and health scoring read it from a Clock so a
// simulator can run a year in seconds and unit tests control every tick.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace remapfs {

class Clock {
public:
    virtual ~Clock() = default;
    virtual std::int64_t now_us() const = 0;  // microseconds since the unix epoch
    virtual void sleep_us(std::int64_t us) = 0;
    std::int64_t now_s() const { return now_us() / 1'000'000; }
};

class SystemClock final : public Clock {
public:
    std::int64_t now_us() const override {
        return std::chrono::duration_cast<std::chrono::microseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    void sleep_us(std::int64_t us) override { std::this_thread::sleep_for(std::chrono::microseconds(us)); }
    static SystemClock& instance() {
        static SystemClock c;
        return c;
    }
};

// Sleeping advances it; nothing else does unless a test says so.
class FakeClock final : public Clock {
public:
    explicit FakeClock(std::int64_t start_us = 1'700'000'000'000'000) : now_(start_us) {}
    std::int64_t now_us() const override { return now_.load(); }
    void sleep_us(std::int64_t us) override { now_ += us; }
    void advance_us(std::int64_t us) { now_ += us; }

private:
    std::atomic<std::int64_t> now_;
};

}  // namespace remapfs
