// remapctl recover: rebuild the remap table from the device's own record (remapfs/rebuild.hpp).

#include "ctl/commands.hpp"
#include "remapfs/instance/rebuild.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <iostream>

namespace remapctl {

namespace po = boost::program_options;
using nlohmann::json;

int cmd_recover(const Invocation& in) {
    const std::string& db = in.db;
    const std::optional<std::string>& backing = in.backing;
    const std::vector<std::string>& args = in.args;
    const bool as_json = in.as_json;
    po::options_description d("recover");
    d.add_options()
        ("spare", po::value<std::string>(), "the separate spare file or device, if the database does not say")
        ("spare-size", po::value<std::string>(), "spare_size= as the device was first mounted (no database)")
        ("sector-size", po::value<std::uint32_t>(), "sector_size= as the device was first mounted (no database)")
        ("backing-io", po::value<std::string>()->default_value("auto"), "auto, direct or buffered")
        ("force", po::bool_switch(), "rebuild a database that is not older than the device too");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(d).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(fmt::format("recover: {}", e.what()));
    }
    remapfs::RebuildOptions o;
    o.db_path = db;
    o.backing_path = backing;
    o.force = vm["force"].as<bool>();
    if (vm.count("spare")) o.spare_path = vm["spare"].as<std::string>();
    try {
        if (vm.count("spare-size")) o.spare_size = remapfs::parse_spare_size(vm["spare-size"].as<std::string>());
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    if (vm.count("sector-size")) {
        const std::uint32_t ss = vm["sector-size"].as<std::uint32_t>();
        if (ss != 512 && ss != 4096) throw UsageError(fmt::format("--sector-size {} is not 512 or 4096", ss));
        o.sector_size = ss;
    }
    const std::string io = vm["backing-io"].as<std::string>();
    if (io == "auto") o.backing_io = remapfs::sys::BackingIo::automatic;
    else if (io == "direct") o.backing_io = remapfs::sys::BackingIo::direct;
    else if (io == "buffered") o.backing_io = remapfs::sys::BackingIo::buffered;
    else throw UsageError(fmt::format("--backing-io {} is not auto, direct or buffered", io));

    const remapfs::RebuildResult r = remapfs::rebuild_database(o);
    const auto& rep = r.report;
    if (as_json) {
        std::cout << json{{"uuid", r.uuid},
                          {"db", db},
                          {"created_db", r.created_db},
                          {"generation", r.generation},
                          {"generation_before", r.generation_before},
                          {"remaps", rep.state.remaps.size()},
                          {"remaps_before", r.remaps_before},
                          {"retired", rep.state.retired.size()},
                          {"next_slot", rep.state.next_slot.v},
                          {"headers_read", rep.headers_read},
                          {"uncommitted", rep.uncommitted},
                          {"superseded", rep.superseded},
                          {"unreadable", rep.unreadable},
                          {"out_of_range", rep.out_of_range}}
                         .dump(2)
                  << "\n";
        return kOk;
    }
    std::cout << fmt::format("device {}: remap table rebuilt from the device into {} (generation {})\n", r.uuid, db,
                             r.generation);
    if (r.created_db)
        std::cout << fmt::format("  a new database: {} remaps, {} retired slots\n", rep.state.remaps.size(),
                                 rep.state.retired.size());
    else
        std::cout << fmt::format("  {} remaps (the database had {}, at generation {}), {} retired slots\n",
                                 rep.state.remaps.size(), r.remaps_before, r.generation_before, rep.state.retired.size());
    std::cout << fmt::format("  {} slot headers read; ignored: {} of changes that never committed, {} superseded, {} "
                             "unreadable, {} outside the image\n",
                             rep.headers_read, rep.uncommitted, rep.superseded, rep.unreadable, rep.out_of_range);
    return kOk;
}

}  // namespace remapctl
