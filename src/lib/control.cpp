#include "remapfs/control.hpp"

#include "remapfs/unique_fd.hpp"
#include "remapfs/verify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

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

json status_json(const db::DeviceIdentity& id, const std::string& db_path, const remap::SpareUsage& u) {
    const std::uint64_t image_bytes = id.image_sectors * id.sector_size;
    return {
        {"uuid", id.uuid},
        {"db", db_path},
        {"backing", id.backing_path},
        {"backing_bytes", id.backing_bytes},
        {"spare_path", id.spare_path ? json(*id.spare_path) : json(nullptr)},
        {"spare_offset", id.spare_offset},
        {"sector_size", id.sector_size},
        {"image_sectors", id.image_sectors},
        {"image_bytes", image_bytes},
        {"spare_slots_total", u.total},
        {"spare_slots_used", u.used},
        {"spare_slots_retired", u.retired},
        {"spare_slots_free", u.free()},
        {"remaps", u.used},
        {"pending", u.pending},
        {"state", u.exhausted() ? "spare-exhausted" : u.pending ? "degraded" : "ok"},
    };
}

remap::SpareUsage usage_from_store(db::Store& s) {
    auto id = s.identity();
    remap::SpareUsage u;
    u.total = id ? id->spare_slots : 0;
    u.used = s.remaps().size();
    u.retired = s.allocator().retired;
    u.pending = s.pending().size();
    return u;
}

namespace {

json inject(Instance& in, const json& req) {
    block::FaultInjector* inj = in.injector();
    if (!inj) return failure(EPERM, "fault injection is off on this mount (it needs -o allow_inject)");
    const std::string action = req.value("action", "");
    if (action == "add") {
        try {
            inj->add(block::FaultRule::from_json(req.at("rule")));
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
        for (const auto& r : inj->rules()) rules.push_back(r.to_json());
        return {{"ok", true}, {"rules", rules}, {"injected", inj->injected()}};
    }
    return failure(EINVAL, fmt::format("unknown inject action '{}'", action));
}

}  // namespace

json execute(Instance& in, const json& req) noexcept {
    try {
        const std::string cmd = req.value("cmd", "");
        const Geometry& g = in.geometry();
        if (cmd == "status") {
            json r = status_json(in.identity(), in.db_path(), in.remapper().usage());
            r["ok"] = true;
            return r;
        }
        if (cmd == "remap" || cmd == "unremap") {
            if (in.read_only()) return failure(EROFS, "the instance is read-only");
            const std::uint64_t lba = req.at("lba").get<std::uint64_t>();
            if (cmd == "remap") {
                auto r = in.remapper().remap(Lba{lba}, req.value("reason", "manual"));
                if (!r) return failure(r.error(), remap_error(r.error(), lba, g));
                return {{"ok", true}, {"lba", lba}, {"spare_slot", r->v}};
            }
            auto r = in.remapper().unremap(Lba{lba});
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
            VerifyReport rep = verify_sectors(in.image(), g.sector_size, Lba{start}, SectorCount{count});
            json bad = json::array();
            for (Lba l : rep.unreadable) bad.push_back(l.v);
            return {{"ok", true}, {"start", start}, {"count", count}, {"checked", rep.checked}, {"unreadable", bad}};
        }
        if (cmd == "inject") return inject(in, req);
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
    std::string line = request.dump() + "\n";
    for (std::size_t done = 0; done < line.size();) {
        ssize_t n = ::write(fd.get(), line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(fmt::format("writing to the daemon: {}", std::strerror(errno)));
        done += static_cast<std::size_t>(n);
    }
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
