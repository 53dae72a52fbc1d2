#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "fixtures.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

using namespace remapfs;

TEST_CASE("a new database is migrated to the latest schema and marked as ours") {
    test::TempDir d;
    auto s = db::Store::open(d.file("a.db"), true, false);
    CHECK(s.connection().query_int("PRAGMA user_version") == db::latest_version());
    CHECK(s.connection().query_int("PRAGMA application_id") == db::kApplicationId);
    CHECK_FALSE(s.identity());
    CHECK(s.allocator().next_slot == SpareSlot{0});
    // Strict tables refuse garbage types.
    CHECK_THROWS_AS(s.connection().exec("INSERT INTO remap VALUES ('x', 1, 'active', 'manual', 0)"), db::Error);
}

TEST_CASE("the migration ladder runs each missing step once, in order, in one transaction") {
    test::TempDir d;
    std::vector<std::string> ran;
    std::vector<db::Migration> ladder = {
        {1, "one", [&](db::Connection& c) { ran.push_back("1"); c.exec("CREATE TABLE a (x INTEGER) STRICT"); }},
        {2, "two", [&](db::Connection& c) { ran.push_back("2"); c.exec("CREATE TABLE b (x INTEGER) STRICT"); }},
    };
    {
        db::Connection c(d.file("m.db"), db::Connection::Mode::read_write_create);
        std::vector<db::Migration> first(ladder.begin(), ladder.begin() + 1);
        CHECK(db::migrate(c, first) == 1);
    }
    db::Connection c(d.file("m.db"), db::Connection::Mode::read_write);
    CHECK(db::migrate(c, ladder) == 2);
    CHECK(ran == std::vector<std::string>{"1", "2"});
    CHECK(db::migrate(c, ladder) == 2);  // nothing left to do
    CHECK(ran.size() == 2);

    // A failing step leaves the database at its old version.
    ladder.push_back({3, "broken", [](db::Connection& cc) {
                          cc.exec("CREATE TABLE c (x INTEGER) STRICT");
                          cc.exec("THIS IS NOT SQL");
                      }});
    CHECK_THROWS(db::migrate(c, ladder));
    CHECK(c.query_int("PRAGMA user_version") == 2);
    CHECK(c.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'c'") == 0);
}

TEST_CASE("foreign, newer and non-SQLite databases are refused without being changed") {
    test::TempDir d;
    SUBCASE("foreign") {
        {
            db::Connection c(d.file("f.db"), db::Connection::Mode::read_write_create);
            c.exec("CREATE TABLE notes (t TEXT)");
        }
        auto before = std::filesystem::last_write_time(d.file("f.db"));
        auto size = std::filesystem::file_size(d.file("f.db"));
        CHECK_THROWS_WITH_AS(db::Store::open(d.file("f.db"), true, false), doctest::Contains("not a remapfs database"),
                             std::runtime_error);
        CHECK(std::filesystem::last_write_time(d.file("f.db")) == before);
        CHECK(std::filesystem::file_size(d.file("f.db")) == size);
        CHECK_FALSE(std::filesystem::exists(d.file("f.db-wal")));
    }
    SUBCASE("newer") {
        {
            db::Connection c(d.file("n.db"), db::Connection::Mode::read_write_create);
            c.exec("CREATE TABLE x (y INTEGER)");
            c.exec("PRAGMA application_id = " + std::to_string(db::kApplicationId));
            c.exec("PRAGMA user_version = 99");
        }
        CHECK_THROWS_WITH_AS(db::Store::open(d.file("n.db"), true, false), doctest::Contains("newer"),
                             std::runtime_error);
    }
    SUBCASE("not SQLite") {
        std::ofstream(d.file("junk.db")) << "this is not a database, just text that is long enough to matter\n";
        CHECK_THROWS(db::Store::open(d.file("junk.db"), true, false));
    }
    SUBCASE("missing, read-only") {
        CHECK_THROWS_WITH_AS(db::Store::open(d.file("none.db"), false, true), doctest::Contains("does not exist"),
                             std::runtime_error);
        CHECK_FALSE(std::filesystem::exists(d.file("none.db")));
    }
}

namespace {

// 200 sectors of 4 KiB on a 1 MiB backing "/x", the spare right after them.
db::DeviceIdentity small_identity(std::uint64_t spare_slots) {
    db::DeviceIdentity id;
    id.uuid = db::new_uuid();
    id.backing_path = "/x";
    id.backing_bytes = ByteCount{1 << 20};
    id.sector_size = 4096;
    id.image_sectors = SectorCount{200};
    id.spare_offset = ByteOffset{200 * 4096};
    id.spare_slots = SectorCount{spare_slots};
    id.created = 123;
    return id;
}

}  // namespace

TEST_CASE("identity and remap rows round-trip") {
    test::TempDir d;
    {
        auto s = db::Store::open(d.file("i.db"), true, false);
        s.bind(small_identity(50));
        REQUIRE(s.commit_remap(Lba{7}, SpareSlot{0}, false, db::RemapReason::manual, 1));
        REQUIRE(s.commit_remap(Lba{9}, SpareSlot{1}, false, db::RemapReason::manual, 1));
        // A sector can have only one slot and a slot only one sector.
        CHECK(s.commit_remap(Lba{7}, SpareSlot{2}, false, db::RemapReason::manual, 1).error() == EIO);
        CHECK(s.commit_remap(Lba{8}, SpareSlot{1}, false, db::RemapReason::manual, 1).error() == EIO);
    }
    auto s = db::Store::open(d.file("i.db"), false, true);
    auto id = s.identity();
    REQUIRE(id);
    CHECK(id->uuid.size() == 36);
    CHECK(id->image_sectors == SectorCount{200});
    CHECK_FALSE(id->spare_path);
    auto rows = s.remaps();
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].lba == Lba{9});
    CHECK(s.allocator().next_slot == SpareSlot{2});
    CHECK(s.connection().query_int("SELECT count(*) FROM remap_list") == 2);
}

TEST_CASE("bulk remaps take slots from next_slot on and keep the allocator consistent") {
    test::TempDir d;
    auto s = db::Store::open(d.file("b.db"), true, false);
    s.bind(small_identity(5));
    REQUIRE(s.commit_remap(Lba{1}, SpareSlot{0}, false, db::RemapReason::manual, 1));
    REQUIRE(s.commit_pending(Lba{5}, EIO));
    const std::vector<Lba> lbas{Lba{3}, Lba{5}, Lba{8}};
    s.commit_remaps_bulk(lbas, db::RemapReason::bench);
    CHECK(s.allocator().next_slot == SpareSlot{4});
    CHECK(s.remap_count() == 4);
    CHECK(s.pending().empty());  // a remapped sector is no longer pending
    std::vector<std::pair<std::uint64_t, std::uint64_t>> rows;
    s.each_remap([&](Lba lba, SpareSlot slot) { rows.emplace_back(lba.v, slot.v); });
    CHECK(rows == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{1, 0}, {3, 1}, {5, 2}, {8, 3}});
    // Two more do not fit the one slot left: refused, and nothing is written.
    const std::vector<Lba> more{Lba{20}, Lba{21}};
    CHECK_THROWS_WITH_AS(s.commit_remaps_bulk(more, db::RemapReason::bench), doctest::Contains("do not fit"), std::runtime_error);
    CHECK(s.remap_count() == 4);
    CHECK(s.allocator().next_slot == SpareSlot{4});
}

TEST_CASE("the mount log opens a row per start and closes it at a clean stop") {
    test::TempDir d;
    {
        // A database from before the mount log gains it on open, rows and all kept.
        db::Connection c(d.file("old.db"), db::Connection::Mode::read_write_create);
        const auto& ladder = db::schema_ladder();
        std::vector<db::Migration> v5(ladder.begin(), ladder.begin() + 5);
        CHECK(db::migrate(c, v5) == 5);
        c.exec("INSERT INTO remap VALUES (7, 0, 'active', 'manual', 0)");
    }
    auto s = db::Store::open(d.file("old.db"), true, false);
    CHECK(s.connection().query_int("PRAGMA user_version") == db::latest_version());
    CHECK(s.connection().query_int("SELECT count(*) FROM remap") == 1);

    const std::int64_t first = s.log_mount_start(1000, 42, "0.1", "/mnt/a");
    const std::int64_t second = s.log_mount_start(2000, 43, "0.2", "/mnt/b");
    CHECK(second != first);
    s.log_mount_stop(second, 2500);
    auto& c = s.connection();
    CHECK(c.query_int("SELECT count(*) FROM mount_log") == 2);
    CHECK(c.query_int(fmt::format("SELECT stopped IS NULL FROM mount_log WHERE id = {}", first)) == 1);
    CHECK(c.query_int(fmt::format("SELECT stopped FROM mount_log WHERE id = {}", second)) == 2500);
    CHECK(c.query_int(fmt::format("SELECT pid FROM mount_log WHERE id = {}", second)) == 43);

    const db::MountSummary m = s.mount_summary();
    CHECK(m.count == 2);
    CHECK(m.not_stopped == 1);  // the first never stopped
    REQUIRE(m.last);
    CHECK(m.last->id == second);
    CHECK(m.last->stopped == std::optional<std::int64_t>{2500});
    CHECK(m.last->version == "0.2");
    CHECK(m.last->mountpoint == "/mnt/b");
}

TEST_CASE("a database that was never mounted has an empty mount summary") {
    test::TempDir d;
    auto s = db::Store::open(d.file("new.db"), true, false);
    const db::MountSummary m = s.mount_summary();
    CHECK(m.count == 0);
    CHECK(m.not_stopped == 0);
    CHECK_FALSE(m.last);
}

TEST_CASE("a remap commit waits out another connection holding the write lock") {
    test::TempDir d;
    auto s = db::Store::open(d.file("busy.db"), true, false);
    s.bind(small_identity(10));
    s.connection().set_busy_timeout(20);  // many waits in a short test, as 5 s waits are in life
    db::Connection other(d.file("busy.db"), db::Connection::Mode::read_write);
    other.exec("BEGIN IMMEDIATE");  // an operator's sqlite3 session, say
    Result<void> r = Errno{EINVAL};
    std::atomic<bool> done{false};
    std::thread t([&] {
        r = s.commit_remap(Lba{4}, SpareSlot{0}, false, db::RemapReason::write_error, 7);
        done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // 15 busy timeouts
    CHECK_FALSE(done.load());
    other.exec("COMMIT");
    t.join();
    CHECK(r);
    CHECK(s.remap_count() == 1);
    CHECK(s.identity()->generation == 7);
}
