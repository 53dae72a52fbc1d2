#include <doctest/doctest.h>

#include "remapfs/core/result.hpp"
#include "remapfs/core/units.hpp"

using namespace remapfs;

TEST_CASE("SectorSize converts between sectors and bytes") {
    SectorSize ss(4096);
    CHECK(ss.offset(Lba{3}) == ByteOffset{12288});
    CHECK(ss.lba_of(ByteOffset{12289}) == Lba{3});
    CHECK(ss.within(ByteOffset{12289}) == 1);
    CHECK(ss.bytes(SectorCount{2}) == ByteCount{8192});
    CHECK(ss.aligned(ByteOffset{8192}));
    CHECK_FALSE(ss.aligned(ByteOffset{8193}));
    CHECK(SectorSize::valid(512));
    CHECK(SectorSize::valid(4096));
    CHECK_FALSE(SectorSize::valid(1024));
}

TEST_CASE("split_sectors: aligned request is body only") {
    auto s = split_sectors(SectorSize(512), ByteOffset{1024}, ByteCount{2048});
    CHECK(s.head.length == 0);
    CHECK(s.body_first == Lba{2});
    CHECK(s.body_count == SectorCount{4});
    CHECK(s.tail.length == 0);
    CHECK(s.first() == Lba{2});
    CHECK(s.touched() == SectorCount{4});
}

TEST_CASE("split_sectors: head, body and tail") {
    auto s = split_sectors(SectorSize(512), ByteOffset{100}, ByteCount{1500});
    // bytes 100..1600: head 100..512 (lba 0), body 512..1536 (lba 1-2), tail 1536..1600 (lba 3)
    CHECK(s.head.lba == Lba{0});
    CHECK(s.head.offset_in_sector == 100);
    CHECK(s.head.length == 412);
    CHECK(s.body_first == Lba{1});
    CHECK(s.body_count == SectorCount{2});
    CHECK(s.tail.lba == Lba{3});
    CHECK(s.tail.length == 64);
    CHECK(s.first() == Lba{0});
    CHECK(s.touched() == SectorCount{4});
}

TEST_CASE("split_sectors: request inside one sector") {
    auto s = split_sectors(SectorSize(4096), ByteOffset{4096 + 10}, ByteCount{20});
    CHECK(s.head.lba == Lba{1});
    CHECK(s.head.offset_in_sector == 10);
    CHECK(s.head.length == 20);
    CHECK(s.body_count == SectorCount{0});
    CHECK(s.tail.length == 0);
    CHECK(s.first() == Lba{1});
    CHECK(s.touched() == SectorCount{1});
}

TEST_CASE("split_sectors: head ending on a boundary, then tail only") {
    auto s = split_sectors(SectorSize(512), ByteOffset{500}, ByteCount{112});
    CHECK(s.head.length == 12);
    CHECK(s.body_count == SectorCount{0});
    CHECK(s.tail.lba == Lba{1});
    CHECK(s.tail.length == 100);
    CHECK(s.touched() == SectorCount{2});
}

namespace {
Result<int> half(int x) {
    if (x % 2) return Errno{EINVAL};
    return x / 2;
}
Result<int> quarter(int x) {
    auto h = half(x);
    if (!h) return Errno{h.error()};
    return half(*h);
}
Result<void> check_even(int x) {
    REMAPFS_TRY(half(x));
    return ok();
}
}  // namespace

TEST_CASE("Result carries a value or an errno") {
    auto r = half(8);
    REQUIRE(r.has_value());
    CHECK(*r == 4);
    auto e = half(3);
    REQUIRE_FALSE(e);
    CHECK(e.error() == EINVAL);
    CHECK(e.value_or(-1) == -1);
    CHECK(quarter(8).value() == 2);
    CHECK(quarter(6).error() == EINVAL);
    CHECK(check_even(4).has_value());
    CHECK(check_even(5).error() == EINVAL);
    CHECK(errno_name(EIO).find("EIO") == 0);
}
