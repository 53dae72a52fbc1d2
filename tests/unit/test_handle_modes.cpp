// Which opens bypass the kernel page cache (fuse/handle_modes.hpp): cached and bypassing
// handles never overlap, and cached pages never outlive a bypassing writer.
#include "fuse/handle_modes.hpp"

#include <doctest/doctest.h>

using remapfs::fuse_op::HandleModes;

TEST_CASE("an O_DIRECT open alone bypasses the page cache; a buffered one alone keeps it") {
    HandleModes m(true);
    const auto d = m.open(true);
    CHECK(d.direct_io);
    m.release(true, false);
    const auto b = m.open(false);
    CHECK_FALSE(b.direct_io);
    CHECK(b.keep_cache);  // the bypassing handle only read: nothing cached went stale
}

TEST_CASE("an O_DIRECT open while a cached handle is open takes the cached path") {
    HandleModes m(true);
    const auto a = m.open(false);
    REQUIRE_FALSE(a.direct_io);
    CHECK_FALSE(m.open(true).direct_io);
    m.release(false, true);
    m.release(false, false);
    CHECK(m.open(true).direct_io);  // both cached handles gone
}

TEST_CASE("a buffered open while a bypassing handle is open bypasses too") {
    HandleModes m(true);
    REQUIRE(m.open(true).direct_io);
    CHECK(m.open(false).direct_io);
    m.release(true, false);
    m.release(true, true);
    const auto c = m.open(false);
    CHECK_FALSE(c.direct_io);
    CHECK_FALSE(c.keep_cache);  // a bypassing writer came between: drop what was cached
    m.release(false, false);
    CHECK(m.open(false).keep_cache);  // dropped once is enough
}

TEST_CASE("direct_bypass=off: O_DIRECT opens always take the cached path") {
    HandleModes m(false);
    const auto d = m.open(true);
    CHECK_FALSE(d.direct_io);
    CHECK(d.keep_cache);
    m.release(false, true);
    CHECK(m.open(true).keep_cache);
}
