#include "remapfs/sys/storage_id.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#ifndef FS_IOC_GETFSUUID  // Linux 6.5; Debian 12's headers are older than the kernels it runs
struct fsuuid2 {
    __u8 len;
    __u8 uuid[16];
};
#define FS_IOC_GETFSUUID _IOR(0x15, 0, struct fsuuid2)
#endif

namespace remapfs::sys {
namespace {

namespace fs = std::filesystem;
using Parts = std::map<std::string, std::string>;

std::string read_line(const fs::path& p) {
    std::ifstream f(p);
    std::string s;
    if (f) std::getline(f, s);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\0')) s.pop_back();
    return s;
}

// The filesystem's UUID: the ioctl where the kernel has it, else udev's by-uuid link to the
// device it lives on.
std::string fs_uuid(const std::string& path, dev_t dev) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsuuid2 u{};
        u.len = sizeof u.uuid;
        const bool got = ::ioctl(fd, FS_IOC_GETFSUUID, &u) == 0 && u.len > 0;
        ::close(fd);
        if (got) {
            std::string hex;
            for (unsigned i = 0; i < u.len && i < sizeof u.uuid; ++i) hex += fmt::format("{:02x}", u.uuid[i]);
            return hex;
        }
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/dev/disk/by-uuid", ec)) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev) {
            std::string u = e.path().filename().string();
            std::erase(u, '-');
            for (char& c : u) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return u;
        }
    }
    return {};
}

void file_parts(const std::string& path, const std::string& prefix, Parts& p) {
    struct stat st {};
    struct statfs sf {};
    if (::stat(path.c_str(), &st) != 0 || ::statfs(path.c_str(), &sf) != 0) return;
    unsigned fsid[2];
    static_assert(sizeof fsid == sizeof sf.f_fsid);
    std::memcpy(fsid, &sf.f_fsid, sizeof fsid);
    p[prefix + "ino"] = std::to_string(st.st_ino);
    p[prefix + "fsid"] = fmt::format("{:08x}{:08x}", fsid[0], fsid[1]);
    if (std::string u = fs_uuid(path, st.st_dev); !u.empty()) p[prefix + "fsuuid"] = u;
}

void disk_parts(dev_t rdev, Parts& p) {
    std::error_code ec;
    const fs::path dev = fs::canonical(fmt::format("/sys/dev/block/{}:{}", major(rdev), minor(rdev)), ec);
    if (ec) return;
    if (const std::string loop = read_line(dev / "loop" / "backing_file"); !loop.empty()) {
        p["kind"] = "loop";
        file_parts(loop, "file.", p);
        return;
    }
    p["kind"] = "disk";
    const std::string part = read_line(dev / "partition");
    const fs::path disk = part.empty() ? dev : dev.parent_path();
    if (!part.empty()) p["part"] = part;
    for (const char* f : {"wwid", "device/wwid"})
        if (std::string v = read_line(disk / f); !v.empty() && !p.count("wwid")) p["wwid"] = v;
    for (const char* f : {"serial", "device/serial"})
        if (std::string v = read_line(disk / f); !v.empty() && !p.count("serial")) p["serial"] = v;
    if (std::string v = read_line(disk / "dm" / "uuid"); !v.empty()) p["dm"] = v;
}

const char* const kDiskNames[] = {"wwid", "serial", "dm"};

bool files_same(const Parts& a, const Parts& b, const std::string& pre) {
    auto get = [](const Parts& m, const std::string& k) {
        auto it = m.find(k);
        return it == m.end() ? std::string() : it->second;
    };
    if (get(a, pre + "ino") != get(b, pre + "ino")) return false;
    const std::string ua = get(a, pre + "fsuuid"), ub = get(b, pre + "fsuuid");
    if (!ua.empty() && !ub.empty()) return ua == ub;
    return get(a, pre + "fsid") == get(b, pre + "fsid");
}

}  // namespace

StorageId::StorageId(Parts parts) : parts_(std::move(parts)) {
    for (const auto& [k, v] : parts_) text_ += (text_.empty() ? "" : ";") + k + "=" + v;
}

StorageId StorageId::of(const std::string& path) {
    struct stat st {};
    Parts p;
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISBLK(st.st_mode)) disk_parts(st.st_rdev, p);
        else if (S_ISREG(st.st_mode)) {
            p["kind"] = "file";
            file_parts(path, "", p);
        }
    }
    return StorageId(std::move(p));
}

StorageId StorageId::parse(const std::string& text) {
    Parts p;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ';'))
        if (auto eq = item.find('='); eq != std::string::npos) p[item.substr(0, eq)] = item.substr(eq + 1);
    return StorageId(std::move(p));
}

bool StorageId::has_stable_name() const {
    const auto kind = parts_.find("kind");
    if (kind == parts_.end()) return false;
    if (kind->second == "file") return parts_.count("ino") > 0;
    if (kind->second == "loop") return parts_.count("file.ino") > 0;
    for (const char* n : kDiskNames)
        if (parts_.count(n)) return true;
    return false;
}

bool StorageId::same_as(const StorageId& o) const {
    if (!has_stable_name() || !o.has_stable_name()) return true;
    if (parts_.at("kind") != o.parts_.at("kind")) return false;
    const std::string& kind = parts_.at("kind");
    if (kind == "file") return files_same(parts_, o.parts_, "");
    if (kind == "loop") return files_same(parts_, o.parts_, "file.");
    auto part = [](const Parts& m) { return m.count("part") ? m.at("part") : std::string(); };
    if (part(parts_) != part(o.parts_)) return false;
    for (const char* n : kDiskNames)
        if (parts_.count(n) && o.parts_.count(n) && parts_.at(n) == o.parts_.at(n)) return true;
    return false;
}

}  // namespace remapfs::sys
