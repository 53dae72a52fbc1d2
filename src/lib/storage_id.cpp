#include "remapfs/sys/storage_id.hpp"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace remapfs::sys {
namespace {

namespace fs = std::filesystem;

std::string read_line(const fs::path& p) {
    std::ifstream f(p);
    std::string s;
    if (f) std::getline(f, s);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
    return s;
}

std::string file_identity(const std::string& path) {
    struct stat st {};
    struct statfs sf {};
    if (::stat(path.c_str(), &st) != 0 || ::statfs(path.c_str(), &sf) != 0) return {};
    // f_fsid comes from the filesystem's UUID on ext4, xfs and btrfs: stable across reboots,
    // where the device number of the disk under it is not.
    unsigned fsid[2];
    static_assert(sizeof fsid == sizeof sf.f_fsid);
    std::memcpy(fsid, &sf.f_fsid, sizeof fsid);
    return fmt::format("file:fsid={:08x}{:08x}:ino={}", fsid[0], fsid[1], st.st_ino);
}

std::string block_identity(dev_t rdev) {
    const fs::path sys = fmt::format("/sys/dev/block/{}:{}", major(rdev), minor(rdev));
    std::error_code ec;
    if (const std::string loop = read_line(sys / "loop" / "backing_file"); !loop.empty())
        return "loop:" + file_identity(loop);
    // udev's names, WWN first: the one a disk keeps whatever controller or port it is on.
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator("/dev/disk/by-id", ec)) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev)
            names.push_back(e.path().filename().string());
    }
    if (!names.empty()) {
        auto rank = [](const std::string& n) {
            return n.rfind("wwn-", 0) == 0 ? 0 : n.rfind("nvme-eui.", 0) == 0 ? 1 : 2;
        };
        std::sort(names.begin(), names.end(),
                  [&](const std::string& a, const std::string& b) { return std::pair(rank(a), a) < std::pair(rank(b), b); });
        return "by-id:" + names.front();
    }
    // No udev: what the kernel shows of the disk (the partition's parent for a partition).
    const fs::path dev = fs::canonical(sys, ec);
    if (ec) return {};
    const std::string part = read_line(dev / "partition");
    const fs::path disk = part.empty() ? dev : dev.parent_path();
    for (const char* f : {"wwid", "device/wwid", "serial", "device/serial"}) {
        const std::string v = read_line(disk / f);
        if (!v.empty()) return fmt::format("sysfs:{}{}", v, part.empty() ? "" : ":part" + part);
    }
    return {};
}

}  // namespace

std::string storage_identity(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    if (S_ISBLK(st.st_mode)) return block_identity(st.st_rdev);
    if (S_ISREG(st.st_mode)) return file_identity(path);
    return {};
}

}  // namespace remapfs::sys
