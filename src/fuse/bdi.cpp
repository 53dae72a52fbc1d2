#include "fuse/bdi.hpp"

#include "remapfs/core/log.hpp"
#include "remapfs/sys/mountinfo.hpp"

#include <fmt/format.h>

#include <fstream>

namespace remapfs::fuse_op {

void tune_bdi(const std::string& mountpoint, const BdiTuning& t) {
    // stat() on the mountpoint would be a FUSE request to ourselves: take the device number
    // from mountinfo instead (the last mount on that path wins).
    std::string dev;
    for (const auto& m : sys::read_mountinfo())
        if (m.mount_point == mountpoint) dev = m.device;
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
