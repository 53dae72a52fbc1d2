// remapctl scan: the background scanner's state, settings and health report.

#include "ctl/commands.hpp"
#include "remapfs/control/control.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <iostream>
#include <set>

namespace remapctl {

namespace {

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

}  // namespace

int cmd_scan(const Invocation& in) {
    const std::string& db = in.db;
    const std::vector<std::string>& args = in.args;
    const bool as_json = in.as_json;

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

}  // namespace remapctl
