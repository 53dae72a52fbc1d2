// remapctl pending: sectors that stayed unreadable and wait for a rewrite.

#include "ctl/commands.hpp"
#include <fmt/format.h>

#include <iostream>

namespace remapctl {

int cmd_pending(const Invocation& in) {
    const std::string& db = in.db;
    const bool as_json = in.as_json;
    if (!in.args.empty()) throw UsageError("pending takes no arguments");

    auto s = open_store(db);
    read_identity(s);
    auto rows = s.pending();
    if (as_json) {
        json a = json::array();
        for (const auto& r : rows)
            a.push_back({{"lba", r.lba.v}, {"first_seen", r.first_seen}, {"last_seen", r.last_seen},
                         {"errors", r.errors}, {"last_errno", r.last_errno}});
        std::cout << a.dump(2) << "\n";
        return kOk;
    }
    if (rows.empty()) {
        std::cout << "no pending sectors\n";
        return kOk;
    }
    std::cout << fmt::format("{:>14} {:>7} {:<20} {}\n", "LBA", "ERRORS", "FIRST SEEN", "LAST SEEN");
    for (const auto& r : rows)
        std::cout << fmt::format("{:>14} {:>7} {:<20} {}\n", r.lba.v, r.errors, fmt_time(r.first_seen), fmt_time(r.last_seen));
    return kOk;
}

}  // namespace remapctl
