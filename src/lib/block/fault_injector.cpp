#include "remapfs/block/fault_injector.hpp"

#include "remapfs/core/parse.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>

namespace remapfs::block {
namespace {

using nlohmann::json;

struct ErrnoName {
    const char* name;
    int value;
};
constexpr ErrnoName kErrnos[] = {{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EROFS", EROFS}, {"ENOMEM", ENOMEM},
                                 {"ETIMEDOUT", ETIMEDOUT}, {"EAGAIN", EAGAIN}, {"EPERM", EPERM}, {"ENODEV", ENODEV},
                                 {"EINVAL", EINVAL}, {"EBADMSG", EBADMSG}, {"ENODATA", ENODATA}};

int parse_errno(const std::string& s) {
    if (s == "none" || s == "0") return 0;
    for (const auto& e : kErrnos)
        if (s == e.name) return e.value;
    throw std::invalid_argument(fmt::format("errno '{}' is not one of EIO, ENOSPC, EROFS, ENOMEM, ETIMEDOUT, EAGAIN, "
                                            "EPERM, ENODEV, EINVAL, EBADMSG, ENODATA, none", s));
}

std::string errno_str(int e) {
    for (const auto& n : kErrnos)
        if (n.value == e) return n.name;
    return e == 0 ? "none" : std::to_string(e);
}

}  // namespace

FaultRule FaultRule::from_json(const json& j) try {
    if (!j.is_object()) throw std::invalid_argument("a fault rule must be a JSON object");
    static const std::set<std::string> known = {"sectors", "target", "op", "errno", "latency_ms", "latency_us",
                                                "probability", "after_ops", "at"};
    for (const auto& [k, v] : j.items())
        if (!known.count(k)) throw std::invalid_argument(fmt::format("unknown fault rule key '{}'", k));
    FaultRule r;
    if (!j.contains("sectors")) throw std::invalid_argument("a fault rule needs \"sectors\" (N or FIRST-LAST)");
    const json& s = j.at("sectors");
    if (s.is_number_integer() && s.get<std::int64_t>() < 0) throw std::invalid_argument("sectors must not be negative");
    std::string spec = s.is_number_integer() ? std::to_string(s.get<std::uint64_t>()) : s.get<std::string>();
    auto dash = spec.find('-');
    r.first = parse_uint("sector", spec.substr(0, dash));
    r.last = dash == std::string::npos ? r.first : parse_uint("sector", spec.substr(dash + 1));
    if (r.last < r.first) throw std::invalid_argument(fmt::format("sector range '{}' is backwards", spec));
    std::string target = j.value("target", "image");
    if (target == "image") r.target = Target::image;
    else if (target == "spare") r.target = Target::spare;
    else throw std::invalid_argument(fmt::format("target '{}' is not image or spare", target));
    std::string op = j.value("op", "both");
    if (op == "read") r.op = Op::read;
    else if (op == "write") r.op = Op::write;
    else if (op == "both") r.op = Op::both;
    else throw std::invalid_argument(fmt::format("op '{}' is not read, write or both", op));
    r.error = j.contains("errno") ? parse_errno(j.at("errno").get<std::string>()) : EIO;
    double lat_us = j.contains("latency_us") ? j.at("latency_us").get<double>()
                                              : j.value("latency_ms", 0.0) * 1000.0;
    if (lat_us < 0 || lat_us > 60e6) throw std::invalid_argument("latency must be between 0 and 60 s");
    r.latency_us = static_cast<std::uint32_t>(lat_us);
    r.probability = j.value("probability", 1.0);
    if (!(r.probability > 0 && r.probability <= 1)) throw std::invalid_argument("probability must be in (0, 1]");
    r.after_ops = j.value("after_ops", std::uint64_t{0});
    r.from_time_s = j.value("at", std::int64_t{0});
    if (r.error == 0 && r.latency_us == 0) throw std::invalid_argument("a rule with errno none needs a latency");
    return r;
} catch (const json::exception& e) {
    throw std::invalid_argument(fmt::format("fault rule {}: a value has the wrong type", j.dump()));
}

json FaultRule::to_json() const {
    return {{"sectors", first == last ? std::to_string(first) : fmt::format("{}-{}", first, last)},
            {"target", target == Target::image ? "image" : "spare"},
            {"op", op == Op::read ? "read" : op == Op::write ? "write" : "both"},
            {"errno", errno_str(error)},
            {"latency_us", latency_us},
            {"probability", probability},
            {"after_ops", after_ops},
            {"at", from_time_s}};
}

std::vector<FaultRule> load_fault_rules(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error(fmt::format("cannot read fault rules {}: {}", path, std::strerror(errno)));
    json j = json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.is_array())
        throw std::runtime_error(fmt::format("fault rules {}: not a JSON array of rules", path));
    std::vector<FaultRule> rules;
    for (std::size_t i = 0; i < j.size(); ++i) {
        try {
            rules.push_back(FaultRule::from_json(j[i]));
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("fault rules {}: rule {}: {}", path, i + 1, e.what()));
        }
    }
    return rules;
}

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
