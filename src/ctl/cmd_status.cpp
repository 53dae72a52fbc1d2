// remapctl status: identity, spare usage, state, the daemon and the mount log.

#include "ctl/commands.hpp"
#include "remapfs/control/control.hpp"

#include <fmt/format.h>

#include <iostream>

namespace remapctl {

int cmd_status(const Invocation& in) {
    const std::string& db = in.db;
    const bool as_json = in.as_json;
    if (!in.args.empty()) throw UsageError("status takes no arguments");

    auto s = open_store(db);
    auto id = read_identity(s);
    remapfs::remap::SpareUsage u = remapfs::control::usage_from_store(s);
    std::uint64_t generation = id.generation;
    json daemon = {{"running", false}};
    if (auto r = live_call(id, {{"cmd", "status"}}); r && r->value("ok", false)) {
        daemon = (*r)["daemon"];
        // The daemon's view is the live one (its snapshot), the database's may lag by nothing
        // but is read here without a lock.
        u.used = (*r)["spare_slots_used"].get<std::uint64_t>();
        u.retired = (*r)["spare_slots_retired"].get<std::uint64_t>();
        u.pending = (*r)["pending"].get<std::uint64_t>();
        u.failing = r->value("state", std::string()) == "spare-failing";
        u.records_behind = !r->value("spare_records_current", true);
        generation = r->value("generation", generation);
    }
    json st = remapfs::control::status_json(id, db, u, generation);
    st["daemon"] = daemon;
    // The newest mount_log row without a stop time is the running daemon's, not a crash.
    const remapfs::db::MountSummary mounts = s.mount_summary();
    const bool last_is_running = daemon.value("running", false) && mounts.last && !mounts.last->stopped &&
                                 mounts.last->pid == daemon.value("pid", std::int64_t{0});
    const std::uint64_t unclean = mounts.not_stopped - (last_is_running ? 1 : 0);
    st["mounts"] = {{"count", mounts.count}, {"unclean_stops", unclean}, {"last", nullptr}};
    if (mounts.last) {
        const auto& m = *mounts.last;
        st["mounts"]["last"] = {{"started", m.started},
                                {"stopped", m.stopped ? json(*m.stopped) : json(nullptr)},
                                {"pid", m.pid},
                                {"version", m.version},
                                {"mountpoint", m.mountpoint}};
    }
    if (as_json) {
        std::cout << st.dump(2) << "\n";
        return kOk;
    }
    std::cout << fmt::format("device:       {}\n", id.uuid);
    std::cout << fmt::format("database:     {}\n", db);
    std::cout << fmt::format("backing:      {} ({} bytes)\n", id.backing_path, id.backing_bytes.v);
    if (id.spare_path)
        std::cout << fmt::format("spare:        {} (label at byte {})\n", *id.spare_path, id.spare_offset.v);
    else
        std::cout << fmt::format("spare:        tail of the backing (label at byte {})\n", id.spare_offset.v);
    std::cout << fmt::format("sector size:  {} bytes\n", id.sector_size);
    std::cout << fmt::format("image:        {} sectors ({} bytes)\n", id.image_sectors.v, id.geometry().image_bytes().v);
    std::cout << fmt::format("spare slots:  {} used, {} retired, {} free of {}\n", u.used, u.retired, u.free(), u.total);
    std::cout << fmt::format("layout:       {} ({}), remap table at generation {}\n", id.layout,
                             id.layout >= 2 ? "slot headers: remapctl recover can rebuild the table"
                                            : "remapfs 0.1: no slot headers", generation);
    if (u.records_behind)
        std::cout << "spare record: behind the database (a slot header or label write failed; the next mount "
                     "rewrites it)\n";
    std::cout << fmt::format("remaps:       {}\n", u.used);
    std::cout << fmt::format("pending:      {}\n", u.pending);
    std::cout << fmt::format("state:        {}\n", st["state"].get<std::string>());
    if (daemon.value("running", false))
        std::cout << fmt::format("daemon:       running, pid {}, image {}\n", daemon.value("pid", 0),
                                 daemon.value("image", std::string()));
    else
        std::cout << "daemon:       not running\n";
    std::cout << fmt::format("mounts:       {}, {} not stopped cleanly (crash, kill -9, power loss)\n", mounts.count,
                             unclean);
    if (mounts.last) {
        const auto& m = *mounts.last;
        const std::string end = m.stopped ? "stopped " + fmt_time(*m.stopped)
                                : last_is_running ? std::string("running")
                                                  : std::string("did not stop cleanly");
        std::cout << fmt::format("last mount:   {} on {}, pid {}, remapfs {}, {}\n", fmt_time(m.started), m.mountpoint,
                                 m.pid, m.version, end);
    }
    return kOk;
}

}  // namespace remapctl
