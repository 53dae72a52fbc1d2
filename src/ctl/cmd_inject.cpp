// remapctl inject: fault injection on a live mount with -o allow_inject (tests only).

#include "ctl/commands.hpp"
#include "remapfs/block/fault_rule_json.hpp"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <iostream>

namespace remapctl {

namespace po = boost::program_options;

// Fault injection exists only on a live mount with -o allow_inject.
int cmd_inject(const Invocation& in) {
    const std::string& db = in.db;
    const std::vector<std::string>& args = in.args;
    const bool as_json = in.as_json;

    if (args.empty()) throw UsageError("inject needs an action: add, list or clear");
    const std::string action = args[0];
    json req = {{"cmd", "inject"}, {"action", action}};
    if (action == "add") {
        po::options_description d("inject add");
        d.add_options()
            ("sectors", po::value<std::string>()->required(), "N or FIRST-LAST")
            ("target", po::value<std::string>()->default_value("image"), "image (LBAs) or spare (slot numbers)")
            ("op", po::value<std::string>()->default_value("both"), "read, write or both")
            ("errno", po::value<std::string>()->default_value("EIO"), "EIO, ENOSPC, ... or none (latency only)")
            ("latency-ms", po::value<double>()->default_value(0), "added latency")
            ("probability", po::value<double>()->default_value(1.0), "chance per request, (0, 1]")
            ("after-ops", po::value<std::uint64_t>()->default_value(0), "start after this many requests")
            ("at", po::value<std::int64_t>()->default_value(0), "start at this unix time");
        po::variables_map vm;
        std::vector<std::string> rest(args.begin() + 1, args.end());
        try {
            po::store(po::command_line_parser(rest).options(d).run(), vm);
            po::notify(vm);
        } catch (const po::error& e) {
            throw UsageError(fmt::format("inject add: {}", e.what()));
        }
        req["rule"] = {{"sectors", vm["sectors"].as<std::string>()}, {"target", vm["target"].as<std::string>()},
                       {"op", vm["op"].as<std::string>()}, {"errno", vm["errno"].as<std::string>()},
                       {"latency_ms", vm["latency-ms"].as<double>()}, {"probability", vm["probability"].as<double>()},
                       {"after_ops", vm["after-ops"].as<std::uint64_t>()}, {"at", vm["at"].as<std::int64_t>()}};
        try {
            (void)remapfs::block::fault_rule_from_json(req["rule"]);
        } catch (const std::invalid_argument& e) {
            throw UsageError(fmt::format("inject add: {}", e.what()));
        }
    } else if (action != "list" && action != "clear") {
        throw UsageError(fmt::format("unknown inject action '{}' (add, list, clear)", action));
    } else if (args.size() > 1) {
        throw UsageError(fmt::format("inject {} takes no arguments", action));
    }
    remapfs::db::DeviceIdentity id;
    {
        auto s = open_store(db);
        id = read_identity(s);
    }
    auto r = live_call(id, req);
    if (!r) throw std::runtime_error("fault injection needs a running daemon mounted with -o allow_inject");
    check_reply(*r);
    if (action == "list") {
        if (as_json) {
            std::cout << (*r)["rules"].dump(2) << "\n";
        } else {
            for (const auto& rule : (*r)["rules"]) std::cout << rule.dump() << "\n";
            std::cout << fmt::format("{} rule(s), {} faults injected so far\n", (*r)["rules"].size(),
                                     (*r)["injected"].get<std::uint64_t>());
        }
    }
    return kOk;
}

}  // namespace remapctl
