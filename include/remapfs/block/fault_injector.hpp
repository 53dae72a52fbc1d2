#pragma once
// Fault injection for tests and simulation (nbdkit error filter shape): bad sectors by range,
// per operation, with an errno, added latency, a probability and a start condition (after N
// operations, or from a time on). It sits just above the backing and works in physical sectors,
// so it can fail image sectors and spare slots alike. The daemon puts it in the stack only with
// -o allow_inject: it cannot be switched on by accident on a production mount.

#include "remapfs/block/layer.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/block/geometry.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace remapfs::block {

struct FaultRule {
    enum class Op { read, write, both };
    enum class Target { image, spare };  // first/last are LBAs, or spare slot numbers

    Target target = Target::image;
    std::uint64_t first = 0;
    std::uint64_t last = 0;  // inclusive
    Op op = Op::both;
    int error = EIO;         // 0: latency only
    std::uint32_t latency_us = 0;
    double probability = 1.0;
    std::uint64_t after_ops = 0;  // active once this many requests went through the injector
    std::int64_t from_time_s = 0; // active from this unix time (0: at once)

    // Rules are read and written as JSON in fault_rule_json.hpp.
};

// HDD-like service times for benchmarks: one actuator (requests are served one at a time), a
// seek that grows with the square root of the distance, half a rotation for any non-sequential
// request, and a sequential transfer rate. On a cached virtio disk nothing else makes the
// contention between the scanner and users real.
struct HddModel {
    double seq_mb_s = 150;      // 10^6 bytes per second
    double max_seek_ms = 8;     // full stroke
    double settle_ms = 0.5;     // shortest seek
    double rotation_ms = 8.33;  // 7200 rpm
};

class FaultInjector final : public BlockLayer {
public:
    FaultInjector(std::unique_ptr<BlockLayer> next, const Geometry& g, Clock& clock, std::uint64_t seed = 1);

    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override;
    Result<void> pwrite(std::span<const std::byte> buf, ByteOffset off) override;
    Result<void> pwrite_durable(std::span<const std::byte> buf, ByteOffset off) override;
    Result<void> discard(ByteOffset off, ByteCount len) override;

    void set_hdd_model(std::optional<HddModel> m);
    void add(const FaultRule& r);
    void clear();
    std::vector<FaultRule> rules() const;
    std::uint64_t injected() const { return injected_; }

private:
    struct Range {
        std::uint64_t first, last;  // physical sectors, inclusive
    };
    Result<void> check(FaultRule::Op op, ByteOffset off, ByteCount len);
    Range physical(const FaultRule& r) const;

    Geometry geometry_;
    Clock& clock_;
    std::atomic<std::shared_ptr<const std::vector<FaultRule>>> rules_;
    std::mutex edit_mutex_;  // serialises add/clear
    std::mutex rng_mutex_;   // taken only for rules with probability < 1
    std::mt19937_64 rng_;
    std::atomic<std::uint64_t> ops_{0};
    std::atomic<std::uint64_t> injected_{0};
    std::atomic<bool> hdd_on_{false};  // fast check on every request
    std::optional<HddModel> hdd_;      // guarded by head_mutex_
    std::mutex head_mutex_;          // the one actuator
    std::uint64_t head_pos_ = 0;     // guarded by head_mutex_: byte after the last request
    void serve_like_hdd(ByteOffset off, std::uint64_t len);
};

}  // namespace remapfs::block
