#include "remapfs/control/control.hpp"

#include "remapfs/block/fault_rule_json.hpp"
#include "remapfs/core/unique_fd.hpp"
#include "remapfs/db/report.hpp"
#include "remapfs/health/scan_status_json.hpp"
#include "remapfs/sys/io.hpp"
#include "remapfs/control/verify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <cstring>
#include <stdexcept>

namespace remapfs::control {
namespace {

json failure(int err, std::string msg) { return {{"ok", false}, {"errno", err}, {"error", std::move(msg)}}; }

std::string remap_error(int err, std::uint64_t lba, const Geometry& g) {
    switch (err) {
    case EEXIST: return fmt::format("sector {} is already remapped", lba);
    case ENOENT: return fmt::format("sector {} is not remapped", lba);
    case ENOSPC: return "the spare area is exhausted";
    case EINVAL: return fmt::format("sector {} is outside the image ({} sectors)", lba, g.image_sectors.v);
    case EROFS: return "the instance is read-only";
    default: return fmt::format("sector {}: {}", lba, errno_name(err));
    }
}

}  // namespace

json status_json(const db::DeviceIdentity& id, const std::string& db_path, const remap::SpareUsage& u,
                 std::uint64_t generation) {
    const Geometry g = id.geometry();
    const std::uint64_t image_bytes = g.image_bytes().v;
    return {
        {"uuid", id.uuid},
        {"db", db_path},
        {"backing", id.backing_path},
        {"backing_bytes", id.backing_bytes.v},
        {"spare_path", id.spare_path ? json(*id.spare_path) : json(nullptr)},
        {"spare_offset", id.spare_offset.v},
        // Slot k of the spare is at byte slots_offset + k * sector_size of its file.
        {"slots_offset", id.spare_offset.v + (g.slot_offset(SpareSlot{0}).v - g.label_offset().v)},
        {"layout", id.layout},
        {"generation", generation},
        // False where a slot header or label write failed: remapctl recover would then miss
        // changes since; the next mount rewrites them from the table.
        {"spare_records_current", !u.records_behind},
        {"sector_size", id.sector_size},
        {"image_sectors", id.image_sectors.v},
        {"image_bytes", image_bytes},
        {"spare_slots_total", u.total},
        {"spare_slots_used", u.used},
        {"spare_slots_retired", u.retired},
        {"spare_slots_free", u.free()},
        {"remaps", u.used},
        {"pending", u.pending},
        {"state", u.exhausted() ? "spare-exhausted" : u.failing ? "spare-failing" : u.pending ? "degraded" : "ok"},
    };
}

remap::SpareUsage usage_from_store(db::Store& s) {
    auto id = s.identity();
    remap::SpareUsage u;
    u.total = id ? id->spare_slots.v : 0;
    u.used = s.remap_count();
    u.retired = s.allocator().retired;
    u.pending = s.pending().size();
    return u;
}

namespace {

json inject(const Target& in, const json& req) {
    block::FaultInjector* inj = in.injector;
    if (!inj) return failure(EPERM, "fault injection is off on this mount (it needs -o allow_inject)");
    const std::string action = req.value("action", "");
    if (action == "add") {
        try {
            inj->add(block::fault_rule_from_json(req.at("rule")));
        } catch (const std::exception& e) {
            return failure(EINVAL, e.what());
        }
        return {{"ok", true}};
    }
    if (action == "clear") {
        inj->clear();
        return {{"ok", true}};
    }
    if (action == "list") {
        json rules = json::array();
        for (const auto& r : inj->rules()) rules.push_back(block::to_json(r));
        return {{"ok", true}, {"rules", rules}, {"injected", inj->injected()}};
    }
    return failure(EINVAL, fmt::format("unknown inject action '{}'", action));
}

json scan(const Target& in, const json& req) {
    // Requests come from several control workers: a read-modify-write of the settings at a time.
    static std::mutex settings;
    std::lock_guard lock(settings);
    health::Scanner* sc = in.scanner;
    if (!sc) return failure(EPERM, "this mount runs no scanner (-o noscan or read-only)");
    const std::string action = req.value("action", "status");
    try {
        if (action == "status") {
            json r = health::to_json(sc->status());
            r["ok"] = true;
            return r;
        }
        if (action == "start") sc->start_pass_now();
        else if (action == "stop") sc->stop();
        else sc->configure(apply_scan_action(sc->config(), req));
    } catch (const std::invalid_argument& e) {
        return failure(EINVAL, e.what());
    }
    json r = health::to_json(sc->status());
    r["ok"] = true;
    return r;
}

}  // namespace

health::ScanConfig apply_scan_action(health::ScanConfig c, const json& req) {
    const std::string action = req.value("action", "status");
    if (action == "pause") c.paused = true;
    else if (action == "resume") c.paused = false;
    else if (action == "start") c.enabled = true, c.paused = false;
    else if (action == "stop") c.enabled = false;
    else if (action == "set") {
        if (!req.contains("settings") || !req["settings"].is_object() || req["settings"].empty())
            throw std::invalid_argument("scan set needs KEY=VALUE settings");
        for (const auto& [k, v] : req["settings"].items()) c.set(k, v.is_string() ? v.get<std::string>() : v.dump());
    } else if (action != "status") {
        throw std::invalid_argument(fmt::format("unknown scan action '{}'", action));
    }
    return c;
}

json scan_status_from_store(db::Store& s, const db::DeviceIdentity& id) {
    const health::ScanConfig c = s.scan_config();
    return health::to_json(health::stored_scan_status(
        c, s.scan_state(), health::ScanOrder::of(SectorSize(id.sector_size), id.image_sectors, c.staggered)));
}

json health_report(db::Store& s, const db::DeviceIdentity& id) {
    auto& c = s.connection();
    // The ten worst regions and the sum, kept while the rows stream past.
    constexpr std::size_t kWorst = 10;
    std::vector<std::pair<int, health::RegionStats>> worst_rows;  // (score, row), best last
    std::uint64_t scanned = 0;
    double sum = 0;
    int min_score = 1000;
    const std::uint64_t pass = db::each_region_of_latest_pass(c, [&](const health::RegionStats& r) {
        const int score = health::region_score(r);
        ++scanned;
        sum += score;
        min_score = std::min(min_score, score);
        if (worst_rows.size() == kWorst && score >= worst_rows.back().first) return;
        auto at = std::upper_bound(worst_rows.begin(), worst_rows.end(), score,
                                   [](int sc, const auto& e) { return sc < e.first; });
        worst_rows.insert(at, {score, r});
        if (worst_rows.size() > kWorst) worst_rows.pop_back();
    });
    const health::ScanConfig cfg = s.scan_config();
    json worst = json::array();
    for (std::size_t i = 0; i < worst_rows.size(); ++i) {
        const auto& [score, r] = worst_rows[i];
        if (score >= 1000 && i > 0) break;
        worst.push_back({{"region", r.region},
                         {"first_byte", r.region * health::kRegionBytes},
                         {"score", score},
                         {"reads", r.reads()},
                         {"errors", r.errors},
                         {"mean_us", r.reads() ? r.sum_us / r.reads() : 0},
                         {"max_us", r.max_us},
                         {"below_threshold", score < static_cast<int>(cfg.health_threshold)}});
    }
    const health::ScanCheckpoint st = s.scan_state();
    json events = json::object();
    for (const auto& [kind, n] : db::event_counts_last_day(c)) events[kind] = n;
    const int device_score = scanned == 0 ? 1000 : static_cast<int>(sum / static_cast<double>(scanned));
    return {{"device_score", device_score},
            {"worst_region_score", scanned == 0 ? 1000 : min_score},
            {"health_threshold", cfg.health_threshold},
            {"pass", pass},
            {"regions_scanned", scanned},
            {"regions_total", (id.geometry().image_bytes().v + health::kRegionBytes - 1) / health::kRegionBytes},
            {"worst_regions", worst},
            {"events_last_24h", events},
            {"pending", db::pending_count(c)},
            {"remaps", db::remap_count(c)},
            {"total_scans", st.total_scans},
            {"warnings_issued", st.warnings_issued}};
}

json execute(const Target& in, const json& req, std::stop_token stop) noexcept {
    try {
        const std::string cmd = req.value("cmd", "");
        const Geometry& g = in.geometry;
        if (cmd == "status") {
            json r = status_json(in.identity, in.db_path, in.remapper.usage(), in.remapper.generation());
            r["ok"] = true;
            return r;
        }
        if (cmd == "remap" || cmd == "unremap") {
            if (in.read_only) return failure(EROFS, "the instance is read-only");
            const std::uint64_t lba = req.at("lba").get<std::uint64_t>();
            if (cmd == "remap") {
                const auto reason = db::remap_reason_from(req.value("reason", "manual"));
                if (!reason) return failure(EINVAL, fmt::format("unknown remap reason '{}'", req.value("reason", "")));
                auto r = in.remapper.remap(Lba{lba}, *reason);
                if (!r) return failure(r.error(), remap_error(r.error(), lba, g));
                return {{"ok", true}, {"lba", lba}, {"spare_slot", r->v}};
            }
            auto r = in.remapper.unremap(Lba{lba});
            if (!r) return failure(r.error(), remap_error(r.error(), lba, g));
            return {{"ok", true}, {"lba", lba}};
        }
        if (cmd == "verify") {
            const std::uint64_t start = req.value("start", std::uint64_t{0});
            std::uint64_t count = req.contains("count") ? req.at("count").get<std::uint64_t>()
                                                        : (start < g.image_sectors.v ? g.image_sectors.v - start : 0);
            if (start >= g.image_sectors.v || count == 0 || count > g.image_sectors.v - start)
                return failure(EINVAL, fmt::format("sectors {}+{} are outside the image ({} sectors)", start, count,
                                                   g.image_sectors.v));
            VerifyReport rep = verify_sectors(in.image, g.sector_size, Lba{start}, SectorCount{count}, stop);
            if (rep.stopped)
                return failure(ECANCELED, fmt::format("verify stopped after {} of {} sectors: the daemon is shutting down",
                                                      rep.checked, count));
            json bad = json::array();
            for (Lba l : rep.unreadable) bad.push_back(l.v);
            return {{"ok", true}, {"start", start}, {"count", count}, {"checked", rep.checked}, {"unreadable", bad}};
        }
        if (cmd == "inject") return inject(in, req);
        if (cmd == "scan") return scan(in, req);
        return failure(EINVAL, fmt::format("unknown command '{}'", cmd));
    } catch (const std::exception& e) {
        return failure(EINVAL, fmt::format("bad request: {}", e.what()));
    }
}

std::optional<json> call(const std::string& socket_path, const json& request) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof addr.sun_path) throw std::runtime_error("control socket path is too long");
    std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == ENOENT || errno == ECONNREFUSED) return std::nullopt;
        throw std::runtime_error(fmt::format("cannot reach the daemon at {}: {}", socket_path, std::strerror(errno)));
    }
    if (auto r = sys::send_full(fd.get(), request.dump() + "\n"); !r)
        throw std::runtime_error(fmt::format("writing to the daemon: {}", std::strerror(r.error())));
    std::string reply;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(fmt::format("reading from the daemon: {}", std::strerror(errno)));
        if (n == 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
        if (reply.back() == '\n') break;
    }
    if (reply.empty()) throw std::runtime_error("the daemon closed the control connection without a reply");
    try {
        return json::parse(reply);
    } catch (const json::exception& e) {
        throw std::runtime_error(fmt::format("the daemon sent a malformed reply: {}", e.what()));
    }
}

}  // namespace remapfs::control
