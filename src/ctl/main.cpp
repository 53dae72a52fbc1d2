// remapctl: inspect and control a remapfs instance. Talks to the daemon through its control
// socket when one serves the instance; otherwise opens the database (and, for commands that
// touch data, the backing) itself and runs the very same code.
//
// Exit status: 0 ok, 1 failure, 2 bad usage, 3 verify found unreadable sectors.

#include "ctl/commands.hpp"
#include "remapfs/control/control.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/core/parse.hpp"
#include "remapfs/sys/mountinfo.hpp"
#include "remapfs_config.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace po = boost::program_options;
using remapfs::control::json;

namespace {

using namespace remapctl;

const char* kCommands =
    "commands:\n"
    "  status                 device, spare usage, remap count, state, daemon\n"
    "  list                   the remapped sectors\n"
    "  verify [START [COUNT]] read-check sectors (default: all) and report unreadable ones\n"
    "  remap LBA              move sector LBA to a spare slot (its data is copied first)\n"
    "  unremap LBA            move it back and free the slot\n"
    "  pending                sectors that could not be read and wait for a rewrite\n"
    "  inject add|list|clear  fault injection on a live mount with -o allow_inject (tests)\n"
    "  scan [status|start|stop|pause|resume|set K=V...|report]   the background scanner\n"
    "  recover [--spare P] [--spare-size S] [--sector-size N]   rebuild a lost or stale database's\n"
    "                         remap table from the device's own record (no daemon running)\n"
    "Run 'remapctl COMMAND --help' for a command's options. LBAs count sectors of the\n"
    "instance's sector_size.\n";

std::uint64_t parse_number(const std::string& s, const char* what) {
    try {
        return remapfs::parse_uint(what, s);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
}

// The database of the daemon serving mountpoint MNT. The mount carries no attributes
// (src/fuse/ops_table.cpp says why), so each live control socket is asked for its mountpoint;
// the device number names a mount whatever path reaches it.
std::string db_from_mount(const std::string& mnt) {
    struct stat want {};
    if (::stat(mnt.c_str(), &want) != 0) throw std::runtime_error(fmt::format("{}: {}", mnt, std::strerror(errno)));
    const std::string dev = fmt::format("{}:{}", major(want.st_dev), minor(want.st_dev));
    bool remapfs_mount = false;
    for (const auto& m : remapfs::sys::read_mountinfo())
        if (m.device == dev) remapfs_mount = m.fs_type == "fuse.remapfs";
    if (!remapfs_mount || !S_ISDIR(want.st_mode))
        throw std::runtime_error(fmt::format("{} is not a remapfs mount", mnt));
    std::error_code ec;
    std::string unreachable;  // e.g. not root: the sockets are root-only
    for (const auto& entry : std::filesystem::directory_iterator(remapfs::control_socket_dir(), ec)) {
        if (entry.path().extension() != ".sock") continue;
        std::optional<json> r;
        try {
            r = remapfs::control::call(entry.path().string(), {{"cmd", "status"}});
        } catch (const std::runtime_error& e) {
            unreachable = e.what();  // or a daemon that is going away
            continue;
        }
        if (!r || !r->value("ok", false)) continue;
        const std::string point = r->value(json::json_pointer("/daemon/mountpoint"), std::string());
        struct stat st {};
        if (!point.empty() && ::stat(point.c_str(), &st) == 0 && st.st_dev == want.st_dev)
            return r->value("db", std::string());
    }
    throw std::runtime_error(fmt::format("no remapfs daemon answering in {} serves {}{}", remapfs::control_socket_dir(), mnt,
                                         unreachable.empty() ? "" : " (" + unreachable + ")"));
}

// Read-write when we may: a read-only SQLite connection to a WAL database cannot clean up the
// -wal/-shm files it creates, a read-write one removes them when it closes. Nothing is written
// unless a command changes something (a database from an older remapfs is upgraded).
remapfs::db::Store open_store(const std::string& db) {
    // Reading is allowed on anybody's database (root looking at a user's); what changes a
    // device opens it through an Instance, which checks the owner.
    return remapfs::db::Store::open(db, false, ::access(db.c_str(), W_OK) != 0, remapfs::db::Store::Owner::any);
}

// Status of the daemon serving this database, if any.
std::optional<json> live_call(const remapfs::db::DeviceIdentity& id, const json& req) {
    return remapfs::control::call(remapfs::control_socket_path(id.uuid), req);
}

remapfs::db::DeviceIdentity read_identity(remapfs::db::Store& s) {
    auto id = s.identity();
    if (!id) throw std::runtime_error(fmt::format("database {} has no device yet (mount it once)", s.path()));
    return *id;
}

void check_reply(const json& r) {
    if (!r.value("ok", false)) throw std::runtime_error(r.value("error", std::string("the request failed")));
}

// Runs a data command on the live daemon, or offline on an instance opened here.
json run_data_command(const std::string& db, const json& req, bool writes) {
    remapfs::db::DeviceIdentity id;
    {
        auto s = open_store(db);
        id = read_identity(s);
    }
    if (auto r = live_call(id, req)) return *r;
    auto in = remapfs::Instance::open_from_db(db, !writes);
    return remapfs::control::execute(in->control_target(), req);
}

std::string fmt_time(std::int64_t t) {
    char buf[64];
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

int cmd_status(const std::string& db, bool as_json) {
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
    std::cout << fmt::format("backing:      {} ({} bytes)\n", id.backing_path, id.backing_bytes);
    if (id.spare_path)
        std::cout << fmt::format("spare:        {} (label at byte {})\n", *id.spare_path, id.spare_offset);
    else
        std::cout << fmt::format("spare:        tail of the backing (label at byte {})\n", id.spare_offset);
    std::cout << fmt::format("sector size:  {} bytes\n", id.sector_size);
    std::cout << fmt::format("image:        {} sectors ({} bytes)\n", id.image_sectors, id.image_sectors * id.sector_size);
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

int cmd_pending(const std::string& db, bool as_json) {
    auto s = open_store(db);
    read_identity(s);
    auto rows = s.pending();
    if (as_json) {
        json a = json::array();
        for (const auto& r : rows)
            a.push_back({{"lba", r.lba.v}, {"first_seen", r.first_seen}, {"last_seen", r.last_seen},
                         {"errors", r.errors}, {"last_errno", r.last_errno}});
        std::cout << a.dump(2) << "\n";
        return kOk;
    }
    if (rows.empty()) {
        std::cout << "no pending sectors\n";
        return kOk;
    }
    std::cout << fmt::format("{:>14} {:>7} {:<20} {}\n", "LBA", "ERRORS", "FIRST SEEN", "LAST SEEN");
    for (const auto& r : rows)
        std::cout << fmt::format("{:>14} {:>7} {:<20} {}\n", r.lba.v, r.errors, fmt_time(r.first_seen), fmt_time(r.last_seen));
    return kOk;
}

std::string duration(std::int64_t s) {
    return fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

void print_scan_status(const json& st) {
    const double pct = st.value("percent", 0.0);
    std::cout << fmt::format("state:            {}\n", st.value("state", std::string("?")));
    if (::isatty(STDOUT_FILENO)) {
        constexpr int kWidth = 40;
        const int filled = static_cast<int>(pct / 100.0 * kWidth);
        std::cout << "progress:         [" << std::string(static_cast<std::size_t>(filled), '#')
                  << std::string(static_cast<std::size_t>(kWidth - filled), '.') << fmt::format("] {:.1f}%\n", pct);
    } else {
        std::cout << fmt::format("progress:         {:.1f}%\n", pct);
    }
    // Positions count sectors: 2^32 of them is only 16 TiB of 4 KiB sectors (2 TiB of 512 B).
    constexpr std::uint64_t zero = 0;
    std::cout << fmt::format("pass:             {} (position {} of {})\n", st.value("pass", zero),
                             st.value("position", zero), st.value("positions", zero));
    if (st.contains("eta_s")) std::cout << fmt::format("eta:              {}\n", duration(st["eta_s"].get<std::int64_t>()));
    if (st.value("rate_bytes_per_s", 0.0) > 0)
        std::cout << fmt::format("rate:             {:.1f} MB/s\n", st["rate_bytes_per_s"].get<double>() / 1e6);
    if (st.contains("next_pass_at"))
        std::cout << fmt::format("next pass:        {}\n", fmt_time(st["next_pass_at"].get<std::int64_t>()));
    std::cout << fmt::format("total scans:      {}\n", st.value("total_scans", zero));
    std::cout << fmt::format("warnings issued:  {}\n", st.value("warnings_issued", zero));
    if (st.contains("pass_errors"))
        std::cout << fmt::format("this pass:        {} unreadable sectors, {} reads over 50 ms\n",
                                 st["pass_errors"].get<std::uint64_t>(), st["pass_slow_reads"].get<std::uint64_t>());
    const json& c = st["config"];
    std::cout << fmt::format("settings:         enabled={} interval={} sectors_per_scan={} intensity={} "
                             "health_threshold={} staggered={} paused={}\n",
                             c["enabled"].get<bool>() ? "on" : "off", c["interval"].get<std::uint64_t>(),
                             c["sectors_per_scan"].get<std::uint64_t>(), c["intensity"].get<std::uint64_t>(),
                             c["health_threshold"].get<std::uint64_t>(), c["staggered"].get<bool>() ? "on" : "off",
                             c["paused"].get<bool>() ? "on" : "off");
}

int cmd_scan(const std::string& db, const std::vector<std::string>& args, bool as_json) {
    const std::string action = args.empty() ? "status" : args[0];
    static const std::set<std::string> actions = {"status", "start", "stop", "pause", "resume", "set", "report"};
    if (!actions.count(action))
        throw UsageError(fmt::format("unknown scan action '{}' (status, start, stop, pause, resume, set, report)", action));
    json req = {{"cmd", "scan"}, {"action", action}};
    if (action == "set") {
        if (args.size() < 2) throw UsageError("scan set needs KEY=VALUE (enabled, interval, sectors_per_scan, "
                                              "intensity, health_threshold, staggered, paused)");
        json settings = json::object();
        remapfs::health::ScanConfig probe;
        for (std::size_t i = 1; i < args.size(); ++i) {
            auto eq = args[i].find('=');
            if (eq == std::string::npos) throw UsageError(fmt::format("'{}' is not KEY=VALUE", args[i]));
            try {
                probe.set(args[i].substr(0, eq), args[i].substr(eq + 1));
            } catch (const std::invalid_argument& e) {
                throw UsageError(e.what());
            }
            settings[args[i].substr(0, eq)] = args[i].substr(eq + 1);
        }
        req["settings"] = settings;
    } else if (args.size() > 1) {
        throw UsageError(fmt::format("scan {} takes no arguments", action));
    }
    auto s = open_store(db);
    auto id = read_identity(s);
    if (action == "report") {
        json rep = remapfs::control::health_report(s, id);
        if (as_json) {
            std::cout << rep.dump(2) << "\n";
            return kOk;
        }
        std::cout << fmt::format("device score:     {} / 1000 (worst region {}, threshold {})\n", rep["device_score"].get<int>(),
                                 rep["worst_region_score"].get<int>(), rep["health_threshold"].get<int>());
        std::cout << fmt::format("scanned:          {} of {} regions in pass {}; {} passes done, {} warnings issued\n",
                                 rep["regions_scanned"].get<std::uint64_t>(), rep["regions_total"].get<std::uint64_t>(),
                                 rep["pass"].get<std::int64_t>(), rep["total_scans"].get<std::uint64_t>(),
                                 rep["warnings_issued"].get<std::uint64_t>());
        std::cout << fmt::format("remapped sectors: {}, pending: {}\n", rep["remaps"].get<std::int64_t>(),
                                 rep["pending"].get<std::int64_t>());
        std::cout << "events, last 24h: ";
        if (rep["events_last_24h"].empty()) std::cout << "none";
        for (const auto& [k, v] : rep["events_last_24h"].items()) std::cout << k << "=" << v.get<std::int64_t>() << " ";
        std::cout << "\n";
        for (const auto& r : rep["worst_regions"])
            std::cout << fmt::format("region {:>6} (byte {:>14}): score {:>4}, {} reads, {} errors, mean {} us, max {} us{}\n",
                                     r["region"].get<std::uint64_t>(), r["first_byte"].get<std::uint64_t>(),
                                     r["score"].get<int>(), r["reads"].get<std::uint64_t>(),
                                     r["errors"].get<std::uint64_t>(), r["mean_us"].get<std::uint64_t>(),
                                     r["max_us"].get<std::uint64_t>(), r["below_threshold"].get<bool>() ? "  BELOW THRESHOLD" : "");
        return kOk;
    }
    json st;
    std::optional<json> live = live_call(id, req);
    // A daemon mounted with -o noscan (or ro) runs no scanner: its settings live in the
    // database alone, so change and show them there.
    if (live && !live->value("ok", false) && live->value("errno", 0) == EPERM) live.reset();
    if (live) {
        check_reply(*live);
        st = *live;
        st.erase("ok");
    } else {
        if (action != "status") {
            remapfs::health::ScanConfig c;
            try {
                c = remapfs::control::apply_scan_action(s.scan_config(), req);
            } catch (const std::invalid_argument& e) {
                throw UsageError(e.what());
            }
            s.save_scan_config(c);
        }
        st = remapfs::control::scan_status_from_store(s, id);
    }
    if (as_json) std::cout << st.dump(2) << "\n";
    else print_scan_status(st);
    return kOk;
}

// Fault injection exists only on a live mount with -o allow_inject.
int cmd_inject(const std::string& db, const std::vector<std::string>& args, bool as_json) {
    if (args.empty()) throw UsageError("inject needs an action: add, list or clear");
    const std::string action = args[0];
    json req = {{"cmd", "inject"}, {"action", action}};
    if (action == "add") {
        po::options_description d("inject add");
        d.add_options()
            ("sectors", po::value<std::string>()->required(), "N or FIRST-LAST")
            ("target", po::value<std::string>()->default_value("image"), "image (LBAs) or spare (slot numbers)")
            ("op", po::value<std::string>()->default_value("both"), "read, write or both")
            ("errno", po::value<std::string>()->default_value("EIO"), "EIO, ENOSPC, ... or none (latency only)")
            ("latency-ms", po::value<double>()->default_value(0), "added latency")
            ("probability", po::value<double>()->default_value(1.0), "chance per request, (0, 1]")
            ("after-ops", po::value<std::uint64_t>()->default_value(0), "start after this many requests")
            ("at", po::value<std::int64_t>()->default_value(0), "start at this unix time");
        po::variables_map vm;
        std::vector<std::string> rest(args.begin() + 1, args.end());
        try {
            po::store(po::command_line_parser(rest).options(d).run(), vm);
            po::notify(vm);
        } catch (const po::error& e) {
            throw UsageError(fmt::format("inject add: {}", e.what()));
        }
        req["rule"] = {{"sectors", vm["sectors"].as<std::string>()}, {"target", vm["target"].as<std::string>()},
                       {"op", vm["op"].as<std::string>()}, {"errno", vm["errno"].as<std::string>()},
                       {"latency_ms", vm["latency-ms"].as<double>()}, {"probability", vm["probability"].as<double>()},
                       {"after_ops", vm["after-ops"].as<std::uint64_t>()}, {"at", vm["at"].as<std::int64_t>()}};
        try {
            (void)remapfs::block::FaultRule::from_json(req["rule"]);
        } catch (const std::invalid_argument& e) {
            throw UsageError(fmt::format("inject add: {}", e.what()));
        }
    } else if (action != "list" && action != "clear") {
        throw UsageError(fmt::format("unknown inject action '{}' (add, list, clear)", action));
    } else if (args.size() > 1) {
        throw UsageError(fmt::format("inject {} takes no arguments", action));
    }
    remapfs::db::DeviceIdentity id;
    {
        auto s = open_store(db);
        id = read_identity(s);
    }
    auto r = live_call(id, req);
    if (!r) throw std::runtime_error("fault injection needs a running daemon mounted with -o allow_inject");
    check_reply(*r);
    if (action == "list") {
        if (as_json) {
            std::cout << (*r)["rules"].dump(2) << "\n";
        } else {
            for (const auto& rule : (*r)["rules"]) std::cout << rule.dump() << "\n";
            std::cout << fmt::format("{} rule(s), {} faults injected so far\n", (*r)["rules"].size(),
                                     (*r)["injected"].get<std::uint64_t>());
        }
    }
    return kOk;
}

int cmd_list(const std::string& db, bool as_json) {
    auto s = open_store(db);
    read_identity(s);
    auto rows = s.remaps();
    if (as_json) {
        json a = json::array();
        for (const auto& r : rows)
            a.push_back({{"lba", r.lba.v}, {"spare_slot", r.slot.v}, {"state", r.state}, {"reason", r.reason},
                         {"created", r.created}});
        std::cout << a.dump(2) << "\n";
        return kOk;
    }
    if (rows.empty()) {
        std::cout << "no remapped sectors\n";
        return kOk;
    }
    std::cout << fmt::format("{:>14} {:>10} {:<8} {:<14} {}\n", "LBA", "SLOT", "STATE", "REASON", "CREATED");
    for (const auto& r : rows)
        std::cout << fmt::format("{:>14} {:>10} {:<8} {:<14} {}\n", r.lba.v, r.slot.v, r.state, r.reason,
                                 fmt_time(r.created));
    return kOk;
}

int cmd_verify(const std::string& db, const std::vector<std::string>& args, bool as_json) {
    if (args.size() > 2) throw UsageError("verify takes at most START and COUNT");
    json req = {{"cmd", "verify"}};
    if (!args.empty()) req["start"] = parse_number(args[0], "START");
    if (args.size() > 1) {
        req["count"] = parse_number(args[1], "COUNT");
        if (req["count"] == 0) throw UsageError("COUNT must be at least 1");
    }
    {
        auto s = open_store(db);
        auto id = read_identity(s);
        const std::uint64_t start = req.value("start", std::uint64_t{0});
        const std::uint64_t count = req.value("count", start < id.image_sectors ? id.image_sectors - start : 0);
        if (start >= id.image_sectors || count > id.image_sectors - start)
            throw UsageError(fmt::format("sectors {}+{} are outside the image ({} sectors)", start, count,
                                         id.image_sectors));
    }
    json r = run_data_command(db, req, false);
    if (!r.value("ok", false) && r.value("errno", 0) == EINVAL) throw UsageError(r.value("error", std::string()));
    check_reply(r);
    const auto& bad = r["unreadable"];
    if (as_json) {
        json out = r;
        out.erase("ok");
        std::cout << out.dump(2) << "\n";
    } else {
        std::cout << fmt::format("checked {} sectors from {}: ", r["checked"].get<std::uint64_t>(),
                                 r["start"].get<std::uint64_t>());
        if (bad.empty()) {
            std::cout << "all readable\n";
        } else {
            std::cout << bad.size() << " unreadable\n";
            for (const auto& l : bad) std::cout << "unreadable: " << l.get<std::uint64_t>() << "\n";
        }
    }
    return bad.empty() ? kOk : kUnreadable;
}

int cmd_move(const std::string& db, const std::string& cmd, const std::vector<std::string>& args) {
    if (args.size() != 1) throw UsageError(fmt::format("{} takes exactly one LBA", cmd));
    const std::uint64_t lba = parse_number(args[0], "LBA");
    {
        auto s = open_store(db);
        auto id = read_identity(s);
        if (lba >= id.image_sectors)
            throw UsageError(fmt::format("LBA {} is outside the image ({} sectors of {} bytes)", lba, id.image_sectors,
                                         id.sector_size));
        // Refuse the obvious mistakes before touching the backing (the daemon checks again).
        auto rows = s.remaps();
        bool mapped = std::any_of(rows.begin(), rows.end(), [&](const auto& r) { return r.lba.v == lba; });
        if (cmd == "remap" && mapped) throw std::runtime_error(fmt::format("sector {} is already remapped", lba));
        if (cmd == "unremap" && !mapped) throw std::runtime_error(fmt::format("sector {} is not remapped", lba));
    }
    json r = run_data_command(db, {{"cmd", cmd}, {"lba", lba}}, true);
    check_reply(r);
    if (cmd == "remap")
        std::cout << fmt::format("sector {} remapped to spare slot {}\n", lba, r["spare_slot"].get<std::uint64_t>());
    else
        std::cout << fmt::format("sector {} unremapped\n", lba);
    return kOk;
}

int run(int argc, char** argv) {
    po::options_description global("remapctl [--db PATH | --backing PATH | --mount DIR] COMMAND [ARGS] [--json]\n\n"
                                   "Which instance");
    global.add_options()
        ("db", po::value<std::string>(), "its database")
        ("backing", po::value<std::string>(), "its backing (the database is found at the default place)")
        ("mount,m", po::value<std::string>(), "its mountpoint (asks the running daemon)")
        ("json", po::bool_switch(), "machine-readable output")
        ("help,h", po::bool_switch(), "this text")
        ("version,V", po::bool_switch(), "version");
    po::options_description hidden;
    hidden.add_options()("command", po::value<std::string>())("args", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("command", 1).add("args", -1);
    po::options_description all;
    all.add(global).add(hidden);

    // `inject add` and `recover` have options of their own: everything after the word is theirs.
    std::vector<std::string> words(argv + 1, argv + argc);
    std::vector<std::string> inject_args;
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "--db" || w == "--backing" || w == "--mount" || w == "-m") {
            ++i;
            continue;
        }
        if (w == "inject" || w == "recover") {
            inject_args.assign(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
            words.resize(i + 1);
            break;
        }
        if (!w.empty() && w[0] != '-') break;  // another command: normal parsing
    }
    // --json and --help keep their global meaning wherever they are.
    for (const char* flag : {"--json", "--help", "-h"}) {
        auto it = std::find(inject_args.begin(), inject_args.end(), flag);
        if (it != inject_args.end()) {
            words.push_back(flag);
            inject_args.erase(it);
        }
    }

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(words).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    const bool help = vm["help"].as<bool>();
    const bool as_json = vm["json"].as<bool>();
    if (vm["version"].as<bool>()) {
        std::cout << "remapctl " << REMAPFS_VERSION << "\n";
        return kOk;
    }
    if (!vm.count("command")) {
        if (help) {
            std::cout << global << "\n" << kCommands;
            return kOk;
        }
        throw UsageError("no command given (try --help)");
    }
    const std::string cmd = vm["command"].as<std::string>();
    const auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const std::set<std::string> known = {"status", "list", "verify", "remap", "unremap", "pending", "inject", "scan",
                                         "recover"};
    if (!known.count(cmd)) throw UsageError(fmt::format("unknown command '{}' (try --help)", cmd));
    if (help) {
        static const std::map<std::string, std::string> text = {
            {"status", "remapctl [TARGET] status [--json]\n  Device, spare usage, remap count, state and daemon.\n"},
            {"list", "remapctl [TARGET] list [--json]\n  One line (or JSON object) per remapped sector.\n"},
            {"verify", "remapctl [TARGET] verify [START [COUNT]] [--json]\n  Reads sectors START.. through the remap "
                       "layer; exit 3 if any is unreadable.\n"},
            {"remap", "remapctl [TARGET] remap LBA\n  Copies sector LBA to a free spare slot, commits the remap, then "
                      "serves the sector from there.\n"},
            {"unremap", "remapctl [TARGET] unremap LBA\n  Copies the sector back to the backing and frees its slot.\n"},
            {"pending", "remapctl [TARGET] pending [--json]\n  Sectors that stayed unreadable after retries; the next write "
                        "of each goes to a fresh spare slot.\n"},
            {"scan", "remapctl [TARGET] scan [status] [--json]     progress (a bar on a terminal), pass, ETA, totals\n"
                     "remapctl [TARGET] scan start|stop|pause|resume\n"
                     "remapctl [TARGET] scan set KEY=VALUE...         enabled=on|off interval=SECONDS (60..31536000)\n"
                     "                                               sectors_per_scan=1..4096 intensity=1..10\n"
                     "                                               health_threshold=0..1000 staggered=on|off\n"
                     "                                               paused=on|off\n"
                     "remapctl [TARGET] scan report [--json]          device score, worst regions, recent events\n"
                     "  Settings are kept in the database; with no daemon they are changed there.\n"},
            {"recover", "remapctl [--db PATH] [--backing PATH] recover [--spare PATH] [--spare-size SIZE]\n"
                        "                         [--sector-size 512|4096] [--backing-io auto|direct|buffered] [--force]\n"
                        "                         [--json]\n"
                        "  Rebuilds the remap table of a lost or stale database (one the daemon refused as older\n"
                        "  than the device) from the device's labels and slot headers. An existing database keeps\n"
                        "  its history and settings; a missing one is created (give --backing, and --spare,\n"
                        "  --spare-size and --sector-size as the device was first mounted). Refused while a\n"
                        "  daemon serves the device, and for a database that is not older than the device\n"
                        "  (a mount is what puts the device in step with it) unless --force.\n"},
            {"inject", "remapctl [TARGET] inject add --sectors N|A-B [--target image|spare] [--op read|write|both]\n"
                       "                           [--errno EIO|...|none] [--latency-ms MS] [--probability P]\n"
                       "                           [--after-ops N] [--at UNIXTIME]\n"
                       "remapctl [TARGET] inject list [--json] | inject clear\n"
                       "  Fault injection, for tests: only on a live mount with -o allow_inject.\n"},
        };
        std::cout << text.at(cmd) << "\nTARGET is --db PATH, --backing PATH or --mount DIR.\n";
        return kOk;
    }

    if (cmd == "recover") {
        if (vm.count("mount")) throw UsageError("recover works on a device no daemon serves: give --db and/or --backing");
        if (!vm.count("db") && !vm.count("backing")) throw UsageError("recover needs --db PATH, --backing PATH or both");
        const std::optional<std::string> backing =
            vm.count("backing") ? std::optional<std::string>(vm["backing"].as<std::string>()) : std::nullopt;
        // The default database of a backing is beside it, whether or not it still exists.
        const std::string db = vm.count("db") ? vm["db"].as<std::string>() : remapfs::default_db_path(*backing);
        return cmd_recover(db, backing, inject_args, as_json);
    }
    int targets = static_cast<int>(vm.count("db") + vm.count("backing") + vm.count("mount"));
    if (targets == 0) throw UsageError("say which instance: --db PATH, --backing PATH or --mount DIR");
    if (targets > 1) throw UsageError("give only one of --db, --backing and --mount");
    std::string db;
    if (vm.count("db")) db = vm["db"].as<std::string>();
    else if (vm.count("backing")) db = remapfs::default_db_path(vm["backing"].as<std::string>());
    else db = db_from_mount(vm["mount"].as<std::string>());

    if ((cmd == "status" || cmd == "list" || cmd == "pending") && !args.empty())
        throw UsageError(fmt::format("{} takes no arguments", cmd));
    if (cmd == "status") return cmd_status(db, as_json);
    if (cmd == "list") return cmd_list(db, as_json);
    if (cmd == "verify") return cmd_verify(db, args, as_json);
    if (cmd == "pending") return cmd_pending(db, as_json);
    if (cmd == "inject") return cmd_inject(db, inject_args, as_json);
    if (cmd == "scan") return cmd_scan(db, args, as_json);
    return cmd_move(db, cmd, args);
}

}  // namespace

int main(int argc, char** argv) {
    remapfs::log::set_level(remapfs::log::Level::warning);  // the command prints its own result
    try {
        return run(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "remapctl: %s\n", e.what());
        return kUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "remapctl: %s\n", e.what());
        return kFailed;
    }
}
