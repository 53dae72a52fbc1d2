#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <cstring>
#include <set>
#include <thread>

using namespace remapfs;
using nlohmann::json;

namespace {
using test::read;
std::vector<std::byte> slice(const std::vector<std::byte>& v, std::size_t off, std::size_t len) {
    return {v.begin() + static_cast<std::ptrdiff_t>(off), v.begin() + static_cast<std::ptrdiff_t>(off + len)};
}
std::int64_t count(db::Store& s, const std::string& sql) { return s.connection().query_int(sql); }
}  // namespace

TEST_CASE("fault rules parse and refuse nonsense") {
    auto r = block::fault_rule_from_json({{"sectors", "10-12"}, {"op", "write"}, {"errno", "ENOSPC"},
                                          {"latency_ms", 5}, {"probability", 0.5}, {"after_ops", 7}});
    CHECK(r.first == 10);
    CHECK(r.last == 12);
    CHECK(r.op == block::FaultRule::Op::write);
    CHECK(r.error == ENOSPC);
    CHECK(r.latency_us == 5000);
    CHECK(block::to_json(block::fault_rule_from_json(block::to_json(r))) == block::to_json(r));
    CHECK_THROWS_AS(block::fault_rule_from_json({{"sectors", "12-10"}}), std::invalid_argument);
    CHECK_THROWS_AS(block::fault_rule_from_json({{"sectors", "x"}}), std::invalid_argument);
    CHECK_THROWS_AS(block::fault_rule_from_json({{"sectors", 1}, {"op", "erase"}}), std::invalid_argument);
    CHECK_THROWS_AS(block::fault_rule_from_json({{"sectors", 1}, {"errno", "EWHAT"}}), std::invalid_argument);
    CHECK_THROWS_AS(block::fault_rule_from_json({{"sectors", 1}, {"probability", 0}}), std::invalid_argument);
    CHECK_THROWS_AS(block::fault_rule_from_json({{"sectors", 1}, {"colour", "red"}}), std::invalid_argument);
    CHECK_THROWS_AS(block::fault_rule_from_json({{"op", "read"}}), std::invalid_argument);
}

TEST_CASE("a 1 MiB write with three bad sectors in its middle remaps exactly those three") {
    test::MemStack s(4096, 512, 16);
    s.inject({{"sectors", "100"}, {"op", "write"}});
    s.inject({{"sectors", "150-151"}, {"op", "write"}});
    auto data = test::pattern(1 << 20, 1);  // sectors 64..319
    REQUIRE(s.layer->pwrite(data, ByteOffset{64 * 4096}));
    auto rows = s.store->remaps();
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].lba == Lba{100});
    CHECK(rows[1].lba == Lba{150});
    CHECK(rows[2].lba == Lba{151});
    CHECK(rows[0].reason == "write-error");
    for (const auto& r : rows) CHECK(s.slot_bytes(r.slot) == slice(data, (r.lba.v - 64) * 4096, 4096));
    // Everything else went to the backing (read it directly).
    for (std::uint64_t l : {64ull, 99ull, 101ull, 149ull, 152ull, 319ull})
        CHECK(s.data_bytes(Lba{l}) == slice(data, (l - 64) * 4096, 4096));
    CHECK(read(*s.layer, 64 * 4096, data.size()) == data);
}

TEST_CASE("bad sectors at the head, in the body and at the tail of an unaligned write") {
    for (std::uint64_t bad : {2ull, 3ull, 4ull}) {
        CAPTURE(bad);
        test::MemStack s(512, 16, 8);
        auto base = test::pattern(16 * 512, 2);
        REQUIRE(s.layer->pwrite(base, ByteOffset{0}));
        s.inject({{"sectors", bad}, {"op", "write"}});
        auto patch = test::pattern(2 * 512, 3);
        const std::size_t off = 2 * 512 + 100;  // head in 2, body 3, tail in 4
        REQUIRE(s.layer->pwrite(patch, ByteOffset{off}));
        std::memcpy(base.data() + off, patch.data(), patch.size());
        CHECK(read(*s.layer, 0, base.size()) == base);
        auto rows = s.store->remaps();
        REQUIRE(rows.size() == 1);
        CHECK(rows[0].lba == Lba{bad});
        CHECK(s.slot_bytes(rows[0].slot) == slice(base, bad * 512, 512));
    }
}

TEST_CASE("unreadable sectors: retries, EIO for that request only, pending, healed by a write") {
    remap::Policy p;
    p.read_retries = 3;
    test::MemStack s(4096, 64, 8, p);
    auto data = test::pattern(64 * 4096, 4);
    REQUIRE(s.layer->pwrite(data, ByteOffset{0}));
    s.inject({{"sectors", "10"}, {"op", "read"}});
    const auto before = s.faults->injected();
    std::vector<std::byte> buf(8 * 4096);
    auto r = s.layer->pread(buf, ByteOffset{8 * 4096});
    REQUIRE_FALSE(r);
    CHECK(r.error() == EIO);
    // 1 failed run + the sector alone: first try and 3 retries.
    CHECK(s.faults->injected() - before == 1 + 4);
    CHECK(count(*s.store, "SELECT count(*) FROM pending WHERE lba = 10") == 1);
    CHECK(s.tables.load()->find(Lba{10})->pending);
    // Other requests are untouched; no zeros or stale data come back as good.
    CHECK(read(*s.layer, 0, 10 * 4096) == slice(data, 0, 10 * 4096));
    CHECK(read(*s.layer, 11 * 4096, 4096) == slice(data, 11 * 4096, 4096));
    // Writing the pending sector moves it to a fresh slot and clears pending.
    auto fresh = test::pattern(4096, 5);
    REQUIRE(s.layer->pwrite(fresh, ByteOffset{10 * 4096}));
    CHECK(read(*s.layer, 10 * 4096, 4096) == fresh);
    CHECK(count(*s.store, "SELECT count(*) FROM pending") == 0);
    CHECK(count(*s.store, "SELECT count(*) FROM remap WHERE lba = 10 AND reason = 'rewrite-pending'") == 1);
}

TEST_CASE("a partial write to an unreadable sector fails rather than invent the rest") {
    test::MemStack s(4096, 16, 4);
    s.inject({{"sectors", "3"}, {"op", "read"}});
    auto d = test::pattern(100, 6);
    CHECK(s.layer->pwrite(d, ByteOffset{3 * 4096 + 10}).error() == EIO);
    CHECK(s.tables.load()->find(Lba{3})->pending);
}

TEST_CASE("flaky reads past the error threshold are remapped while still readable") {
    remap::Policy p;
    p.read_retries = 50;
    p.error_threshold = 2;
    test::MemStack s(4096, 16, 4, p);
    auto d = test::pattern(4096, 7);
    REQUIRE(s.layer->pwrite(d, ByteOffset{5 * 4096}));
    s.inject({{"sectors", "5"}, {"op", "read"}, {"probability", 0.6}});
    int recovered_reads = 0;
    for (int i = 0; i < 40 && s.store->remaps().empty(); ++i) {
        if (read(*s.layer, 5 * 4096, 4096) == d) ++recovered_reads;
        s.remapper->drain();
    }
    CHECK(recovered_reads > 0);
    auto rows = s.store->remaps();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].reason == "read-errors");
    CHECK(s.slot_bytes(rows[0].slot) == d);
}

TEST_CASE("auto-remap off: a write error is EIO and the sector pending") {
    remap::Policy p;
    p.auto_remap = false;
    test::MemStack s(4096, 16, 4, p);
    s.inject({{"sectors", "2"}, {"op", "write"}});
    auto d = test::pattern(4096, 8);
    CHECK(s.layer->pwrite(d, ByteOffset{2 * 4096}).error() == EIO);
    CHECK(s.store->remaps().empty());
    CHECK(count(*s.store, "SELECT count(*) FROM pending WHERE lba = 2") == 1);
}

TEST_CASE("a failing spare slot is retired and the next one used") {
    test::MemStack s(4096, 16, 4);
    s.inject({{"sectors", "7"}, {"op", "write"}});
    s.inject({{"sectors", "0"}, {"target", "spare"}, {"op", "write"}});
    auto d = test::pattern(4096, 9);
    REQUIRE(s.layer->pwrite(d, ByteOffset{7 * 4096}));
    auto rows = s.store->remaps();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].slot == SpareSlot{1});
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot WHERE slot = 0") == 1);
    CHECK(s.remapper->usage().retired == 1);
    CHECK(read(*s.layer, 7 * 4096, 4096) == d);

    SUBCASE("a remapped sector whose slot fails later moves to another slot") {
        s.inject({{"sectors", "1"}, {"target", "spare"}, {"op", "write"}});
        auto d2 = test::pattern(4096, 10);
        REQUIRE(s.layer->pwrite(d2, ByteOffset{7 * 4096}));
        CHECK(s.store->remaps()[0].slot == SpareSlot{2});
        CHECK(read(*s.layer, 7 * 4096, 4096) == d2);
        CHECK(s.remapper->usage().retired == 2);
    }
}

TEST_CASE("spare exhaustion: ENOSPC for writes that need a remap, everything else works") {
    test::MemStack s(4096, 32, 2);
    s.inject({{"sectors", "1-3"}, {"op", "write"}});
    auto d = test::pattern(4096, 11);
    REQUIRE(s.layer->pwrite(d, ByteOffset{1 * 4096}));
    REQUIRE(s.layer->pwrite(d, ByteOffset{2 * 4096}));
    CHECK(s.remapper->usage().exhausted());
    CHECK(s.layer->pwrite(d, ByteOffset{3 * 4096}).error() == ENOSPC);
    // Other sectors and the remapped ones still work.
    auto e = test::pattern(4096, 12);
    REQUIRE(s.layer->pwrite(e, ByteOffset{10 * 4096}));
    REQUIRE(s.layer->pwrite(e, ByteOffset{1 * 4096}));
    CHECK(read(*s.layer, 10 * 4096, 4096) == e);
    CHECK(read(*s.layer, 1 * 4096, 4096) == e);
    // Freeing a slot (after the sector is good again) makes room.
    s.faults->clear();
    s.inject({{"sectors", "3"}, {"op", "write"}});
    REQUIRE(s.remapper->unremap(Lba{2}));
    REQUIRE(s.layer->pwrite(d, ByteOffset{3 * 4096}));
    CHECK(read(*s.layer, 3 * 4096, 4096) == d);
}

TEST_CASE("many sectors failing at once from many threads are all remapped, none twice") {
    test::MemStack s(512, 4096, 600);
    s.inject({{"sectors", "0-4095"}, {"op", "write"}, {"probability", 0.1}});
    constexpr int kThreads = 8;
    std::vector<std::thread> ts;
    std::vector<std::vector<std::byte>> written(kThreads);
    for (int t = 0; t < kThreads; ++t) {
        ts.emplace_back([&, t] {
            // Each thread owns 512 sectors; writes them in 8-sector requests, some twice.
            written[t] = test::pattern(512 * 512, 100 + t);
            for (int pass = 0; pass < 2; ++pass)
                for (int k = 0; k < 512; k += 8)
                    REQUIRE(s.layer->pwrite(slice(written[t], k * 512, 8 * 512),
                                            ByteOffset{(std::uint64_t(t) * 512 + k) * 512}));
        });
    }
    for (auto& t : ts) t.join();
    auto rows = s.store->remaps();
    CHECK(rows.size() > 50);
    std::set<std::uint64_t> slots, lbas;
    for (const auto& r : rows) {
        CHECK(slots.insert(r.slot.v).second);
        CHECK(lbas.insert(r.lba.v).second);
    }
    CHECK(s.tables.load()->slots_used() == rows.size());
    s.faults->clear();
    for (int t = 0; t < kThreads; ++t) CHECK(read(*s.layer, std::uint64_t(t) * 512 * 512, 512 * 512) == written[t]);
}

TEST_CASE("slow sectors are counted and moved pre-emptively, data copied first") {
    remap::Policy p;
    p.slow_us = 10'000;
    p.slow_count = 3;
    test::MemStack s(4096, 64, 4, p);
    auto data = test::pattern(64 * 4096, 13);
    REQUIRE(s.layer->pwrite(data, ByteOffset{0}));
    s.inject({{"sectors", "20"}, {"op", "read"}, {"errno", "none"}, {"latency_ms", 50}});
    // Multi-sector reads: the slow one is found by probing each sector on its own.
    for (int i = 0; i < 3; ++i) {
        CHECK(read(*s.layer, 16 * 4096, 8 * 4096) == slice(data, 16 * 4096, 8 * 4096));
        s.remapper->drain();
    }
    auto rows = s.store->remaps();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].lba == Lba{20});
    CHECK(rows[0].reason == "slow-reads");
    CHECK(s.slot_bytes(rows[0].slot) == slice(data, 20 * 4096, 4096));
    CHECK(read(*s.layer, 0, data.size()) == data);
}

TEST_CASE("rules can start after N operations or at a time") {
    test::MemStack s(4096, 16, 4);
    s.inject({{"sectors", "1"}, {"op", "read"}, {"after_ops", 100}});
    std::vector<std::byte> b(4096);
    CHECK(s.layer->pread(b, ByteOffset{4096}));
    for (int i = 0; i < 100; ++i) (void)s.layer->pread(b, ByteOffset{0});
    CHECK_FALSE(s.layer->pread(b, ByteOffset{4096}));
    s.faults->clear();
    s.remapper->drain();
    s.inject({{"sectors", "2"}, {"op", "write"}, {"at", s.clock.now_s() + 3600}});
    REQUIRE(s.layer->pwrite(b, ByteOffset{2 * 4096}));
    CHECK(s.store->remaps().empty());
    s.clock.advance_us(3601ll * 1'000'000);
    REQUIRE(s.layer->pwrite(b, ByteOffset{2 * 4096}));
    CHECK(s.store->remaps().size() == 1);
}
