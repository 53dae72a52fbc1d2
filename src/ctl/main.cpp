// remapctl: inspect and control a remapfs instance. Talks to the daemon through its control
// socket when one serves the instance; otherwise opens the database (and, for commands that
// touch data, the backing) itself and runs the very same code. One file per command (cmd_*.cpp);
// this one finds the instance and dispatches.
//
// Exit status: 0 ok, 1 failure, 2 bad usage, 3 verify found unreadable sectors.

#include "ctl/commands.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs_config.h"

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace po = boost::program_options;
using namespace remapctl;

namespace {

struct Command {
    const char* name;
    const char* synopsis;  // in the list of commands
    const char* summary;
    bool own_options;      // the words after it are its own (--option VALUE): not parsed globally
    const char* help;      // remapctl COMMAND --help
    int (*run)(const Invocation&);
};

const Command kCommandTable[] = {
    {"status", "status", "device, spare usage, remap count, state, daemon", false,
     "remapctl [TARGET] status [--json]\n  Device, spare usage, remap count, state and daemon.\n",
     cmd_status},
    {"list", "list", "the remapped sectors", false,
     "remapctl [TARGET] list [--json]\n  One line (or JSON object) per remapped sector.\n",
     cmd_list},
    {"verify", "verify [START [COUNT]]", "read-check sectors (default: all) and report unreadable ones", false,
     "remapctl [TARGET] verify [START [COUNT]] [--json]\n  Reads sectors START.. through the remap "
     "layer; exit 3 if any is unreadable.\n",
     cmd_verify},
    {"remap", "remap LBA", "move sector LBA to a spare slot (its data is copied first)", false,
     "remapctl [TARGET] remap LBA\n  Copies sector LBA to a free spare slot, commits the remap, then "
     "serves the sector from there.\n",
     cmd_move},
    {"unremap", "unremap LBA", "move it back and free the slot", false,
     "remapctl [TARGET] unremap LBA\n  Copies the sector back to the backing and frees its slot.\n",
     cmd_move},
    {"pending", "pending", "sectors that could not be read and wait for a rewrite", false,
     "remapctl [TARGET] pending [--json]\n  Sectors that stayed unreadable after retries; the next write "
     "of each goes to a fresh spare slot.\n",
     cmd_pending},
    {"inject", "inject add|list|clear", "fault injection on a live mount with -o allow_inject (tests)", true,
     "remapctl [TARGET] inject add --sectors N|A-B [--target image|spare] [--op read|write|both]\n"
     "                           [--errno EIO|...|none] [--latency-ms MS] [--probability P]\n"
     "                           [--after-ops N] [--at UNIXTIME]\n"
     "remapctl [TARGET] inject list [--json] | inject clear\n"
     "  Fault injection, for tests: only on a live mount with -o allow_inject.\n",
     cmd_inject},
    {"scan", "scan [ACTION]", "the background scanner: status start stop pause resume set K=V... report", false,
     "remapctl [TARGET] scan [status] [--json]     progress (a bar on a terminal), pass, ETA, totals\n"
     "remapctl [TARGET] scan start|stop|pause|resume\n"
     "remapctl [TARGET] scan set KEY=VALUE...         enabled=on|off interval=SECONDS (60..31536000)\n"
     "                                               sectors_per_scan=1..4096 intensity=1..10\n"
     "                                               health_threshold=0..1000 staggered=on|off\n"
     "                                               paused=on|off\n"
     "remapctl [TARGET] scan report [--json]          device score, worst regions, recent events\n"
     "  Settings are kept in the database; with no daemon they are changed there.\n",
     cmd_scan},
    {"recover", "recover [OPTIONS]", "rebuild a lost or stale database's remap table from the device", true,
     "remapctl [--db PATH] [--backing PATH] recover [--spare PATH] [--spare-size SIZE]\n"
     "                         [--sector-size 512|4096] [--backing-io auto|direct|buffered] [--force]\n"
     "                         [--json]\n"
     "  Rebuilds the remap table of a lost or stale database (one the daemon refused as older\n"
     "  than the device) from the device's labels and slot headers. An existing database keeps\n"
     "  its history and settings; a missing one is created (give --backing, and --spare,\n"
     "  --spare-size and --sector-size as the device was first mounted). Refused while a\n"
     "  daemon serves the device, and for a database that is not older than the device\n"
     "  (a mount is what puts the device in step with it) unless --force.\n",
     cmd_recover},
};

const Command* find_command(const std::string& name) {
    for (const Command& c : kCommandTable)
        if (name == c.name) return &c;
    return nullptr;
}

std::string command_list() {
    std::string s = "commands:\n";
    for (const Command& c : kCommandTable) s += fmt::format("  {:<22} {}\n", c.synopsis, c.summary);
    return s + "Run 'remapctl COMMAND --help' for a command's options. LBAs count sectors of the\n"
               "instance's sector_size.\n";
}

int run(int argc, char** argv) {
    po::options_description global("remapctl [--db PATH | --backing PATH | --mount DIR] COMMAND [ARGS] [--json]\n\n"
                                   "Which instance");
    global.add_options()
        ("db", po::value<std::string>(), "its database")
        ("backing", po::value<std::string>(), "its backing (the database is found at the default place)")
        ("mount,m", po::value<std::string>(), "its mountpoint (asks the running daemon)")
        ("json", po::bool_switch(), "machine-readable output")
        ("help,h", po::bool_switch(), "this text")
        ("version,V", po::bool_switch(), "version");
    po::options_description hidden;
    hidden.add_options()("command", po::value<std::string>())("args", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("command", 1).add("args", -1);
    po::options_description all;
    all.add(global).add(hidden);

    // `inject add` and `recover` have options of their own: everything after the word is theirs.
    std::vector<std::string> words(argv + 1, argv + argc);
    std::vector<std::string> inject_args;
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "--db" || w == "--backing" || w == "--mount" || w == "-m") {
            ++i;
            continue;
        }
        if (const Command* c = find_command(w); c && c->own_options) {
            inject_args.assign(words.begin() + static_cast<std::ptrdiff_t>(i) + 1, words.end());
            words.resize(i + 1);
            break;
        }
        if (!w.empty() && w[0] != '-') break;  // another command: normal parsing
    }
    // --json and --help keep their global meaning wherever they are.
    for (const char* flag : {"--json", "--help", "-h"}) {
        auto it = std::find(inject_args.begin(), inject_args.end(), flag);
        if (it != inject_args.end()) {
            words.push_back(flag);
            inject_args.erase(it);
        }
    }

    po::variables_map vm;
    try {
        po::store(po::command_line_parser(words).options(all).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    const bool help = vm["help"].as<bool>();
    const bool as_json = vm["json"].as<bool>();
    if (vm["version"].as<bool>()) {
        std::cout << "remapctl " << REMAPFS_VERSION << "\n";
        return kOk;
    }
    if (!vm.count("command")) {
        if (help) {
            std::cout << global << "\n" << command_list();
            return kOk;
        }
        throw UsageError("no command given (try --help)");
    }
    const std::string cmd = vm["command"].as<std::string>();
    const auto args = vm.count("args") ? vm["args"].as<std::vector<std::string>>() : std::vector<std::string>{};
    const Command* command = find_command(cmd);
    if (!command) throw UsageError(fmt::format("unknown command '{}' (try --help)", cmd));
    if (help) {
        std::cout << command->help << "\nTARGET is --db PATH, --backing PATH or --mount DIR.\n";
        return kOk;
    }
    Invocation in{cmd, {}, std::nullopt, command->own_options ? inject_args : args, as_json};

    if (cmd == "recover") {
        if (vm.count("mount")) throw UsageError("recover works on a device no daemon serves: give --db and/or --backing");
        if (!vm.count("db") && !vm.count("backing")) throw UsageError("recover needs --db PATH, --backing PATH or both");
        if (vm.count("backing")) in.backing = vm["backing"].as<std::string>();
        // The default database of a backing is beside it, whether or not it still exists.
        in.db = vm.count("db") ? vm["db"].as<std::string>() : remapfs::default_db_path(*in.backing);
        return command->run(in);
    }
    int targets = static_cast<int>(vm.count("db") + vm.count("backing") + vm.count("mount"));
    if (targets == 0) throw UsageError("say which instance: --db PATH, --backing PATH or --mount DIR");
    if (targets > 1) throw UsageError("give only one of --db, --backing and --mount");
    if (vm.count("db")) in.db = vm["db"].as<std::string>();
    else if (vm.count("backing")) in.db = remapfs::default_db_path(vm["backing"].as<std::string>());
    else in.db = db_from_mount(vm["mount"].as<std::string>());
    return command->run(in);
}

}  // namespace

int main(int argc, char** argv) {
    remapfs::log::set_level(remapfs::log::Level::warning);  // the command prints its own result
    try {
        return run(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "remapctl: %s\n", e.what());
        return kUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "remapctl: %s\n", e.what());
        return kFailed;
    }
}
