// What counts as a bad sector or a bad slot: media errors do, host errors (a full host
// filesystem, a quota, a bad argument) do not; a spare that keeps failing means the device is.
#include <doctest/doctest.h>

#include "fixtures.hpp"

using namespace remapfs;

namespace {
using test::read;
std::int64_t count(db::Store& s, const std::string& sql) { return s.connection().query_int(sql); }
}  // namespace

TEST_CASE("a full host filesystem under the image is the writer's ENOSPC, not a bad sector") {
    test::MemStack s(4096, 64, 16);
    s.inject({{"sectors", "0-63"}, {"op", "write"}, {"errno", "ENOSPC"}});
    auto d = test::pattern(8 * 4096, 1);
    CHECK(s.layer->pwrite(d, ByteOffset{8 * 4096}).error() == ENOSPC);
    CHECK(s.store->remaps().empty());
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot") == 0);
    CHECK(count(*s.store, "SELECT count(*) FROM pending") == 0);
    // Room again: the same write works, in place.
    s.faults->clear();
    REQUIRE(s.layer->pwrite(d, ByteOffset{8 * 4096}));
    CHECK(read(*s.layer, 8 * 4096, d.size()) == d);
    CHECK(s.store->remaps().empty());
}

TEST_CASE("host errors on reads are passed on and make nothing pending") {
    for (const char* err : {"EINVAL", "ENOMEM", "ETIMEDOUT"}) {
        CAPTURE(err);
        test::MemStack s(4096, 16, 4);
        s.inject({{"sectors", "3"}, {"op", "read"}, {"errno", err}});
        std::vector<std::byte> b(4096);
        auto r = s.layer->pread(b, ByteOffset{3 * 4096});
        REQUIRE_FALSE(r);
        CHECK(r.error() != EIO);
        CHECK(count(*s.store, "SELECT count(*) FROM pending") == 0);
        CHECK_FALSE(s.tables.load()->find(Lba{3}));
    }
}

TEST_CASE("a spare slot refused by the host is not retired") {
    test::MemStack s(4096, 16, 8);
    s.inject({{"sectors", "5"}, {"op", "write"}});                                          // a bad sector
    s.inject({{"sectors", "0-7"}, {"target", "spare"}, {"op", "write"}, {"errno", "ENOSPC"}});  // spare file full
    auto d = test::pattern(4096, 2);
    CHECK(s.layer->pwrite(d, ByteOffset{5 * 4096}).error() == ENOSPC);
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot") == 0);
    CHECK(s.remapper->usage().free() == 8);
}

TEST_CASE("one write tries at most three slots; a spare that keeps failing means the device is failing") {
    test::MemStack s(4096, 64, 200);
    s.inject({{"sectors", "0-63"}, {"op", "write"}});
    s.inject({{"sectors", "0-199"}, {"target", "spare"}, {"op", "write"}});
    auto d = test::pattern(4096, 3);
    CHECK(s.layer->pwrite(d, ByteOffset{1 * 4096}).error() == EIO);
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot") == remap::Remapper::kSlotAttempts);
    CHECK_FALSE(s.remapper->usage().failing);
    for (std::uint64_t l = 2; l < 20; ++l) CHECK(s.layer->pwrite(d, ByteOffset{l * 4096}).error() == EIO);
    // The streak ran out after kFailingStreak failed slots: the rest of the spare is kept.
    const auto retired = count(*s.store, "SELECT count(*) FROM retired_slot");
    CHECK(retired == remap::Remapper::kFailingStreak - 1);
    CHECK(s.remapper->usage().failing);
    CHECK(s.remapper->usage().free() == 200 - static_cast<std::uint64_t>(retired));
    // No slot is even tried until the probe interval is over.
    const auto injected = s.faults->injected();
    CHECK(s.layer->pwrite(d, ByteOffset{30 * 4096}).error() == EIO);
    CHECK(s.faults->injected() == injected + 2);  // the request, then its sector alone; no slot
    // Later the spare works again: one probe, and remaps resume.
    s.faults->clear();
    s.inject({{"sectors", "0-63"}, {"op", "write"}});
    s.clock.advance_us((remap::Remapper::kProbeSeconds + 1) * 1'000'000);
    REQUIRE(s.layer->pwrite(d, ByteOffset{31 * 4096}));
    CHECK_FALSE(s.remapper->usage().failing);
    CHECK(read(*s.layer, 31 * 4096, 4096) == d);
    REQUIRE(s.layer->pwrite(d, ByteOffset{32 * 4096}));
    CHECK(s.store->remaps().size() == 2);
}

TEST_CASE("a manual remap retires a slot that fails and uses the next one") {
    test::MemStack s(4096, 16, 4);
    auto d = test::pattern(4096, 4);
    REQUIRE(s.layer->pwrite(d, ByteOffset{6 * 4096}));
    s.inject({{"sectors", "0"}, {"target", "spare"}, {"op", "write"}});
    auto slot = s.remapper->remap(Lba{6}, db::RemapReason::manual);
    REQUIRE(slot);
    CHECK(*slot == SpareSlot{1});
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot WHERE slot = 0") == 1);
    CHECK(s.slot_bytes(*slot) == d);
    CHECK(read(*s.layer, 6 * 4096, 4096) == d);
    // The next remap does not pick the bad slot again.
    REQUIRE(s.layer->pwrite(d, ByteOffset{7 * 4096}));
    CHECK(s.remapper->remap(Lba{7}, db::RemapReason::manual).value() == SpareSlot{2});
}

TEST_CASE("a manual remap of an unreadable sector retires nothing") {
    test::MemStack s(4096, 16, 4);
    s.inject({{"sectors", "6"}, {"op", "read"}});
    CHECK(s.remapper->remap(Lba{6}, db::RemapReason::manual).error() == EIO);
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot") == 0);
    CHECK(s.remapper->usage().free() == 4);
    CHECK_FALSE(s.tables.load()->find(Lba{6}));
}

TEST_CASE("unremapping a pending sector retires its failing slot and clears pending") {
    test::MemStack s(4096, 16, 4);
    auto d = test::pattern(4096, 5);
    REQUIRE(s.layer->pwrite(d, ByteOffset{3 * 4096}));
    REQUIRE(s.remapper->remap(Lba{3}, db::RemapReason::manual));  // slot 0
    s.inject({{"sectors", "0"}, {"target", "spare"}, {"op", "read"}, {"probability", 0.5}});
    std::vector<std::byte> b(4096);
    for (int i = 0; i < 50 && count(*s.store, "SELECT count(*) FROM pending") == 0; ++i)
        (void)s.layer->pread(b, ByteOffset{3 * 4096});
    REQUIRE(s.tables.load()->find(Lba{3})->pending);
    s.faults->clear();
    REQUIRE(s.remapper->unremap(Lba{3}));
    CHECK(count(*s.store, "SELECT count(*) FROM pending") == 0);
    CHECK(count(*s.store, "SELECT count(*) FROM retired_slot WHERE slot = 0") == 1);
    CHECK(count(*s.store, "SELECT count(*) FROM free_slot") == 0);
    CHECK(read(*s.layer, 3 * 4096, 4096) == d);
}

TEST_CASE("retry backoff doubles up to a second and never wraps") {
    remap::Policy p;
    p.read_retries = 20;
    p.retry_delay_us = 10'000;
    test::MemStack s(4096, 16, 4, p);
    s.inject({{"sectors", "2"}, {"op", "read"}});
    const auto t0 = s.clock.now_us();
    std::vector<std::byte> b(4096);
    CHECK(s.layer->pread(b, ByteOffset{2 * 4096}).error() == EIO);
    // 10 + 20 + ... + 640 ms, then 1 s for the other 13 retries: 14.27 s, not 2^20 * 10 ms.
    CHECK(s.clock.now_us() - t0 == 1'270'000 + 13 * 1'000'000);
}
