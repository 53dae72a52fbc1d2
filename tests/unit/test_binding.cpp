// What ties a database to its device and refuses the wrong one: labels, the commit generation,
// a separate spare's backing identity, a first use on a disk that holds data, the database file.
#include <doctest/doctest.h>

#include "fixtures.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs/block/label.hpp"
#include "remapfs/instance/rebuild.hpp"
#include "remapfs/sys/storage_id.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

using namespace remapfs;

namespace {
using test::make_file;


void write_at(const std::string& p, std::uint64_t off, const void* data, std::size_t n) {
    int fd = ::open(p.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, data, n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
    ::close(fd);
}

std::vector<std::byte> read_at(const std::string& p, std::uint64_t off, std::size_t n) {
    std::vector<std::byte> v(n);
    int fd = ::open(p.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pread(fd, v.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
    ::close(fd);
    return v;
}

InstanceOptions opts(const test::TempDir& d, const std::string& backing = "backing", const std::string& db = "db") {
    InstanceOptions o;
    o.backing_path = d.file(backing);
    o.db_path = d.file(db);
    return o;
}

void copy(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
}

std::vector<std::byte> read_image(Instance& in, Lba lba) {
    std::vector<std::byte> v(in.geometry().sector_size.bytes());
    REQUIRE(in.image().pread(v, in.geometry().data_offset(lba)));
    return v;
}

}  // namespace

TEST_CASE("two same-size backings with separate spares that swap names are refused") {
    test::TempDir d;
    for (const char* n : {"a", "b"}) {
        make_file(d.file(n), 8 << 20);
        make_file(d.file(std::string(n) + ".spare"), 1 << 20);
        auto o = opts(d, n, std::string(n) + ".db");
        o.spare_path = d.file(std::string(n) + ".spare");
        Instance::open(o).reset();
    }
    // After a reboot /dev/sdb is the other disk: here, the files trade names.
    std::filesystem::rename(d.file("a"), d.file("t"));
    std::filesystem::rename(d.file("b"), d.file("a"));
    std::filesystem::rename(d.file("t"), d.file("b"));
    auto o = opts(d, "a", "a.db");
    CHECK_THROWS_WITH_AS(Instance::open(o), doctest::Contains("were two disks swapped"), std::runtime_error);
    SUBCASE("a backing copied on purpose is taken with -o rebind, and remembered") {
        o.rebind = true;
        Instance::open(o).reset();
        o.rebind = false;
        Instance::open(o).reset();
    }
}

TEST_CASE("a restored older database is refused and the table is rebuilt from the device") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    const auto a = test::pattern(4096, 1), b = test::pattern(4096, 2);
    {
        auto in = Instance::open(opts(d));
        REQUIRE(in->image().pwrite(a, ByteOffset{10 * 4096}));
        REQUIRE(in->remapper().remap(Lba{10}, db::RemapReason::manual));
    }
    copy(d.file("db"), d.file("backup.db"));  // yesterday's backup
    {
        auto in = Instance::open(opts(d));
        REQUIRE(in->image().pwrite(b, ByteOffset{20 * 4096}));
        REQUIRE(in->remapper().remap(Lba{20}, db::RemapReason::manual));
        REQUIRE(in->remapper().unremap(Lba{10}));
        REQUIRE(in->remapper().remap(Lba{30}, db::RemapReason::manual));
    }
    // The sectors' old places now hold something else: serving the old table would show it.
    const auto junk = test::pattern(4096, 3);
    write_at(d.file("backing"), 20 * 4096, junk.data(), junk.size());
    copy(d.file("backup.db"), d.file("db"));
    CHECK_THROWS_WITH_AS(Instance::open(opts(d)), doctest::Contains("older than the device"), std::runtime_error);

    RebuildOptions r;
    r.db_path = d.file("db");
    const RebuildResult res = rebuild_database(r);
    CHECK(res.remaps_before == 1);
    CHECK(res.report.state.remaps.size() == 2);
    CHECK(res.generation == 4);
    auto in = Instance::open(opts(d));
    CHECK_FALSE(in->tables().load()->find(Lba{10}));
    CHECK(in->tables().load()->find(Lba{20}));
    CHECK(in->tables().load()->find(Lba{30}));
    CHECK(read_image(*in, Lba{20}) == b);
    CHECK(read_image(*in, Lba{10}) == a);
    // The rebuilt table goes on as usual.
    REQUIRE(in->remapper().remap(Lba{40}, db::RemapReason::manual));
    CHECK(in->remapper().generation() == 5);
}

TEST_CASE("a lost database is rebuilt from the device into a new one") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    const auto a = test::pattern(4096, 4);
    std::string uuid;
    {
        auto in = Instance::open(opts(d));
        uuid = in->identity().uuid;
        REQUIRE(in->image().pwrite(a, ByteOffset{7 * 4096}));
        REQUIRE(in->remapper().remap(Lba{7}, db::RemapReason::manual));
    }
    std::filesystem::remove(d.file("db"));
    RebuildOptions r;
    r.db_path = d.file("new.db");
    CHECK_THROWS_WITH_AS(rebuild_database(r), doctest::Contains("give the backing"), std::runtime_error);
    r.backing_path = d.file("backing");
    const RebuildResult res = rebuild_database(r);
    CHECK(res.created_db);
    CHECK(res.uuid == uuid);
    write_at(d.file("backing"), 7 * 4096, test::pattern(4096, 5).data(), 4096);
    auto in = Instance::open(opts(d, "backing", "new.db"));
    CHECK(in->identity().uuid == uuid);
    CHECK(read_image(*in, Lba{7}) == a);
}

TEST_CASE("a first mount refuses a spare area that holds data, and says what") {
    test::TempDir d;
    const std::uint64_t size = 16 << 20;
    make_file(d.file("backing"), size);
    SUBCASE("a GPT backup header in the last sector") {
        write_at(d.file("backing"), size - 512, "EFI PART", 8);
        CHECK_THROWS_WITH_AS(Instance::open(opts(d)), doctest::Contains("GPT backup header"), std::runtime_error);
    }
    SUBCASE("a filesystem's data near the end") {
        const auto junk = test::pattern(4096, 6);
        write_at(d.file("backing"), size - (200 << 10), junk.data(), junk.size());
        CHECK_THROWS_WITH_AS(Instance::open(opts(d)), doctest::Contains("give -o force"), std::runtime_error);
        CHECK_FALSE(std::filesystem::exists(d.file("db")));
        auto o = opts(d);
        o.force = true;
        Instance::open(o).reset();
        Instance::open(opts(d)).reset();  // and from then on it is ours
    }
    SUBCASE("data in the image part is the user's and stays") {
        const auto data = test::pattern(4096, 7);
        write_at(d.file("backing"), 4096, data.data(), data.size());
        auto in = Instance::open(opts(d));
        CHECK(read_image(*in, Lba{1}) == data);
    }
}

TEST_CASE("a first mount cut off between the database and the labels is finished by the next") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    std::string uuid;
    Geometry g;
    {
        auto in = Instance::open(opts(d));
        uuid = in->identity().uuid;
        g = in->geometry();
    }
    // As if it had stopped right after binding: no labels, and the row says so.
    const std::vector<std::byte> zeros(g.label_area_bytes().v);
    write_at(d.file("backing"), g.label_offset().v, zeros.data(), zeros.size());
    {
        db::Connection c(d.file("db"), db::Connection::Mode::read_write);
        c.exec("UPDATE device SET initialised = 0");
    }
    auto in = Instance::open(opts(d));
    CHECK(in->identity().uuid == uuid);
    std::array<std::byte, 4096> raw{};
    auto v = read_at(d.file("backing"), g.label_offset().v, 4096);
    std::copy(v.begin(), v.end(), raw.begin());
    REQUIRE(Label::decode(raw));
    CHECK(Label::decode(raw)->uuid == uuid);
}

TEST_CASE("a torn newest label copy leaves the older one, which the database is not older than") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    Geometry g;
    {
        auto in = Instance::open(opts(d));
        g = in->geometry();
        REQUIRE(in->remapper().remap(Lba{3}, db::RemapReason::manual));  // generation 1: copy B
    }
    const auto junk = test::pattern(512, 8);
    write_at(d.file("backing"), g.label_offset(1).v + 1024, junk.data(), junk.size());
    auto in = Instance::open(opts(d));
    CHECK(in->tables().load()->find(Lba{3}));
}

TEST_CASE("an unclean stop is noticed and the slot headers are put right at the next open") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    Geometry g;
    std::uint64_t tag = 0;
    {
        auto in = Instance::open(opts(d));
        g = in->geometry();
        tag = in->spare_meta().device_tag();
        REQUIRE(in->remapper().remap(Lba{3}, db::RemapReason::manual));  // slot 0
    }
    db::Connection c(d.file("db"), db::Connection::Mode::read_write);
    CHECK(c.query_int("SELECT dirty FROM device") == 0);  // a clean close
    // A crash in the middle of the next remap: its header on slot 1, never committed.
    c.exec("UPDATE device SET dirty = 1");
    const auto stale = SlotHeader{SlotHeader::State::mapped, Lba{9}, 2}.encode(tag);
    write_at(d.file("backing"), g.header_block_offset(0).v + kSlotHeaderBytes, stale.data(), stale.size());
    {
        auto in = Instance::open(opts(d));
        CHECK(c.query_int("SELECT dirty FROM device") == 1);  // open
    }
    auto raw = read_at(d.file("backing"), g.header_block_offset(0).v, 2 * kSlotHeaderBytes);
    CHECK(SlotHeader::decode(raw.data(), tag) == SlotHeader{SlotHeader::State::mapped, Lba{3}, 1});
    CHECK(SlotHeader::decode(raw.data() + kSlotHeaderBytes, tag) == SlotHeader{});
    CHECK(c.query_int("SELECT dirty FROM device") == 0);
}

TEST_CASE("the database is created for its owner alone, and links or other owners are refused") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    Instance::open(opts(d)).reset();
    struct stat st {};
    REQUIRE(::stat(d.file("db").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::filesystem::create_symlink(d.file("db"), d.file("link.db"));
    CHECK_THROWS_WITH_AS(Instance::open(opts(d, "backing", "link.db")), doctest::Contains("symbolic link"),
                         std::runtime_error);
    if (::geteuid() == 0) {
        REQUIRE(::chown(d.file("db").c_str(), 4321, 4321) == 0);
        CHECK_THROWS_WITH_AS(Instance::open(opts(d)), doctest::Contains("belongs to uid 4321"), std::runtime_error);
    }
}

namespace {
std::uint64_t fnv1a(const std::byte* p, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<std::uint64_t>(p[i])) * 0x100000001b3ULL;
    return h;
}
}  // namespace

TEST_CASE("a device made by remapfs 0.1 (layout 1) mounts as before and keeps its layout") {
    test::TempDir d;
    const std::uint64_t size = 16 << 20, spare = 1 << 20, image = size - spare, slots = (spare - 4096) / 4096;
    make_file(d.file("backing"), size);
    const std::string backing = std::filesystem::canonical(d.file("backing")).string();
    {
        // What 0.1 left: schema 6, its device row, sector 3 remapped to slot 0.
        db::Connection c(d.file("db"), db::Connection::Mode::read_write_create);
        const auto& ladder = db::schema_ladder();
        REQUIRE(db::migrate(c, std::vector<db::Migration>(ladder.begin(), ladder.begin() + 6)) == 6);
        c.exec(fmt::format("INSERT INTO device VALUES (1, 'old-device', '{}', {}, 4096, {}, NULL, {}, {}, 0)", backing,
                           size, image / 4096, image, slots));
        c.exec("INSERT INTO remap VALUES (3, 0, 'active', 'manual', 0); UPDATE allocator SET next_slot = 1");
    }
    // Its label: format 1 (no layout, role or generation), one copy right after the image.
    auto raw = Label{"old-device", 4096, image / 4096, slots}.encode();
    raw[8] = std::byte{1};
    std::fill(raw.begin() + 68, raw.begin() + 84, std::byte{0});
    const std::uint64_t sum = fnv1a(raw.data(), 4096 - 8);
    for (int i = 0; i < 8; ++i) raw[4096 - 8 + i] = static_cast<std::byte>(sum >> (8 * i));
    write_at(d.file("backing"), image, raw.data(), raw.size());
    const auto data = test::pattern(4096, 9);
    write_at(d.file("backing"), image + 4096, data.data(), data.size());  // slot 0, layout 1

    auto in = Instance::open(opts(d));
    CHECK(in->geometry().layout == 1);
    CHECK(in->geometry().slot_offset(SpareSlot{1}).v == image + 2 * 4096);
    CHECK(read_image(*in, Lba{3}) == data);
    const auto more = test::pattern(4096, 10);
    REQUIRE(in->image().pwrite(more, ByteOffset{5 * 4096}));
    REQUIRE(in->remapper().remap(Lba{5}, db::RemapReason::manual));
    in.reset();
    CHECK(read_at(d.file("backing"), image + 2 * 4096, 4096) == more);  // slot 1 where 0.1 put it
    in = Instance::open(opts(d));
    CHECK(read_image(*in, Lba{5}) == more);
}

TEST_CASE("recover refuses a database that is not older than the device, unless forced") {
    test::TempDir d;
    make_file(d.file("backing"), 16 << 20);
    {
        auto in = Instance::open(opts(d));
        REQUIRE(in->remapper().remap(Lba{3}, db::RemapReason::manual));
    }
    RebuildOptions r;
    r.db_path = d.file("db");
    CHECK_THROWS_WITH_AS(rebuild_database(r), doctest::Contains("not older than the device"), std::runtime_error);
    r.force = true;
    CHECK(rebuild_database(r).report.state.remaps.size() == 1);
}

TEST_CASE("a backing's identity: the same disk under another scheme is the same, another disk is not") {
    using sys::StorageId;
    const auto disk = StorageId::parse("kind=disk;serial=S1;wwid=naa.5000;part=2");
    CHECK(disk.same_as(StorageId::parse("kind=disk;wwid=naa.5000;part=2")));
    CHECK(disk.same_as(StorageId::parse("kind=disk;serial=S1;part=2")));
    CHECK_FALSE(disk.same_as(StorageId::parse("kind=disk;serial=S2;wwid=naa.6000;part=2")));
    CHECK_FALSE(disk.same_as(StorageId::parse("kind=disk;serial=S1;wwid=naa.5000;part=3")));  // another partition
    CHECK(disk.same_as(StorageId::parse("kind=disk")));  // a disk without names: nothing can tell
    const auto file = StorageId::parse("kind=file;fsuuid=ab;fsid=1;ino=7");
    CHECK(file.same_as(StorageId::parse("kind=file;fsuuid=ab;fsid=2;ino=7")));  // xfs after a renumbering
    CHECK_FALSE(file.same_as(StorageId::parse("kind=file;fsuuid=ab;fsid=1;ino=8")));
    CHECK_FALSE(file.same_as(StorageId::parse("kind=file;fsuuid=cd;fsid=1;ino=7")));
    CHECK_FALSE(file.same_as(disk));
    test::TempDir d;
    make_file(d.file("f"), 4096);
    const auto here = StorageId::of(d.file("f"));
    CHECK(here.has_stable_name());
    CHECK(here.same_as(StorageId::parse(here.text())));
}
