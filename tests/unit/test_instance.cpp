#include <doctest/doctest.h>

#include "fixtures.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs/block/label.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>

using namespace remapfs;

namespace {
using test::make_file;
InstanceOptions opts(const test::TempDir& d) {
    InstanceOptions o;
    o.backing_path = d.file("backing");
    o.db_path = d.file("db");
    o.backing_io = BackingIo::buffered;
    return o;
}
}  // namespace

TEST_CASE("sizes parse with units and percentages; nonsense is refused") {
    CHECK(parse_size("4096") == 4096);
    CHECK(parse_size("64K") == 65536);
    CHECK(parse_size("3M") == 3u << 20);
    CHECK(parse_size("2G") == 2ull << 30);
    CHECK_THROWS_AS(parse_size("abc"), std::invalid_argument);
    CHECK_THROWS_AS(parse_size("10Q"), std::invalid_argument);
    CHECK_THROWS_AS(parse_size("-1"), std::invalid_argument);
    CHECK(parse_spare_size("5%").percent == 5);
    CHECK_THROWS_AS(parse_spare_size("60%"), std::invalid_argument);
    CHECK_THROWS_AS(parse_spare_size("0"), std::invalid_argument);
    CHECK_THROWS_AS(parse_spare_size("%"), std::invalid_argument);
}

TEST_CASE("a tail spare leaves the image the rest of the backing, label first") {
    test::TempDir d;
    make_file(d.file("backing"), 64 << 20);
    auto in = Instance::open(opts(d));
    const Geometry& g = in->geometry();
    // default spare: max(1 MiB, 1 %) = 1 MiB for 64 MiB: two label copies, two header blocks
    // and 252 slots of 4 KiB fill it exactly.
    CHECK(g.image_bytes().v == (64u << 20) - (1u << 20));
    CHECK(g.layout == 2);
    CHECK(g.header_blocks() == 2);
    CHECK(g.spare_slots.v == 252);
    CHECK(g.physical_bytes().v == 64u << 20);
    CHECK(in->identity().uuid.size() == 36);
}

TEST_CASE("remaps survive a reopen and the label binds the database to its backing") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    auto data = test::pattern(4096, 42);
    {
        auto in = Instance::open(opts(d));
        REQUIRE(in->image().pwrite(data, ByteOffset{10 * 4096}));
        auto slot = in->remapper().remap(Lba{10}, db::RemapReason::manual);
        REQUIRE(slot);
        CHECK(*slot == SpareSlot{0});
    }
    {
        auto in = Instance::open(opts(d));
        CHECK(in->tables().load()->find(Lba{10}));
        std::vector<std::byte> back(4096);
        REQUIRE(in->image().pread(back, ByteOffset{10 * 4096}));
        CHECK(back == data);
        // The slot holds the data (read the backing file directly).
        std::ifstream f(d.file("backing"), std::ios::binary);
        f.seekg(static_cast<std::streamoff>(in->geometry().slot_offset(SpareSlot{0}).v));
        std::vector<char> raw(4096);
        f.read(raw.data(), 4096);
        CHECK(std::memcmp(raw.data(), data.data(), 4096) == 0);
    }
    SUBCASE("the same database on another backing of the same size is refused") {
        make_file(d.file("other"), 16 << 20);
        auto o = opts(d);
        o.backing_path = d.file("other");
        CHECK_THROWS_WITH_AS(Instance::open(o), doctest::Contains("no remapfs label"), std::runtime_error);
    }
    SUBCASE("a new database on a labelled backing is refused and not left behind") {
        auto o = opts(d);
        o.db_path = d.file("fresh.db");
        CHECK_THROWS_WITH_AS(Instance::open(o), doctest::Contains("already belongs"), std::runtime_error);
        CHECK_FALSE(std::filesystem::exists(d.file("fresh.db")));
    }
    SUBCASE("options that contradict the database are refused") {
        auto o = opts(d);
        o.sector_size = 512;
        CHECK_THROWS_WITH_AS(Instance::open(o), doctest::Contains("sector_size"), std::runtime_error);
    }
}

TEST_CASE("a reopen loads remaps and pending sectors into one table") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    {
        auto in = Instance::open(opts(d));
        REQUIRE(in->remapper().remap(Lba{10}, db::RemapReason::manual));
        REQUIRE(in->remapper().remap(Lba{20}, db::RemapReason::manual));
        REQUIRE(in->remapper().remap(Lba{30}, db::RemapReason::manual));
        // Pending before, between and after the remaps, and on a remapped sector.
        for (std::uint64_t lba : {2, 15, 20, 40}) (void)in->remapper().mark_pending(Lba{lba}, EIO);
    }
    auto in = Instance::open(opts(d));
    remap::Snapshot t = in->tables().load();
    std::vector<std::uint64_t> lbas;
    for (const remap::Entry& e : t->all()) lbas.push_back(e.lba.v);
    CHECK(lbas == std::vector<std::uint64_t>{2, 10, 15, 20, 30, 40});
    CHECK(t->slots_used() == 3);
    CHECK(t->pending() == 4);
    CHECK(t->find(Lba{20})->remapped());
    CHECK(t->find(Lba{20})->pending);
    CHECK_FALSE(t->find(Lba{15})->remapped());
    CHECK(t->find(Lba{15})->pending);
    CHECK_FALSE(t->find(Lba{10})->pending);
}

TEST_CASE("bad backings are refused before anything is written") {
    test::TempDir d;
    SUBCASE("missing") {
        CHECK_THROWS_AS(Instance::open(opts(d)), std::runtime_error);
        CHECK_FALSE(std::filesystem::exists(d.file("db")));
    }
    SUBCASE("too small for its spare") {
        make_file(d.file("backing"), 1 << 20);
        CHECK_THROWS_WITH_AS(Instance::open(opts(d)), doctest::Contains("too small"), std::runtime_error);
        CHECK_FALSE(std::filesystem::exists(d.file("db")));
    }
    SUBCASE("a directory") {
        std::filesystem::create_directory(d.file("backing"));
        CHECK_THROWS_WITH_AS(Instance::open(opts(d)), doctest::Contains("not a regular file"), std::runtime_error);
    }
}

TEST_CASE("a separate spare file keeps the whole backing for the image") {
    test::TempDir d;
    make_file(d.file("backing"), 8 << 20);
    make_file(d.file("spare"), 1 << 20);
    auto o = opts(d);
    o.spare_path = d.file("spare");
    auto in = Instance::open(o);
    CHECK(in->geometry().image_bytes().v == 8u << 20);
    CHECK(in->geometry().spare_slots.v == 252);
    auto slot = in->remapper().remap(Lba{0}, db::RemapReason::manual);
    REQUIRE(slot);
    // Reopen without naming the spare: the database remembers it.
    in.reset();
    auto again = Instance::open(opts(d));
    CHECK(again->identity().spare_path);
    CHECK(again->tables().load()->size() == 1);
}

TEST_CASE("the label detects corruption") {
    Label l{"0123", 4096, 100, 10, 2, Label::Role::spare, 77};
    auto raw = l.encode();
    auto back = Label::decode(raw);
    REQUIRE(back);
    CHECK(back->uuid == "0123");
    CHECK(back->spare_slots == 10);
    CHECK(back->layout == 2);
    CHECK(back->role == Label::Role::spare);
    CHECK(back->generation == 77);
    raw[20] ^= std::byte{1};
    CHECK_FALSE(Label::decode(raw));
}

TEST_CASE("slot headers round-trip and refuse torn or foreign ones") {
    const std::uint64_t tag = Label{"1234abcd-0000-4000-8000-000000000000"}.device_tag();
    const SlotHeader h{SlotHeader::State::mapped, Lba{123456789}, 42};
    auto raw = h.encode(tag);
    CHECK(SlotHeader::decode(raw.data(), tag) == h);
    CHECK_FALSE(SlotHeader::decode(raw.data(), tag ^ 2));  // another device's
    raw[17] ^= std::byte{4};
    CHECK_FALSE(SlotHeader::decode(raw.data(), tag));  // torn
    const SlotHeader::Raw zeros{};
    CHECK(SlotHeader::decode(zeros.data(), tag) == SlotHeader{});  // never written: blank
    CHECK(SlotHeader{}.encode(tag) == zeros);
}

TEST_CASE("spare sizes come out the same from the slot count and back") {
    for (std::uint32_t ss : {512u, 4096u})
        for (std::uint64_t bytes : {12288ull, 1ull << 20, (1ull << 20) + 777, 3ull << 30}) {
            CAPTURE(ss);
            CAPTURE(bytes);
            const SectorCount n = Geometry::slots_fitting(ByteCount{bytes}, SectorSize(ss));
            const Geometry g{SectorSize(ss), SectorCount{1}, n};
            CHECK(g.spare_region_bytes().v <= bytes);
            const Geometry one_more{SectorSize(ss), SectorCount{1}, SectorCount{n.v + 1}};
            CHECK(one_more.spare_region_bytes().v > bytes);
        }
}
