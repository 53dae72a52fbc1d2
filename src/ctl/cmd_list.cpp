// remapctl list: the remapped sectors.

#include "ctl/commands.hpp"
#include <fmt/format.h>

#include <iostream>

namespace remapctl {

int cmd_list(const Invocation& in) {
    const std::string& db = in.db;
    const bool as_json = in.as_json;
    if (!in.args.empty()) throw UsageError("list takes no arguments");

    auto s = open_store(db);
    read_identity(s);
    auto rows = s.remaps();
    if (as_json) {
        json a = json::array();
        for (const auto& r : rows)
            a.push_back({{"lba", r.lba.v}, {"spare_slot", r.slot.v}, {"state", r.state}, {"reason", r.reason},
                         {"created", r.created}});
        std::cout << a.dump(2) << "\n";
        return kOk;
    }
    if (rows.empty()) {
        std::cout << "no remapped sectors\n";
        return kOk;
    }
    std::cout << fmt::format("{:>14} {:>10} {:<8} {:<14} {}\n", "LBA", "SLOT", "STATE", "REASON", "CREATED");
    for (const auto& r : rows)
        std::cout << fmt::format("{:>14} {:>10} {:<8} {:<14} {}\n", r.lba.v, r.slot.v, r.state, r.reason,
                                 fmt_time(r.created));
    return kOk;
}

}  // namespace remapctl
