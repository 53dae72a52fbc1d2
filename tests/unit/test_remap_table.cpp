#include <doctest/doctest.h>

#include "remapfs/remap/table.hpp"

#include <atomic>
#include <thread>

using namespace remapfs;
using namespace remapfs::remap;

TEST_CASE("Table keeps entries sorted and finds ranges") {
    Table t;
    t = t.with({Lba{50}, SpareSlot{0}}).with({Lba{10}, SpareSlot{1}}).with({Lba{30}, SpareSlot{2}});
    REQUIRE(t.size() == 3);
    CHECK(t.all()[0].lba == Lba{10});
    CHECK(t.all()[2].lba == Lba{50});
    CHECK(t.find(Lba{30})->slot == SpareSlot{2});
    CHECK(t.find(Lba{31}) == nullptr);
    auto r = t.range(Lba{10}, SectorCount{21});  // 10..30
    REQUIRE(r.size() == 2);
    CHECK(r[1].lba == Lba{30});
    CHECK(t.range(Lba{11}, SectorCount{19}).empty());
    auto replaced = t.with({Lba{30}, SpareSlot{9}, Entry::State::moving});
    CHECK(replaced.size() == 3);
    CHECK(replaced.find(Lba{30})->slot == SpareSlot{9});
    CHECK(replaced.any_moving(Lba{0}, SectorCount{100}));
    CHECK_FALSE(replaced.any_moving(Lba{0}, SectorCount{30}));
    CHECK(t.without(Lba{10}).size() == 2);
    CHECK(t.size() == 3);  // snapshots are immutable
}

TEST_CASE("A published snapshot leaves older snapshots untouched") {
    TableHolder h;
    Snapshot before = h.load();
    std::thread writer([&] {
        // publish waits for `before` to be released (grace period)
        h.publish(Table().with({Lba{1}, SpareSlot{0}}), TableHolder::Grace::wait);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(before->size() == 0);
    before.reset();
    writer.join();
    CHECK(h.load()->size() == 1);
}

TEST_CASE("Readers under concurrent publication always see a consistent table") {
    TableHolder h;
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0};
    std::thread reader([&] {
        while (!stop) {
            Snapshot s = h.load();
            // Every published table holds lbas 0..n-1 mapped to slot == lba.
            for (std::size_t i = 0; i < s->size(); ++i) REQUIRE(s->all()[i].slot.v == s->all()[i].lba.v);
            ++reads;
        }
    });
    while (reads == 0) std::this_thread::yield();
    Table t;
    for (std::uint64_t i = 0; i < 200; ++i) {
        t = t.with({Lba{i}, SpareSlot{i}});
        h.publish(t, TableHolder::Grace::wait);
    }
    stop = true;
    reader.join();
    CHECK(h.load()->size() == 200);
    CHECK(reads > 0);
}
