#include "remapfs/sys/mountinfo.hpp"

#include <fstream>
#include <sstream>

namespace remapfs::sys {

std::string unescape_mountinfo(const std::string& s) {
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

std::vector<MountEntry> read_mountinfo(const std::string& path) {
    // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
    std::vector<MountEntry> mounts;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        std::string id, parent, root, options, word;
        MountEntry e;
        if (!(fields >> id >> parent >> e.device >> root >> e.mount_point >> options)) continue;
        while (fields >> word && word != "-") {
        }
        if (word != "-" || !(fields >> e.fs_type >> e.source)) continue;
        e.mount_point = unescape_mountinfo(e.mount_point);
        e.source = unescape_mountinfo(e.source);
        mounts.push_back(std::move(e));
    }
    return mounts;
}

}  // namespace remapfs::sys
