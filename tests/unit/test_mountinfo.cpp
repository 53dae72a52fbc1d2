// The mountinfo reader: the daemon takes its bdi from it, remapctl --mount its verdict.

#include "remapfs/sys/mountinfo.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

using remapfs::sys::read_mountinfo;
using remapfs::sys::unescape_mountinfo;

TEST_CASE("mountinfo: optional fields, escapes, and lines that are not mounts") {
    char path[] = "/tmp/remapfs-mountinfo-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    {
        std::ofstream f(path);
        // No optional field; two optional fields; a path with a space and a backslash; a
        // line cut short; a line without the "-" separator.
        f << "22 1 253:1 / / rw,relatime - ext4 /dev/vda1 rw\n"
             "97 22 0:52 / /srv/vm\\0401 rw,nosuid shared:50 master:3 - fuse.remapfs remapfs:/data/a\\134b.img rw,user_id=0\n"
             "98 22 0:53 /\n"
             "99 22 0:54 / /x rw shared:1 fuse.remapfs src rw\n";
    }
    const auto m = read_mountinfo(path);
    ::unlink(path);
    REQUIRE(m.size() == 2);
    CHECK(m[0].device == "253:1");
    CHECK(m[0].mount_point == "/");
    CHECK(m[0].fs_type == "ext4");
    CHECK(m[0].source == "/dev/vda1");
    CHECK(m[1].device == "0:52");
    CHECK(m[1].mount_point == "/srv/vm 1");
    CHECK(m[1].fs_type == "fuse.remapfs");
    CHECK(m[1].source == "remapfs:/data/a\\b.img");
}

TEST_CASE("mountinfo: a missing file is an empty table; the live one has the root") {
    CHECK(read_mountinfo("/nonexistent/mountinfo").empty());
    bool root = false;
    for (const auto& e : read_mountinfo()) root = root || e.mount_point == "/";
    CHECK(root);
}

TEST_CASE("mountinfo: unescape leaves text that is not an octal escape alone") {
    CHECK(unescape_mountinfo("a\\040b") == "a b");
    CHECK(unescape_mountinfo("a\\09b") == "a\\09b");
    CHECK(unescape_mountinfo("trailing\\") == "trailing\\");
    CHECK(unescape_mountinfo("\\011\\012") == "\t\n");
}
