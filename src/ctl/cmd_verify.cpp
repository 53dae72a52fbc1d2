// remapctl verify: read-check sectors through the remap layer.

#include "ctl/commands.hpp"
#include <fmt/format.h>

#include <iostream>

namespace remapctl {

int cmd_verify(const Invocation& in) {
    const std::string& db = in.db;
    const std::vector<std::string>& args = in.args;
    const bool as_json = in.as_json;

    if (args.size() > 2) throw UsageError("verify takes at most START and COUNT");
    json req = {{"cmd", "verify"}};
    if (!args.empty()) req["start"] = parse_number(args[0], "START");
    if (args.size() > 1) {
        req["count"] = parse_number(args[1], "COUNT");
        if (req["count"] == 0) throw UsageError("COUNT must be at least 1");
    }
    {
        auto s = open_store(db);
        auto id = read_identity(s);
        const std::uint64_t start = req.value("start", std::uint64_t{0});
        const std::uint64_t count = req.value("count", start < id.image_sectors.v ? id.image_sectors.v - start : 0);
        if (start >= id.image_sectors.v || count > id.image_sectors.v - start)
            throw UsageError(fmt::format("sectors {}+{} are outside the image ({} sectors)", start, count,
                                         id.image_sectors.v));
    }
    json r = run_data_command(db, req, false);
    if (!r.value("ok", false) && r.value("errno", 0) == EINVAL) throw UsageError(r.value("error", std::string()));
    check_reply(r);
    const auto& bad = r["unreadable"];
    if (as_json) {
        json out = r;
        out.erase("ok");
        std::cout << out.dump(2) << "\n";
    } else {
        std::cout << fmt::format("checked {} sectors from {}: ", r["checked"].get<std::uint64_t>(),
                                 r["start"].get<std::uint64_t>());
        if (bad.empty()) {
            std::cout << "all readable\n";
        } else {
            std::cout << bad.size() << " unreadable\n";
            for (const auto& l : bad) std::cout << "unreadable: " << l.get<std::uint64_t>() << "\n";
        }
    }
    return bad.empty() ? kOk : kUnreadable;
}

}  // namespace remapctl
