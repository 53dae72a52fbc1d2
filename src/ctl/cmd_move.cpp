// remapctl remap / unremap: move one sector to a spare slot or back.

#include "ctl/commands.hpp"
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

namespace remapctl {

int cmd_move(const Invocation& in) {
    const std::string& db = in.db;
    const std::string& cmd = in.command;
    const std::vector<std::string>& args = in.args;

    if (args.size() != 1) throw UsageError(fmt::format("{} takes exactly one LBA", cmd));
    const std::uint64_t lba = parse_number(args[0], "LBA");
    {
        auto s = open_store(db);
        auto id = read_identity(s);
        if (lba >= id.image_sectors.v)
            throw UsageError(fmt::format("LBA {} is outside the image ({} sectors of {} bytes)", lba, id.image_sectors.v,
                                         id.sector_size));
        // Refuse the obvious mistakes before touching the backing (the daemon checks again).
        auto rows = s.remaps();
        bool mapped = std::any_of(rows.begin(), rows.end(), [&](const auto& r) { return r.lba.v == lba; });
        if (cmd == "remap" && mapped) throw std::runtime_error(fmt::format("sector {} is already remapped", lba));
        if (cmd == "unremap" && !mapped) throw std::runtime_error(fmt::format("sector {} is not remapped", lba));
    }
    json r = run_data_command(db, {{"cmd", cmd}, {"lba", lba}}, true);
    check_reply(r);
    if (cmd == "remap")
        std::cout << fmt::format("sector {} remapped to spare slot {}\n", lba, r["spare_slot"].get<std::uint64_t>());
    else
        std::cout << fmt::format("sector {} unremapped\n", lba);
    return kOk;
}

}  // namespace remapctl
