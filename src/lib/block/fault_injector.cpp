#include "remapfs/block/fault_injector.hpp"


#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace remapfs::block {
FaultInjector::FaultInjector(std::unique_ptr<BlockLayer> next, const Geometry& g, Clock& clock, std::uint64_t seed)
    : BlockLayer(std::move(next)), geometry_(g), clock_(clock), rng_(seed) {
    rules_.store(std::make_shared<const std::vector<FaultRule>>());
}

FaultInjector::Range FaultInjector::physical(const FaultRule& r) const {
    if (r.target == FaultRule::Target::image) return {r.first, r.last};
    const std::uint64_t ss = geometry_.sector_size.bytes();
    const std::uint64_t base = geometry_.slot_offset(SpareSlot{0}).v / ss;
    return {base + r.first, base + r.last};
}

Result<void> FaultInjector::check(FaultRule::Op op, ByteOffset off, ByteCount len) {
    const std::uint64_t n = ++ops_;
    auto rules = rules_.load();
    if (rules->empty()) return ok();
    const std::uint64_t ss = geometry_.sector_size.bytes();
    const std::uint64_t first = off.v / ss;
    const std::uint64_t last = (off.v + len.v - 1) / ss;
    std::uint32_t delay = 0;
    int error = 0;
    for (const FaultRule& r : *rules) {
        if (r.op != FaultRule::Op::both && r.op != op) continue;
        Range p = physical(r);
        if (p.last < first || p.first > last) continue;
        if (n <= r.after_ops) continue;
        if (r.from_time_s && clock_.now_s() < r.from_time_s) continue;
        if (r.probability < 1.0) {
            std::lock_guard lock(rng_mutex_);
            if (std::uniform_real_distribution<double>(0, 1)(rng_) >= r.probability) continue;
        }
        delay = std::max(delay, r.latency_us);
        if (r.error && !error) error = r.error;
    }
    if (delay) clock_.sleep_us(delay);
    if (error) {
        ++injected_;
        return Errno{error};
    }
    return ok();
}

void FaultInjector::set_hdd_model(std::optional<HddModel> m) {
    std::lock_guard lock(head_mutex_);
    hdd_ = m;
    hdd_on_ = m.has_value();
}

void FaultInjector::serve_like_hdd(ByteOffset off, std::uint64_t len) {
    std::lock_guard lock(head_mutex_);  // held while "serving": one request at a time
    if (!hdd_) return;
    const HddModel& m = *hdd_;
    double ms = static_cast<double>(len) / (m.seq_mb_s * 1000.0);
    if (off.v != head_pos_) {
        const double span = static_cast<double>(geometry_.physical_bytes().v);
        const double dist = static_cast<double>(off.v > head_pos_ ? off.v - head_pos_ : head_pos_ - off.v);
        ms += m.settle_ms + (m.max_seek_ms - m.settle_ms) * std::sqrt(dist / span) + m.rotation_ms / 2;
    }
    head_pos_ = off.v + len;
    clock_.sleep_us(static_cast<std::int64_t>(ms * 1000.0));
}

Result<void> FaultInjector::pread(std::span<std::byte> buf, ByteOffset off) {
    REMAPFS_TRY(check(FaultRule::Op::read, off, ByteCount{buf.size()}));
    if (hdd_on_.load(std::memory_order_relaxed)) serve_like_hdd(off, buf.size());
    return next_->pread(buf, off);
}

Result<void> FaultInjector::pwrite(std::span<const std::byte> buf, ByteOffset off) {
    REMAPFS_TRY(check(FaultRule::Op::write, off, ByteCount{buf.size()}));
    if (hdd_on_.load(std::memory_order_relaxed)) serve_like_hdd(off, buf.size());
    return next_->pwrite(buf, off);
}

Result<void> FaultInjector::pwrite_durable(std::span<const std::byte> buf, ByteOffset off) {
    REMAPFS_TRY(check(FaultRule::Op::write, off, ByteCount{buf.size()}));
    if (hdd_on_.load(std::memory_order_relaxed)) serve_like_hdd(off, buf.size());
    return next_->pwrite_durable(buf, off);
}

Result<void> FaultInjector::discard(ByteOffset off, ByteCount len) {
    REMAPFS_TRY(check(FaultRule::Op::write, off, len));
    return next_->discard(off, len);
}

void FaultInjector::add(const FaultRule& r) {
    std::lock_guard lock(edit_mutex_);
    auto v = std::make_shared<std::vector<FaultRule>>(*rules_.load());
    v->push_back(r);
    rules_.store(std::move(v));
}

void FaultInjector::clear() {
    std::lock_guard lock(edit_mutex_);
    rules_.store(std::make_shared<const std::vector<FaultRule>>());
}

std::vector<FaultRule> FaultInjector::rules() const { return *rules_.load(); }

}  // namespace remapfs::block
