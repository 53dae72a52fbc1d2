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

void tune_bdi(const std::string& mountpoint, const BdiTuning& t) {
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
        log::warning("bdi: {} is not in /proc/self/mountinfo", mountpoint);
        return;
    }
    auto write_knob = [&](const char* name, std::uint32_t value) {
        const std::string knob = fmt::format("/sys/class/bdi/{}/{}", dev, name);
        std::ofstream f(knob);
        f << value << '\n';
        f.close();
        if (!f) log::warning("bdi: cannot set {} to {}", knob, value);
        else log::debug("bdi: {} = {}", knob, value);
    };
    write_knob("read_ahead_kb", t.readahead_kib);
    write_knob("max_ratio", t.max_dirty_percent);
}

}  // namespace remapfs::fuse_op
