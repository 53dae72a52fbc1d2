#pragma once
// The mount table as /proc/self/mountinfo has it. The daemon finds its FUSE connection's
// device number here (stat() on its own mountpoint would be a request to itself); remapctl
// finds whether a directory is a remapfs mount.

#include <string>
#include <vector>

namespace remapfs::sys {

struct MountEntry {
    std::string device;       // "major:minor", as /sys/class/bdi/ names it
    std::string mount_point;  // unescaped
    std::string fs_type;      // "fuse.remapfs"
    std::string source;       // "remapfs:/path/to/backing"
};

// In mount order (a later entry on the same path covers the earlier ones). Empty if the
// file cannot be read.
std::vector<MountEntry> read_mountinfo(const std::string& path = "/proc/self/mountinfo");

// The unescaped form of a mountinfo path field (space, tab, newline, backslash are \ooo).
std::string unescape_mountinfo(const std::string& field);

}  // namespace remapfs::sys
