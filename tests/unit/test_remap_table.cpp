#include <doctest/doctest.h>

#include "remapfs/remap/table.hpp"

#include <atomic>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <vector>

using namespace remapfs;
using namespace remapfs::remap;

static_assert(std::forward_iterator<Table::Range::iterator>);

namespace {

std::vector<Entry> collect(const Table::Range& r) { return {r.begin(), r.end()}; }

// The table must agree with a plain ordered map in everything it answers.
void check_same(const Table& t, const std::map<std::uint64_t, Entry>& model, std::mt19937_64& rng,
                std::uint64_t space) {
    REQUIRE(t.size() == model.size());
    std::uint64_t used = 0, pending = 0;
    for (const auto& [lba, e] : model) {
        used += e.remapped();
        pending += e.pending || !e.remapped();
    }
    CHECK(t.slots_used() == used);
    CHECK(t.pending() == pending);
    const std::vector<Entry> all = collect(t.all());
    REQUIRE(all.size() == model.size());
    auto m = model.begin();
    for (const Entry& e : all) {
        REQUIRE(e.lba.v == m->first);
        REQUIRE(e.slot == m->second.slot);
        ++m;
    }
    // Every chunk holds at most kChunkMax entries and none is empty.
    CHECK(t.chunk_count() >= (t.size() + Table::kChunkMax - 1) / Table::kChunkMax);
    CHECK(t.chunk_count() <= t.size());
    for (int i = 0; i < 200; ++i) {
        const std::uint64_t lba = rng() % space;
        const Entry* e = t.find(Lba{lba});
        auto it = model.find(lba);
        REQUIRE((e != nullptr) == (it != model.end()));
        if (e) CHECK(e->slot == it->second.slot);
        // Windows up to two chunks long, so they cross chunk boundaries.
        const std::uint64_t n = rng() % (4 * Table::kChunkMax);
        std::vector<Entry> want;
        for (auto w = model.lower_bound(lba); w != model.end() && w->first < lba + n; ++w) want.push_back(w->second);
        const std::vector<Entry> got = collect(t.range(Lba{lba}, SectorCount{n}));
        REQUIRE(got.size() == want.size());
        for (std::size_t k = 0; k < got.size(); ++k) REQUIRE(got[k].lba == want[k].lba);
    }
}

}  // namespace

TEST_CASE("Table keeps entries sorted and finds ranges") {
    Table t;
    t = t.with({Lba{50}, SpareSlot{0}}).with({Lba{10}, SpareSlot{1}}).with({Lba{30}, SpareSlot{2}});
    REQUIRE(t.size() == 3);
    const auto all = collect(t.all());
    CHECK(all[0].lba == Lba{10});
    CHECK(all[2].lba == Lba{50});
    CHECK(t.find(Lba{30})->slot == SpareSlot{2});
    CHECK(t.find(Lba{31}) == nullptr);
    auto r = collect(t.range(Lba{10}, SectorCount{21}));  // 10..30
    REQUIRE(r.size() == 2);
    CHECK(r[1].lba == Lba{30});
    CHECK(t.range(Lba{11}, SectorCount{19}).empty());
    CHECK(t.range(Lba{10}, SectorCount{0}).empty());
    CHECK(t.range(Lba{51}, SectorCount{1000}).empty());
    auto replaced = t.with({Lba{30}, SpareSlot{9}, Entry::State::moving});
    CHECK(replaced.size() == 3);
    CHECK(replaced.find(Lba{30})->slot == SpareSlot{9});
    CHECK(replaced.any_moving(Lba{0}, SectorCount{100}));
    CHECK_FALSE(replaced.any_moving(Lba{0}, SectorCount{30}));
    CHECK(t.without(Lba{10}).size() == 2);
    CHECK(t.without(Lba{11}).size() == 3);
    CHECK(t.size() == 3);  // snapshots are immutable
    CHECK(Table().range(Lba{0}, SectorCount{10}).empty());
    CHECK(Table().all().empty());
    CHECK(Table().without(Lba{1}).size() == 0);
}

TEST_CASE("Table counts remapped and pending entries through edits") {
    Table t;
    t = t.with({Lba{1}, SpareSlot{0}});                                     // active
    t = t.with({Lba{2}, SpareSlot{0}, Entry::State::none, true});           // pending only
    t = t.with({Lba{3}, SpareSlot{1}, Entry::State::active, true});         // remapped and pending
    t = t.with({Lba{4}, SpareSlot{2}, Entry::State::moving});
    CHECK(t.slots_used() == 3);
    CHECK(t.pending() == 2);
    t = t.with({Lba{3}, SpareSlot{1}});  // rewritten: no longer pending
    CHECK(t.pending() == 1);
    t = t.without(Lba{2});
    CHECK(t.pending() == 0);
    CHECK(t.slots_used() == 3);
    t = t.without(Lba{1}).without(Lba{3}).without(Lba{4});
    CHECK(t.size() == 0);
    CHECK(t.slots_used() == 0);
    CHECK(t.chunk_count() == 0);
}

TEST_CASE("Chunks split when they grow and merge or go when they shrink") {
    Table t;
    for (std::uint64_t i = 0; i <= Table::kChunkMax; ++i) t = t.with({Lba{i * 2}, SpareSlot{i}});
    CHECK(t.chunk_count() == 2);  // split in halves past kChunkMax
    // Insert before the first chunk's first entry and between the two chunks.
    t = t.with({Lba{1}, SpareSlot{1000}});
    const std::uint64_t boundary = 2 * ((Table::kChunkMax + 1) / 2);  // first lba of chunk 2
    t = t.with({Lba{boundary - 1}, SpareSlot{1001}});
    CHECK(t.find(Lba{boundary - 1})->slot == SpareSlot{1001});
    auto across = collect(t.range(Lba{boundary - 2}, SectorCount{3}));
    REQUIRE(across.size() == 3);
    CHECK(across[0].lba == Lba{boundary - 2});
    CHECK(across[1].lba == Lba{boundary - 1});
    CHECK(across[2].lba == Lba{boundary});

    // Bulk building fills chunks to kChunkTarget.
    Table::Builder b;
    for (std::uint64_t i = 0; i < 3 * Table::kChunkTarget + 1; ++i) b.add({Lba{i}, SpareSlot{i}});
    Table big = std::move(b).finish();
    CHECK(big.chunk_count() == 4);
    CHECK(big.size() == 3 * Table::kChunkTarget + 1);
    // The lone last entry goes: its chunk is dropped (merged into its neighbour).
    Table less = big.without(Lba{3 * Table::kChunkTarget});
    CHECK(less.chunk_count() == 3);
    CHECK(less.find(Lba{3 * Table::kChunkTarget}) == nullptr);
    // Emptying the first chunk entry by entry merges the rest of it into the second.
    for (std::uint64_t i = 0; i < Table::kChunkTarget; ++i) less = less.without(Lba{i});
    CHECK(less.size() == 2 * Table::kChunkTarget);
    CHECK(less.chunk_count() == 2);
    CHECK(collect(less.all()).front().lba == Lba{Table::kChunkTarget});
    CHECK(collect(less.range(Lba{0}, SectorCount{Table::kChunkTarget + 1})).size() == 1);
    for (std::uint64_t i = Table::kChunkTarget; i < 3 * Table::kChunkTarget; ++i) less = less.without(Lba{i});
    CHECK(less.size() == 0);
    CHECK(less.chunk_count() == 0);
    CHECK(less.all().empty());
    CHECK(big.size() == 3 * Table::kChunkTarget + 1);  // untouched
}

TEST_CASE("An edit shares every chunk it does not touch") {
    std::vector<Entry> v;
    for (std::uint64_t i = 0; i < 10 * Table::kChunkTarget; ++i) v.push_back({Lba{i * 3}, SpareSlot{i}});
    const Table t(v);
    CHECK(t.size() == v.size());
    const Table u = t.with({Lba{1}, SpareSlot{99999}});
    CHECK(u.find(Lba{1}) != nullptr);
    CHECK(t.find(Lba{1}) == nullptr);
    CHECK(u.find(Lba{0}) != t.find(Lba{0}));  // the chunk that changed is a copy
    const Lba far{3 * (5 * Table::kChunkTarget)};
    CHECK(u.find(far) == t.find(far));  // the others are the same memory
    CHECK(u.without(far).find(Lba{0}) == u.find(Lba{0}));
}

TEST_CASE("Random edits agree with an ordered map, old snapshots stay as they were") {
    std::mt19937_64 rng(12345);
    const std::uint64_t space = 40'000;
    Table t;
    std::map<std::uint64_t, Entry> model;
    Table frozen;
    std::map<std::uint64_t, Entry> frozen_model;
    for (int step = 0; step < 30'000; ++step) {
        const std::uint64_t lba = rng() % space;
        // Grow for the first half, then shrink: splits first, then merges and dropped chunks.
        const bool add = step < 15'000 ? rng() % 10 < 8 : rng() % 10 < 2;
        if (add) {
            const auto kind = rng() % 4;
            Entry e{Lba{lba}, SpareSlot{rng() % 1'000'000}, kind == 0 ? Entry::State::none : Entry::State::active,
                    kind <= 1};
            t = t.with(e);
            model[lba] = e;
        } else {
            // Mostly remove something that is there.
            auto it = model.lower_bound(lba);
            const std::uint64_t victim = it != model.end() && rng() % 4 ? it->first : lba;
            t = t.without(Lba{victim});
            model.erase(victim);
        }
        if (step == 10'000) {
            frozen = t;
            frozen_model = model;
        }
        if (step % 1000 == 999) check_same(t, model, rng, space);
    }
    check_same(frozen, frozen_model, rng, space);
    // Removing the rest leaves nothing behind.
    for (const auto& [lba, e] : std::map(model)) t = t.without(Lba{lba});
    CHECK(t.size() == 0);
    CHECK(t.chunk_count() == 0);
}

TEST_CASE("Building in bulk gives the same table as inserting one by one") {
    std::mt19937_64 rng(7);
    std::map<std::uint64_t, Entry> model;
    while (model.size() < 5 * Table::kChunkTarget + 17) {
        const std::uint64_t lba = rng() % 1'000'000;
        model[lba] = {Lba{lba}, SpareSlot{model.size()}, Entry::State::active, rng() % 7 == 0};
    }
    Table::Builder b;
    Table one_by_one;
    for (const auto& [lba, e] : model) {
        b.add(e);
        one_by_one = one_by_one.with(e);
    }
    const Table bulk = std::move(b).finish();
    check_same(bulk, model, rng, 1'000'000);
    check_same(one_by_one, model, rng, 1'000'000);
    CHECK(bulk.chunk_count() == 6);
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
            std::size_t n = 0;
            for (const Entry& e : s->all()) {
                REQUIRE(e.slot.v == e.lba.v);
                REQUIRE(e.lba.v == n++);
            }
            REQUIRE(n == s->size());
            ++reads;
        }
    });
    while (reads == 0) std::this_thread::yield();
    Table t;
    // Enough entries for several chunks, so readers cross chunk boundaries while edits split.
    for (std::uint64_t i = 0; i < 3 * Table::kChunkMax; ++i) {
        t = t.with({Lba{i}, SpareSlot{i}});
        h.publish(t, TableHolder::Grace::wait);
    }
    stop = true;
    reader.join();
    CHECK(h.load()->size() == 3 * Table::kChunkMax);
    CHECK(reads > 0);
}

namespace {

// Publishes `t` with a grace period on another thread; done() says whether it has returned.
class WaitingPublish {
public:
    WaitingPublish(TableHolder& h, Table t)
        : thread_([this, &h, t = std::move(t)]() mutable {
              h.publish(std::move(t), TableHolder::Grace::wait);
              done_ = true;
          }) {}
    ~WaitingPublish() { thread_.join(); }
    bool done() const { return done_; }
    bool done_within(std::chrono::milliseconds ms) const {
        const auto until = std::chrono::steady_clock::now() + ms;
        while (!done_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return done_;
    }

private:
    std::atomic<bool> done_{false};
    std::thread thread_;
};

}  // namespace

TEST_CASE("A grace period waits for requests that pin an old snapshot") {
    TableHolder h;
    TableHolder::Pin pin = h.pin();
    CHECK(pin->size() == 0);
    {
        WaitingPublish w(h, Table().with({Lba{1}, SpareSlot{0}}));
        CHECK_FALSE(w.done_within(std::chrono::milliseconds(30)));
        CHECK(pin->size() == 0);  // the pinned table is unchanged and alive
        pin.reset();
        CHECK(w.done_within(std::chrono::seconds(10)));
    }
    CHECK(h.pin()->size() == 1);
}

TEST_CASE("A grace period also waits for snapshots older than the one it replaces") {
    // A request pinned generation 0; a publish without grace period makes generation 1; the
    // next grace period must still wait for the request on generation 0.
    TableHolder h;
    std::optional<TableHolder::Pin> oldest;
    std::thread request([&] { oldest.emplace(h.pin()); });
    request.join();  // the pin lives on after its thread ended: its hazard entry stays set
    h.publish(Table().with({Lba{1}, SpareSlot{0}}), TableHolder::Grace::skip);
    std::weak_ptr<const Table> gen1 = h.load();
    {
        WaitingPublish w(h, Table().with({Lba{1}, SpareSlot{0}}).with({Lba{2}, SpareSlot{1}}));
        CHECK_FALSE(w.done_within(std::chrono::milliseconds(30)));
        oldest.reset();
        CHECK(w.done_within(std::chrono::seconds(10)));
    }
    CHECK(gen1.expired());  // nobody used generation 1: freed by the grace period's sweep
    CHECK(h.load()->size() == 2);
}

TEST_CASE("Nested pins on one thread, beyond the hazard entries, fall back to shared copies") {
    TableHolder h;
    std::vector<TableHolder::Pin> pins;
    for (int i = 0; i < 10; ++i) pins.push_back(h.pin());
    for (const TableHolder::Pin& p : pins) CHECK(p->size() == 0);
    {
        WaitingPublish w(h, Table().with({Lba{7}, SpareSlot{0}}));
        // Released one by one, newest first: the publish waits for every one of them.
        while (!pins.empty()) {
            CHECK_FALSE(w.done());
            pins.pop_back();
        }
        CHECK(w.done_within(std::chrono::seconds(10)));
    }
    TableHolder::Pin moved = h.pin();
    TableHolder::Pin into = std::move(moved);
    CHECK(into->find(Lba{7}));
}

TEST_CASE("Pinning readers under concurrent publication see consistent tables, old ones are freed") {
    TableHolder h;
    std::atomic<bool> stop{false};
    std::atomic<long> reads{0};
    auto reader = [&] {
        while (!stop) {
            TableHolder::Pin s = h.pin();
            std::size_t n = 0;
            for (const Entry& e : s->all()) {
                REQUIRE(e.slot.v == e.lba.v);
                REQUIRE(e.lba.v == n++);
            }
            REQUIRE(n == s->size());
            ++reads;
        }
    };
    std::thread r1(reader), r2(reader);
    while (reads == 0) std::this_thread::yield();
    Table t;
    std::weak_ptr<const Table> first = h.load();
    for (std::uint64_t i = 0; i < 3 * Table::kChunkMax; ++i) {
        t = t.with({Lba{i}, SpareSlot{i}});
        h.publish(t, i % 2 ? TableHolder::Grace::wait : TableHolder::Grace::skip);
    }
    stop = true;
    r1.join();
    r2.join();
    CHECK(first.expired());
    CHECK(h.load()->size() == 3 * Table::kChunkMax);
}
