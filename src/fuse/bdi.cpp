#include "fuse/bdi.hpp"

#include "remapfs/log.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace remapfs::fuse_op {
namespace {

// mountinfo writes space, tab, newline and backslash in paths as \ooo.
std::string unescape(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto octal = [&](std::size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
        if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

void set_readahead(const std::string& mountpoint, std::uint32_t kib) {
    // stat() on the mountpoint would be a FUSE request to ourselves: take the device number
    // from mountinfo instead (the last mount on that path wins).
    std::string dev;
    std::ifstream mi("/proc/self/mountinfo");
    for (std::string line; std::getline(mi, line);) {
        std::istringstream fields(line);
        std::string id, parent, majmin, root, point;
        if (fields >> id >> parent >> majmin >> root >> point && unescape(point) == mountpoint) dev = majmin;
    }
    if (dev.empty()) {
        log::warning("readahead: {} is not in /proc/self/mountinfo", mountpoint);
        return;
    }
    const std::string knob = fmt::format("/sys/class/bdi/{}/read_ahead_kb", dev);
    std::ofstream f(knob);
    f << kib << '\n';
    f.close();
    if (!f) log::warning("readahead: cannot set {} to {}", knob, kib);
    else log::debug("readahead: {} = {} KiB", knob, kib);
}

}  // namespace remapfs::fuse_op
