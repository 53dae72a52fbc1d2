#include <doctest/doctest.h>

#include "fixtures.hpp"
#include "remapfs/health/history.hpp"
#include "remapfs/health/scanner.hpp"
#include "remapfs/block/null_backing.hpp"

#include <atomic>
#include <set>
#include <thread>

using namespace remapfs;
using namespace remapfs::health;
using remapfs::block::Activity;

namespace {
std::int64_t q(db::Store& s, const std::string& sql) { return s.connection().query_int(sql); }

struct ScanRig {
    test::MemStack s;
    Activity activity;
    HistoryWriter history;
    std::unique_ptr<Scanner> scanner;
    std::unique_ptr<TeeSink> tee;
    explicit ScanRig(std::uint64_t sectors, ScanConfig cfg = {}, remap::Policy p = {})
        : s(4096, sectors, 64, p), activity(s.clock), history(s.dir.file("t.db"), s.clock) {
        db::DeviceIdentity id;
        id.uuid = "test";
        id.backing_path = "memory";
        id.backing_bytes = s.g.physical_bytes();
        id.sector_size = 4096;
        id.image_sectors = SectorCount{sectors};
        id.spare_offset = ByteOffset{s.g.image_bytes().v};
        id.spare_slots = SectorCount{64};
        s.store->bind(id);
        make(cfg);
    }
    void make(ScanConfig cfg) {
        s.remapper->set_event_sink(nullptr);
        scanner = std::make_unique<Scanner>(*s.layer, s.g, history, activity, s.clock, cfg, s.store->scan_state(), s.store->scan_pass(s.store->scan_state().pass),
                                            [this](const ScanConfig& c) { s.store->save_scan_config(c); }, true);
        tee = std::make_unique<TeeSink>(history, scanner.get());
        s.remapper->set_event_sink(tee.get());
    }
    // Steps until the pass is done (or `limit` steps), advancing the fake clock by each wait.
    int run(int limit = 100000) {
        int steps = 0;
        while (steps < limit) {
            ++steps;
            std::int64_t w = scanner->step();
            if (w > 0) s.clock.advance_us(w);
            if (scanner->status().state == ScanState::waiting) break;
        }
        history.flush();
        return steps;
    }
};
}  // namespace

TEST_CASE("pacer: full speed only after the idle window, a guaranteed rate while busy") {
    FakeClock clock;
    Pacer p;
    const SectorSize ss(4096);
    const std::int64_t now = clock.now_us();
    // Idle: no user I/O in flight and the last one finished >= 500 ms ago.
    auto d = p.next({0, now - 600'000}, now, ss, 256);
    CHECK(d.idle);
    CHECK(d.wait_us == 0);
    CHECK(d.sectors == SectorCount{256});
    // Just under the window, or anything in flight: busy.
    CHECK_FALSE(p.next({0, now - 499'000}, now, ss, 256).idle);
    auto b = p.next({3, now - 10'000'000}, now, ss, 256);
    CHECK_FALSE(b.idle);
    CHECK(b.sectors == SectorCount{256});  // one large read (1 MiB) rather than many seeks
    CHECK(b.wait_us == 0);                 // never starved: the first read goes at once
    CHECK(p.next({3, now}, now, ss, 64).sectors == SectorCount{64});  // never above sectors_per_scan
    // After a busy 1 MiB read at intensity 1 (256 KiB/s), the next may start 4 s later.
    p.done(1 << 20, now, false, 1);
    CHECK(p.next({1, now}, now + 1000, ss, 256).wait_us == 4'000'000 - 1000);
    // Intensity 10 is ten times faster.
    Pacer p10;
    p10.done(1 << 20, now, false, 10);
    CHECK(p10.next({1, now}, now, ss, 256).wait_us == 400'000);
    // Once idle, the busy budget is forgotten.
    p.done(1 << 20, now + 100'000, true, 1);
    CHECK(p.next({0, now - 1'000'000}, now + 200'000, ss, 256).wait_us == 0);
}

TEST_CASE("activity adds up every thread's requests; a thread's count is reused after it exits") {
    FakeClock clock(1000);
    Activity a(clock);
    CHECK(a.sample().in_flight == 0);
    a.begin();
    std::atomic<int> stage{0};
    std::thread other([&] {
        Activity::Scope busy(&a);
        clock.advance_us(500);
        stage = 1;
        while (stage != 2) std::this_thread::yield();
    });
    while (stage != 1) std::this_thread::yield();
    CHECK(a.sample().in_flight == 2);
    stage = 2;
    other.join();
    const Activity::Sample after = a.sample();
    CHECK(after.in_flight == 1);
    CHECK(after.last_done_us == 1500);  // the other thread's end, the latest of all threads'
    a.end();
    CHECK(a.sample().in_flight == 0);
    for (int i = 0; i < 20; ++i) std::thread([&] { Activity::Scope busy(&a); }).join();
    CHECK(a.sample().in_flight == 0);
}

TEST_CASE("scan order: sequential, and staggered regions x segments, cover each sector once") {
    for (bool staggered : {false, true}) {
        CAPTURE(staggered);
        ScanOrder o{SectorCount{1000}, SectorCount{128}, SectorCount{16}, staggered};  // 8 regions, the last one partial (1000 = 7*128 + 104)
        std::set<std::uint64_t> seen;
        std::uint64_t p = 0, first_lbas[3] = {};
        int k = 0;
        while (p < o.positions()) {
            const std::uint64_t run = o.run_at(p);
            REQUIRE(run > 0);
            if (auto l = o.lba_at(p)) {
                if (k < 3) first_lbas[k++] = l->v;
                for (std::uint64_t i = 0; i < run; ++i) CHECK(seen.insert(l->v + i).second);
            }
            p += run;
        }
        CHECK(seen.size() == 1000);
        CHECK(*seen.rbegin() == 999);
        if (staggered) {
            // Segment 0 of region 0, then segment 0 of region 1, then of region 2.
            CHECK(first_lbas[0] == 0);
            CHECK(first_lbas[1] == 128);
            CHECK(first_lbas[2] == 256);
        }
    }
}

TEST_CASE("scan settings are validated, one clear reason each") {
    ScanConfig c;
    c.set("intensity", "10");
    CHECK(c.intensity == 10);
    CHECK_THROWS_WITH_AS(c.set("intensity", "0"), doctest::Contains("from 1 to 10"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(c.set("intensity", "11"), doctest::Contains("from 1 to 10"), std::invalid_argument);
    CHECK_THROWS_AS(c.set("interval", "59"), std::invalid_argument);
    CHECK_THROWS_AS(c.set("interval", "-5"), std::invalid_argument);
    CHECK_THROWS_AS(c.set("sectors_per_scan", "0"), std::invalid_argument);
    CHECK_THROWS_AS(c.set("sectors_per_scan", "4097"), std::invalid_argument);
    CHECK_THROWS_AS(c.set("health_threshold", "1001"), std::invalid_argument);
    CHECK_THROWS_AS(c.set("enabled", "maybe"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(c.set("speed", "1"), doctest::Contains("unknown scan setting"), std::invalid_argument);
    c.set("enabled", "off");
    CHECK_FALSE(c.enabled);
    CHECK(c.get("enabled") == "off");
    CHECK(c.intensity == 10);  // a refused value changed nothing
}

TEST_CASE("a pass reads every sector, records regions and finds bad and slow sectors") {
    remap::Policy p;
    p.read_retries = 1;
    ScanRig rig(40000, {}, p);  // 40000 sectors = 2 regions of 32768 sectors
    rig.s.inject({{"sectors", "30000"}, {"op", "read"}});
    rig.s.inject({{"sectors", "100-199"}, {"op", "read"}, {"errno", "none"}, {"latency_ms", 60}});
    rig.run();
    auto& st = *rig.s.store;
    CHECK(q(st, "SELECT count(*) FROM scan_pass WHERE finished IS NOT NULL") == 1);
    CHECK(q(st, "SELECT sectors FROM scan_pass WHERE pass = 1") == 40000);
    CHECK(q(st, "SELECT count(*) FROM region_pass WHERE pass = 1") == 2);
    CHECK(q(st, "SELECT sum(errors) FROM region_pass") >= 1);
    CHECK(q(st, "SELECT sum(b7) FROM region_pass WHERE region = 0") >= 1);  // the 60 ms reads
    // The unreadable sector is pending, with events from the scanner.
    CHECK(q(st, "SELECT count(*) FROM pending WHERE lba = 30000") == 1);
    CHECK(q(st, "SELECT count(*) FROM sector_event WHERE lba = 30000 AND kind = 'read-error' AND source = 'scan'") >= 1);
    CHECK(q(st, "SELECT count(*) FROM recent_sector_errors WHERE lba = 30000") >= 1);
    CHECK(q(st, "SELECT count(*) FROM scan_history WHERE coverage_pct = 100.0") == 1);
    // Its neighbourhood (~10 MB) was read again right away.
    CHECK(rig.scanner->status().live->rescanned_sectors >= 2000);
    CHECK(q(st, "SELECT total_scans FROM scan_state") == 1);
}

TEST_CASE("work queued by the scanner is reported as the scanner's") {
    remap::Policy p;
    p.slow_us = 10'000;
    p.slow_count = 1;
    ScanRig rig(2000, {}, p);
    rig.s.inject({{"sectors", "500"}, {"op", "read"}, {"errno", "none"}, {"latency_ms", 60}});
    rig.run();
    rig.s.remapper->drain();  // the probe and the move run on the worker, on the scanner's behalf
    rig.history.flush();
    CHECK(q(*rig.s.store, "SELECT count(*) FROM sector_event WHERE lba = 500 AND kind = 'slow-read' AND source = 'scan'") >= 1);
    CHECK(q(*rig.s.store, "SELECT count(*) FROM sector_event WHERE lba = 500 AND kind = 'remap' AND source = 'scan'") == 1);
    CHECK(q(*rig.s.store, "SELECT count(*) FROM sector_event WHERE source = 'user'") == 0);
}

TEST_CASE("a restart resumes the pass from its checkpoint, not from zero") {
    remap::Policy p;
    p.read_retries = 0;
    ScanRig rig(40000, {}, p);
    rig.s.inject({{"sectors", "100"}, {"op", "read"}});  // found before the restart
    // Run part of a pass, with a checkpoint (every 5 s of clock) along the way.
    for (int i = 0; i < 60; ++i) {
        rig.scanner->step();
        rig.s.clock.advance_us(200'000);
    }
    const auto pos = rig.scanner->status().position;
    REQUIRE(pos > 0);
    REQUIRE(pos < 40000);
    rig.scanner.reset();  // stopping checkpoints
    rig.history.flush();
    CHECK(q(*rig.s.store, "SELECT cursor FROM scan_state") == static_cast<std::int64_t>(pos));
    rig.make({});
    CHECK(rig.scanner->status().position == pos);
    rig.run();
    // The same pass finished, having read only what was left after the checkpoint.
    CHECK(q(*rig.s.store, "SELECT count(*) FROM scan_pass") == 1);
    CHECK(q(*rig.s.store, "SELECT total_scans FROM scan_state") == 1);
    CHECK(q(*rig.s.store, "SELECT sectors FROM scan_pass WHERE pass = 1") == 40000);
    // What the pass found before the restart is still counted, and nothing twice.
    CHECK(q(*rig.s.store, "SELECT errors FROM scan_pass WHERE pass = 1") == 1);
    CHECK(q(*rig.s.store, "SELECT sum(errors) FROM region_pass") == 1);
}

TEST_CASE("pause, stop, start and the interval between passes") {
    ScanConfig cfg;
    cfg.interval_s = 3600;
    ScanRig rig(1000, cfg);
    rig.run();
    CHECK(rig.scanner->status().total_scans == 1);
    // Waiting for the interval: no new pass before it.
    CHECK(rig.scanner->step() > 0);
    CHECK(rig.scanner->status().pass == 1);
    rig.s.clock.advance_us(3600ll * 1'000'000);
    rig.run();
    CHECK(rig.scanner->status().total_scans == 2);
    // start: a pass now, whatever the interval.
    rig.scanner->start_pass_now();
    rig.run();
    CHECK(rig.scanner->status().total_scans == 3);
    // pause is persisted and stops all reads.
    auto c = rig.scanner->config();
    c.paused = true;
    rig.scanner->configure(c);
    CHECK(rig.s.store->scan_config().paused);
    rig.scanner->start_pass_now();  // start also resumes
    CHECK_FALSE(rig.s.store->scan_config().paused);
    rig.scanner->stop();
    CHECK_FALSE(rig.s.store->scan_config().enabled);
    CHECK(rig.scanner->status().state == ScanState::disabled);
}

TEST_CASE("warnings fire once per region and pass when its score drops below the threshold") {
    remap::Policy p;
    p.read_retries = 0;
    ScanConfig cfg;
    cfg.health_threshold = 900;
    ScanRig rig(40000, cfg, p);
    rig.s.inject({{"sectors", "10"}, {"op", "read"}});
    rig.run();
    CHECK(q(*rig.s.store, "SELECT warnings_issued FROM scan_state") == 1);
}

TEST_CASE("downsampling moves old rows to coarser tiers and keeps the totals") {
    test::TempDir d;
    FakeClock clock;
    { auto s = db::Store::open(d.file("h.db"), true, false); }
    HistoryWriter h(d.file("h.db"), clock);
    const std::int64_t now = clock.now_s();
    const std::int64_t day = 86400;
    for (int age : {1, 20, 30, 120, 400}) {
        RegionStats r;
        r.pass = static_cast<std::uint64_t>(age);
        r.region = 3;
        r.t = now - age * day;
        r.buckets[1] = 10;
        r.sum_us = 10'000;
        r.max_us = 1500;
        h.region(r);
        h.event({now - age * day, Lba{7}, EventKind::read_error, -1, Source::scan, ""});
    }
    h.flush();
    h.downsample(now);
    auto s = db::Store::open(d.file("h.db"), false, false);
    CHECK(q(s, "SELECT count(*) FROM region_pass") == 1);     // only the 1-day-old pass stays raw
    CHECK(q(s, "SELECT count(*) FROM region_daily") == 2);    // 20 and 30 days
    CHECK(q(s, "SELECT count(*) FROM region_monthly") == 2);  // 120 and 400 days, different months
    CHECK(q(s, "SELECT (SELECT sum(b1) FROM region_pass) + (SELECT sum(b1) FROM region_daily) + "
               "(SELECT sum(b1) FROM region_monthly)") == 50);
    CHECK(q(s, "SELECT count(*) FROM sector_event") == 3);    // 1, 20, 30 days
    CHECK(q(s, "SELECT sum(count) FROM event_daily") == 2);
    // Downsampling twice changes nothing more.
    h.downsample(now);
    CHECK(q(s, "SELECT sum(b1) FROM region_monthly") == 20);
}

TEST_CASE("the documented views answer") {
    ScanRig rig(1000);
    rig.run();
    auto& st = *rig.s.store;
    CHECK(q(st, "SELECT count(*) FROM scan_history") == 1);
    CHECK(q(st, "SELECT count(*) FROM device_health_daily") == 1);
    CHECK(q(st, "SELECT count(*) FROM region_latency") >= 1);
    CHECK(q(st, "SELECT count(*) FROM regions_getting_worse") == 0);
    CHECK(q(st, "SELECT count(*) FROM recent_sector_errors") == 0);
}

TEST_CASE("16 TiB in the staggered order: checkpoints stay small and the threshold still warns") {
    // A new 128 MiB region every 1 MiB read: 131072 regions, more than one checkpoint may carry.
    test::TempDir dir;
    FakeClock clock;
    const Geometry g{SectorSize(4096), SectorCount{(16ull << 40) / 4096}, SectorCount{64}};
    auto inj = std::make_unique<block::FaultInjector>(std::make_unique<block::NullBacking>(g.physical_bytes()), g, clock);
    block::FaultInjector& faults = *inj;
    auto store = db::Store::open(dir.file("t.db"), true, false);
    db::DeviceIdentity id;
    id.uuid = "huge";
    id.backing_path = "null";
    id.backing_bytes = g.physical_bytes();
    id.sector_size = 4096;
    id.image_sectors = g.image_sectors;
    id.spare_offset = ByteOffset{g.image_bytes().v};
    id.spare_slots = SectorCount{64};
    store.bind(id);
    remap::TableHolder tables;
    remap::Policy p;
    p.read_retries = 0;
    remap::RemapLayer layer(std::move(inj), remap::RemapSetup{g, tables, store, store.allocator(), p, clock,
                                                              Label{"huge", 4096, g.image_sectors.v, 64, g.layout}, 0,
                                                              0, false});
    remap::Remapper& remapper = layer.remapper();
    Activity activity(clock);
    HistoryWriter history(dir.file("t.db"), clock);
    ScanConfig cfg;
    cfg.staggered = true;
    cfg.health_threshold = 900;
    Scanner scanner(layer, g, history, activity, clock, cfg, store.scan_state(), store.scan_pass(0),
                    [&](const ScanConfig& c) { store.save_scan_config(c); }, true);
    TeeSink tee(history, &scanner);
    remapper.set_event_sink(&tee);
    // Region 5000's first segment is read at step ~5000 (segment 0 of every region comes first).
    const std::uint64_t bad = 5000ull * (kRegionBytes / 4096);
    faults.add(block::fault_rule_from_json({{"sectors", std::to_string(bad)}, {"op", "read"}}));
    // No clock advance: only the size cap can cause checkpoints after the first.
    const int steps = 3 * static_cast<int>(kMaxUnflushedRegions) + 100;
    for (int i = 0; i < steps; ++i) CHECK(scanner.step() == 0);
    history.flush();
    const std::int64_t rows = q(store, "SELECT count(*) FROM region_pass WHERE pass = 1");
    CHECK(rows >= 3 * static_cast<std::int64_t>(kMaxUnflushedRegions));
    CHECK(rows <= steps);
    CHECK(q(store, "SELECT max(region) FROM region_pass WHERE pass = 1") >= 3 * static_cast<std::int64_t>(kMaxUnflushedRegions) - 1);
    CHECK(q(store, "SELECT errors FROM region_pass WHERE pass = 1 AND region = 5000") == 1);
    CHECK(q(store, "SELECT warnings_issued FROM scan_state") == 1);
    CHECK(q(store, "SELECT count(*) FROM pending WHERE lba = " + std::to_string(bad)) == 1);
    CHECK(scanner.status().positions == g.image_sectors.v);
    remapper.set_event_sink(nullptr);
}
