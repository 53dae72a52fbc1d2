#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <cstring>
#include <latch>
#include <thread>

using namespace remapfs;

using test::read;

TEST_CASE("unremapped I/O passes straight through, any alignment") {
    test::MemStack s(512, 64, 8);
    auto data = test::pattern(5000, 1);
    REQUIRE(s.layer->pwrite(data, ByteOffset{300}));
    CHECK(read(*s.layer, 300, 5000) == data);
    CHECK(s.mem->raw(ByteOffset{300}, ByteCount{5000}) == data);
}

TEST_CASE("each sector of a request is checked on its own") {
    test::MemStack s(512, 64, 8);
    auto before = test::pattern(64 * 512, 2);
    REQUIRE(s.layer->pwrite(before, ByteOffset{0}));
    // Remap sectors in the middle of a multi-sector range, not only its first sector.
    auto a = s.remapper->remap(Lba{5}, db::RemapReason::manual);
    auto b = s.remapper->remap(Lba{7}, db::RemapReason::manual);
    REQUIRE(a);
    REQUIRE(b);
    // The copy moved the sector's data into its slot before the remap was published.
    CHECK(s.slot_bytes(*a) == std::vector<std::byte>(before.begin() + 5 * 512, before.begin() + 6 * 512));
    CHECK(read(*s.layer, 0, before.size()) == before);

    auto after = test::pattern(8 * 512, 3);
    REQUIRE(s.layer->pwrite(after, ByteOffset{4 * 512}));  // sectors 4..11
    CHECK(read(*s.layer, 4 * 512, after.size()) == after);
    // Remapped sectors went to their slots, the rest to the backing.
    CHECK(s.slot_bytes(*a) == std::vector<std::byte>(after.begin() + 1 * 512, after.begin() + 2 * 512));
    CHECK(s.slot_bytes(*b) == std::vector<std::byte>(after.begin() + 3 * 512, after.begin() + 4 * 512));
    CHECK(s.data_bytes(Lba{6}) == std::vector<std::byte>(after.begin() + 2 * 512, after.begin() + 3 * 512));
    // The backing's copy of a remapped sector is left alone.
    CHECK(s.data_bytes(Lba{5}) == std::vector<std::byte>(before.begin() + 5 * 512, before.begin() + 6 * 512));
}

TEST_CASE("partial sectors use read-modify-write on the remapped slot") {
    for (std::uint32_t ss : {512u, 4096u}) {
        CAPTURE(ss);
        test::MemStack s(ss, 16, 4);
        auto base = test::pattern(16 * ss, 4);
        REQUIRE(s.layer->pwrite(base, ByteOffset{0}));
        auto slot = s.remapper->remap(Lba{2}, db::RemapReason::manual);
        REQUIRE(slot);
        // Head partial in sector 2, body sector 3, tail partial in sector 4.
        const std::uint64_t off = 2 * ss + 100;
        auto patch = test::pattern(2 * ss, 5);
        REQUIRE(s.layer->pwrite(patch, ByteOffset{off}));
        std::memcpy(base.data() + off, patch.data(), patch.size());
        CHECK(read(*s.layer, 0, base.size()) == base);
        CHECK(s.slot_bytes(*slot) == std::vector<std::byte>(base.begin() + 2 * ss, base.begin() + 3 * ss));
        // Tiny write inside one remapped sector.
        auto tiny = test::pattern(7, 6);
        REQUIRE(s.layer->pwrite(tiny, ByteOffset{2 * ss + 1}));
        std::memcpy(base.data() + 2 * ss + 1, tiny.data(), tiny.size());
        CHECK(read(*s.layer, 2 * ss, ss) == std::vector<std::byte>(base.begin() + 2 * ss, base.begin() + 3 * ss));
    }
}

TEST_CASE("discard zeros remapped and unremapped sectors alike") {
    test::MemStack s(512, 16, 4);
    REQUIRE(s.layer->pwrite(test::pattern(16 * 512, 7), ByteOffset{0}));
    REQUIRE(s.remapper->remap(Lba{3}, db::RemapReason::manual));
    REQUIRE(s.layer->discard(ByteOffset{2 * 512 + 10}, ByteCount{3 * 512}));
    auto after = read(*s.layer, 0, 16 * 512);
    for (std::size_t i = 2 * 512 + 10; i < 5 * 512 + 10; ++i) REQUIRE(after[i] == std::byte{0});
    CHECK(after[2 * 512 + 9] != std::byte{0});
}

TEST_CASE("unremap copies the data back and frees the slot") {
    test::MemStack s(4096, 8, 2);
    auto data = test::pattern(8 * 4096, 8);
    REQUIRE(s.layer->pwrite(data, ByteOffset{0}));
    auto slot = s.remapper->remap(Lba{1}, db::RemapReason::manual);
    REQUIRE(slot);
    auto newer = test::pattern(4096, 9);
    REQUIRE(s.layer->pwrite(newer, ByteOffset{4096}));
    REQUIRE(s.remapper->unremap(Lba{1}));
    CHECK(s.data_bytes(Lba{1}) == newer);
    CHECK(read(*s.layer, 4096, 4096) == newer);
    CHECK(s.remapper->unremap(Lba{1}).error() == ENOENT);
    // The freed slot is reused first.
    auto again = s.remapper->remap(Lba{6}, db::RemapReason::manual);
    REQUIRE(again);
    CHECK(*again == *slot);
}

TEST_CASE("remap refuses duplicates, out-of-range sectors and full spares") {
    test::MemStack s(4096, 8, 2);
    REQUIRE(s.remapper->remap(Lba{0}, db::RemapReason::manual));
    CHECK(s.remapper->remap(Lba{0}, db::RemapReason::manual).error() == EEXIST);
    CHECK(s.remapper->remap(Lba{8}, db::RemapReason::manual).error() == EINVAL);
    REQUIRE(s.remapper->remap(Lba{1}, db::RemapReason::manual));
    CHECK(s.remapper->usage().exhausted());
    CHECK(s.remapper->remap(Lba{2}, db::RemapReason::manual).error() == ENOSPC);
    // Everything else keeps working.
    auto d = test::pattern(4096, 10);
    REQUIRE(s.layer->pwrite(d, ByteOffset{2 * 4096}));
    CHECK(read(*s.layer, 2 * 4096, 4096) == d);
}

TEST_CASE("remaps are persisted with their allocator state") {
    test::MemStack s(4096, 8, 4);
    REQUIRE(s.remapper->remap(Lba{3}, db::RemapReason::manual));
    REQUIRE(s.remapper->remap(Lba{5}, db::RemapReason::manual));
    REQUIRE(s.remapper->unremap(Lba{3}));
    auto rows = s.store->remaps();
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].lba == Lba{5});
    CHECK(rows[0].slot == SpareSlot{1});
    CHECK(rows[0].reason == "manual");
    auto a = s.store->allocator();
    CHECK(a.next_slot == SpareSlot{2});
    CHECK(a.free_slots == std::vector<SpareSlot>{SpareSlot{0}});
}

TEST_CASE("writers racing a remap never lose data") {
    // Writers keep rewriting sector 4 while it is remapped and unremapped; at the end the
    // sector must hold the last value written, wherever it lives.
    test::MemStack s(512, 16, 4);
    REQUIRE(s.layer->pwrite(test::pattern(16 * 512, 11), ByteOffset{0}));
    std::atomic<bool> stop{false};
    std::atomic<unsigned> last{0};
    std::thread writer([&] {
        for (unsigned i = 1; !stop; ++i) {
            auto d = test::pattern(512, i);
            REQUIRE(s.layer->pwrite(d, ByteOffset{4 * 512}));
            last = i;
        }
    });
    for (int k = 0; k < 50; ++k) {
        REQUIRE(s.remapper->remap(Lba{4}, db::RemapReason::manual));
        REQUIRE(s.remapper->unremap(Lba{4}));
    }
    REQUIRE(s.remapper->remap(Lba{4}, db::RemapReason::manual));
    stop = true;
    writer.join();
    CHECK(read(*s.layer, 4 * 512, 512) == test::pattern(512, last));
}

namespace {

// Holds the first read of one physical offset until released: the moment between a
// read-modify-write's read and its write-back, made as long as a test needs.
class Gate final : public block::BlockLayer {
public:
    Gate(std::unique_ptr<block::BlockLayer> next, ByteOffset at) : BlockLayer(std::move(next)), at_(at) {}
    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override {
        if (off == at_ && !passed_.exchange(true)) {
            entered_.count_down();
            open_.wait();
        }
        return next_->pread(buf, off);
    }
    void wait_entered() { entered_.wait(); }
    void open() { open_.count_down(); }

private:
    ByteOffset at_;
    std::atomic<bool> passed_{false};
    std::latch entered_{1};
    std::latch open_{1};
};

}  // namespace

TEST_CASE("a whole-sector write waits for a read-modify-write of the same sector in flight") {
    // 512-byte writes into 4 KiB sectors (a direct-io loop device's default) are RMW: read,
    // patch, write back. A whole-sector write acknowledged between the read and the write-back
    // must not be overwritten with the old bytes.
    test::TempDir dir;
    FakeClock clock;
    const Geometry g{SectorSize(4096), SectorCount{16}, SectorCount{4}};
    auto mem = std::make_unique<block::MemoryBacking>(g.physical_bytes());
    block::MemoryBacking& raw = *mem;
    auto gate_owned = std::make_unique<Gate>(std::move(mem), g.data_offset(Lba{3}));
    Gate& gate = *gate_owned;
    auto store = db::Store::open(dir.file("t.db"), true, false);
    remap::TableHolder tables;
    remap::RemapLayer layer(std::move(gate_owned), remap::RemapSetup{g, tables, store, store.allocator(), {}, clock,
                                                                     Label{"race", 4096, 16, 4, g.layout}, 1, 0, false});

    const auto old_sector = test::pattern(4096, 20);
    REQUIRE(raw.pwrite(old_sector, g.data_offset(Lba{3})));
    const auto patch = test::pattern(512, 21);
    const auto whole = test::pattern(4096, 22);

    std::thread rmw([&] { REQUIRE(layer.pwrite(patch, ByteOffset{3 * 4096 + 1024})); });
    gate.wait_entered();  // the RMW has read the old sector and is held there
    std::atomic<bool> whole_done{false};
    std::thread writer([&] {
        REQUIRE(layer.pwrite(whole, ByteOffset{3 * 4096}));
        whole_done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    CHECK_FALSE(whole_done.load());  // it waits for the RMW rather than land under it
    gate.open();
    rmw.join();
    writer.join();
    CHECK(read(layer, 3 * 4096, 4096) == whole);  // the last acknowledged write is what is there
}
