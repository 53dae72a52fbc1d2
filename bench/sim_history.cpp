// remapfs-sim: a year of daily scans of a large image in minutes, to measure how big the health
// history gets and how fast the documented views answer on it.
//
// The real scanner, remap layer, remapper and history writer run on an injected clock over a
// storage-less backing; a fault injector with an HDD latency model (150 MB/s, seeks) provides
// the time each read takes, degrading regions (latency rising from some day on) and bad sectors
// that appear late in the year. Only the device's contents are simulated; the history is the
// one the daemon would write.
//
//   remapfs-sim [--size 2T] [--days 365] [--db PATH]

#include "remapfs/block/fault_rule_json.hpp"
#include "remapfs/block/null_backing.hpp"
#include "remapfs/remap/remap_layer.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/health/history.hpp"
#include "remapfs/health/scanner.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/core/parse.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <string>

using namespace remapfs;

namespace {

std::uint64_t file_size(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

int run(int argc, char** argv) {
    std::uint64_t size = 2ull << 40;
    int days = 365;
    std::string db_path = "/var/tmp/remapfs-sim.db";
    constexpr const char* kUsage = "usage: remapfs-sim [--size 2T] [--days 365] [--db PATH]";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf("%s\n  --size SIZE  image size with K/M/G/T (default 2T)\n"
                        "  --days N     simulated days of daily scans (default 365)\n"
                        "  --db PATH    history database to write (default /var/tmp/remapfs-sim.db)\n",
                        kUsage);
            return 0;
        }
        if (i + 1 >= argc) throw std::invalid_argument(fmt::format("{} needs a value ({})", a, kUsage));
        const std::string v = argv[++i];
        if (a == "--size") size = parse_size(v);
        else if (a == "--days") days = static_cast<int>(parse_uint("--days", v, 1, 3650));
        else if (a == "--db") db_path = v;
        else throw std::invalid_argument(fmt::format("unknown argument '{}' ({})", a, kUsage));
    }
    log::set_level(log::Level::error);
    for (const char* sfx : {"", "-wal", "-shm"}) ::unlink((db_path + sfx).c_str());

    const Geometry g{SectorSize(4096), SectorCount{size / 4096}, SectorCount{1 << 16}};
    FakeClock clock(1'700'000'000LL * 1'000'000);
    const std::int64_t t0 = clock.now_s();
    auto store = db::Store::open(db_path, true, false);
    const db::DeviceIdentity id{"sim", "null", g.physical_bytes(), 4096, g.image_sectors, std::nullopt,
                                ByteOffset{g.image_bytes().v}, g.spare_slots, t0, g.layout, 0, false, true, std::nullopt};
    store.bind(id);
    health::ScanConfig cfg;
    cfg.sectors_per_scan = 4096;  // 16 MiB reads when idle (the knob's maximum)
    store.save_scan_config(cfg);

    remap::TableHolder tables;
    auto inj = std::make_unique<block::FaultInjector>(std::make_unique<block::NullBacking>(g.physical_bytes()), g, clock);
    auto* faults = inj.get();
    faults->set_hdd_model(block::HddModel{});
    // 20 regions going bad: 60 ms extra per read from day 200 + 5k (k = 0..19), and a
    // cluster of unreadable sectors in three of them from day 330 on.
    const std::uint64_t region_sectors = health::kRegionBytes / 4096;
    const std::uint64_t regions = g.image_sectors.v / region_sectors;
    for (int k = 0; k < 20; ++k) {
        const std::uint64_t r = (static_cast<std::uint64_t>(k) * 7919) % regions;
        nlohmann::json rule = {{"sectors", fmt::format("{}-{}", r * region_sectors, (r + 1) * region_sectors - 1)},
                               {"op", "read"}, {"errno", "none"}, {"latency_ms", 60 + 5 * k},
                               {"at", t0 + (200 + 5 * k) * 86400LL}};
        faults->add(block::fault_rule_from_json(rule));
        if (k < 3)
            faults->add(block::fault_rule_from_json({{"sectors", fmt::format("{}-{}", r * region_sectors + 1000,
                                                                              r * region_sectors + 1003)},
                                                     {"op", "read"}, {"at", t0 + (330 + k) * 86400LL}}));
    }
    remap::Policy policy;
    policy.retry_delay_us = 1000;
    remap::RemapLayer layer(std::move(inj), remap::RemapSetup{g, tables, store, store.allocator(), policy, clock,
                                                              Label{"sim", 4096, g.image_sectors.v, g.spare_slots.v,
                                                                    g.layout},
                                                              0, 0, false});
    remap::Remapper& remapper = layer.remapper();
    block::Activity activity(clock);
    health::HistoryWriter history(db_path, clock);
    health::Scanner scanner(layer, g, history, activity, clock, cfg, store.scan_state(), store.scan_pass(store.scan_state().pass),
                            [&](const health::ScanConfig& c) { store.save_scan_config(c); }, true);
    scanner.set_idle_depth(1);  // on an injected clock a second reader only costs wall time
    health::TeeSink tee(history, &scanner);
    remapper.set_event_sink(&tee);

    const auto wall0 = std::chrono::steady_clock::now();
    int worse_seen = 0;
    for (int day = 0; day < days; ++day) {
        // One pass a day: step until the scanner waits for the next interval.
        for (;;) {
            const std::int64_t w = scanner.step();
            if (w > 0) {
                if (scanner.status().state == health::ScanState::waiting) break;
                clock.advance_us(w);
            }
        }
        history.flush();
        clock.advance_us(std::max<std::int64_t>(0, scanner.status().next_pass_at.value_or(clock.now_s()) - clock.now_s()) *
                         1'000'000);
        if (day == 205) worse_seen = static_cast<int>(store.connection().query_int("SELECT count(*) FROM regions_getting_worse"));
        if (day % 30 == 29 || day + 1 == days)
            std::fprintf(stderr, "day %d: db %.1f MiB (+wal %.1f MiB), %.0f s wall\n", day + 1,
                         static_cast<double>(file_size(db_path)) / (1 << 20),
                         static_cast<double>(file_size(db_path + "-wal")) / (1 << 20),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count());
    }
    history.flush();
    store.connection().exec("PRAGMA wal_checkpoint(TRUNCATE)");
    const double mib = static_cast<double>(file_size(db_path)) / (1 << 20);
    std::printf("simulated: %s image, %d daily passes, %llu regions\n", fmt::format("{:.1f} TiB", static_cast<double>(size) / (1ull << 40)).c_str(),
                days, static_cast<unsigned long long>(regions));
    std::printf("database: %.1f MiB (target <= 1024 MiB)\n", mib);
    std::printf("rows: region_pass %lld, region_daily %lld, region_monthly %lld, sector_event %lld, event_daily %lld\n",
                static_cast<long long>(store.connection().query_int("SELECT count(*) FROM region_pass")),
                static_cast<long long>(store.connection().query_int("SELECT count(*) FROM region_daily")),
                static_cast<long long>(store.connection().query_int("SELECT count(*) FROM region_monthly")),
                static_cast<long long>(store.connection().query_int("SELECT count(*) FROM sector_event")),
                static_cast<long long>(store.connection().query_int("SELECT count(*) FROM event_daily")));
    std::printf("regions_getting_worse on day 206 (one region degraded from day 200): %d\n", worse_seen);
    bool all_fast = true;
    for (const char* view : {"regions_getting_worse", "recent_sector_errors", "scan_history", "device_health_daily",
                             "region_latency", "remap_list"}) {
        const auto q0 = std::chrono::steady_clock::now();
        const auto rows = store.connection().query_int(fmt::format("SELECT count(*) FROM (SELECT * FROM {})", view));
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - q0).count();
        all_fast = all_fast && s < 1.0;
        std::printf("view %-22s %8lld rows in %.3f s (target < 1 s)\n", view, static_cast<long long>(rows), s);
    }
    return mib <= 1024 && all_fast ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "remapfs-sim: %s\n", e.what());
        return 2;
    }
}
