#include "daemon/options.hpp"

#include "remapfs/core/parse.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <climits>
#include <cstdlib>
#include <set>
#include <sstream>
#include <stdexcept>

namespace remapfs::daemon {
namespace {

// Options mount(8) passes that mean nothing to us (libfuse mount.fuse ignore list).
const std::set<std::string> kDropped = {"defaults", "auto", "noauto", "nofail", "_netdev", "user",
                                        "users",    "nouser", "rw",   "dev",    "suid",    "exec"};
const std::set<std::string> kKernel = {"nodev", "nosuid", "noexec", "noatime", "relatime", "strictatime", "async"};

std::string absolute(const std::string& p) {
    if (p.empty() || p[0] == '/') return p;
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return p;
    return std::string(cwd) + "/" + p;
}

std::uint32_t parse_bounded(const std::string& key, const std::string& value, std::uint32_t lo, std::uint32_t hi) {
    return static_cast<std::uint32_t>(parse_uint(key, value, lo, hi));
}

void apply_option(const std::string& opt, Options& o, std::vector<std::string>& errors, bool sloppy) {
    const auto eq = opt.find('=');
    const std::string key = opt.substr(0, eq);
    const bool has_value = eq != std::string::npos;
    const std::string value = has_value ? opt.substr(eq + 1) : "";
    auto need_value = [&]() {
        if (!has_value || value.empty()) {
            errors.push_back(fmt::format("option '{}' needs a value ({}=...)", key, key));
            return false;
        }
        return true;
    };
    try {
        if (opt.empty() || kDropped.count(opt) || key.rfind("x-", 0) == 0 || key == "comment") return;
        if (kKernel.count(opt)) {
            o.kernel_options.push_back(opt);
        } else if (key == "ro" && !has_value) {
            o.instance.read_only = true;
        } else if (key == "allow_other" && !has_value) {
            o.allow_other = true;
        } else if (key == "sync" && !has_value) {
            o.sync = true;
            o.kernel_options.push_back(opt);
        } else if (key == "force" && !has_value) {
            o.instance.force = true;
        } else if (key == "rebind" && !has_value) {
            o.instance.rebind = true;
        } else if (key == "uid") {
            if (need_value()) o.uid = parse_bounded(key, value, 0, UINT32_MAX - 1);
        } else if (key == "gid") {
            if (need_value()) o.gid = parse_bounded(key, value, 0, UINT32_MAX - 1);
        } else if (key == "umask") {
            if (!need_value()) return;
            char* end = nullptr;
            const unsigned long m = std::strtoul(value.c_str(), &end, 8);
            if (*end != '\0' || m > 0777) errors.push_back(fmt::format("umask={} is not an octal mode from 0 to 777", value));
            else o.umask = static_cast<std::uint32_t>(m);
        } else if (key == "name") {
            if (!need_value()) return;
            if (value.find('/') != std::string::npos || value == "." || value == "..")
                errors.push_back(fmt::format("name='{}' must be a plain file name", value));
            else
                o.image_name = value;
        } else if (key == "db") {
            if (need_value()) o.instance.db_path = absolute(value);
        } else if (key == "spare") {
            if (need_value()) o.instance.spare_path = absolute(value);
        } else if (key == "spare_size") {
            if (need_value()) o.instance.spare_size = parse_spare_size(value);
        } else if (key == "sector_size") {
            if (!need_value()) return;
            if (value != "512" && value != "4096")
                errors.push_back(fmt::format("sector_size={} is not supported (512 or 4096)", value));
            else
                o.instance.sector_size = static_cast<std::uint32_t>(std::stoul(value));
        } else if (key == "backing_io") {
            if (!need_value()) return;
            if (value == "auto") o.instance.backing_io = BackingIo::automatic;
            else if (value == "direct") o.instance.backing_io = BackingIo::direct;
            else if (value == "buffered") o.instance.backing_io = BackingIo::buffered;
            else errors.push_back(fmt::format("backing_io={} is not one of auto, direct, buffered", value));
        } else if (key == "auto_remap") {
            if (!need_value()) return;
            o.instance.policy.auto_remap = parse_bool(key, value);
        } else if (key == "read_retries") {
            if (need_value()) o.instance.policy.read_retries = parse_bounded(key, value, 0, 20);
        } else if (key == "retry_delay_ms") {
            if (need_value()) o.instance.policy.retry_delay_us = parse_bounded(key, value, 0, 10'000) * 1000;
        } else if (key == "error_threshold") {
            if (need_value()) o.instance.policy.error_threshold = parse_bounded(key, value, 0, 1'000'000);
        } else if (key == "slow_ms") {
            if (need_value()) o.instance.policy.slow_us = parse_bounded(key, value, 0, 60'000) * 1000;
        } else if (key == "slow_count") {
            if (need_value()) o.instance.policy.slow_count = parse_bounded(key, value, 1, 1'000'000);
        } else if (key == "writeback_cache") {
            if (need_value()) o.writeback_cache = parse_bool(key, value);
        } else if (key == "direct_bypass") {
            if (need_value()) o.direct_bypass = parse_bool(key, value);
        } else if (key == "max_dirty_percent") {
            if (need_value()) o.bdi.max_dirty_percent = parse_bounded(key, value, 1, 100);
        } else if (key == "readahead_kb") {
            if (need_value()) o.bdi.readahead_kib = parse_bounded(key, value, 0, 65536);
        } else if (key == "threads") {
            if (need_value()) o.threads = parse_bounded(key, value, 1, 256);
        } else if (key == "io_uring") {
            if (need_value()) o.io_uring = parse_bool(key, value);
        } else if (key == "io_uring_workers") {
            if (need_value()) o.io_uring_workers = parse_bounded(key, value, 1, 256);
        } else if (key == "noscan" && !has_value) {
            o.scanner = false;
        } else if (key == "allow_inject" && !has_value) {
            o.instance.allow_inject = true;
        } else if (key == "hdd_model") {
            if (need_value()) o.instance.hdd_mb_s = parse_bounded(key, value, 1, 10000);
        } else if (key == "inject_file") {
            if (need_value()) o.inject_file = absolute(value);
        } else if (!sloppy) {
            errors.push_back(fmt::format("unknown option '{}'", opt));
        }
    } catch (const std::invalid_argument& e) {
        errors.push_back(e.what());
    }
}

void apply_option_list(const std::string& list, Options& o, std::vector<std::string>& errors, bool sloppy) {
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) apply_option(item, o, errors, sloppy);
}

}  // namespace

std::string usage(const char* argv0) {
    return fmt::format(
        "usage: {} [options] BACKING MOUNTPOINT\n"
        "Serves BACKING (a file or block device) as MOUNTPOINT/disk.img, remapping failed sectors to a spare area.\n"
        "\n"
        "  -o name=NAME            image file name (default disk.img)\n"
        "  -o db=PATH              remap database (default BACKING.remapfs.db, or /var/lib/remapfs/ for devices)\n"
        "  -o spare=PATH           spare area on a separate file or device\n"
        "  -o spare_size=SIZE      spare area at the tail: bytes with K/M/G/T, or N% (default max(1M, 1%))\n"
        "  -o sector_size=512|4096 remap granularity (default 4096)\n"
        "  -o ro                   read-only\n"
        "  -o allow_other          let other users open the image (as its mode allows)\n"
        "  -o uid=N,gid=N          owner of the image (default: the user who mounts)\n"
        "  -o umask=OOO            mode of the image is 0666 & ~umask (default 077: 0600)\n"
        "  -o sync                 every write is durable before it is acknowledged\n"
        "  -o force                first mount only: take the spare area even where it holds data\n"
        "  -o rebind               a separate spare's backing was copied or moved on purpose: accept it\n"
        "  -o backing_io=auto|direct|buffered   O_DIRECT on the backing (default auto: O_DIRECT or refuse;\n"
        "                          buffered loses per-sector write error handling)\n"
        "  -o auto_remap=on|off    remap a sector whose write fails (default on; off: EIO + pending)\n"
        "  -o read_retries=N       extra attempts for a failed read (default 3)\n"
        "  -o retry_delay_ms=N     first retry backoff, doubling (default 10)\n"
        "  -o error_threshold=N    recovered read errors before a sector is moved (default 3, 0 = never)\n"
        "  -o slow_ms=N            a read slower than this is slow (default 0 = off)\n"
        "  -o slow_count=N         slow reads before a sector is moved (default 3)\n"
        "  -o writeback_cache=on|off  kernel page cache for buffered writes, flushed by fsync (default on)\n"
        "  -o direct_bypass=on|off  O_DIRECT openers (losetup --direct-io=on) bypass the kernel page cache (default on)\n"
        "  -o max_dirty_percent=N  share of the kernel's dirty page limit buffered writers of the image may hold (default {})\n"
        "  -o readahead_kb=N       kernel readahead for buffered readers of the image (default {})\n"
        "  -o threads=N            FUSE worker threads, each one request in flight at a time (default {})\n"
        "  -o io_uring=on|off      FUSE over io_uring when the kernel offers it (default on; Linux 6.14+\n"
        "                          with /sys/module/fuse/parameters/enable_uring = 1)\n"
        "  -o io_uring_workers=N   ring workers per CPU, each one request in flight (default: threads)\n"
        "  -o noscan               no background scanner thread (see remapctl scan for its knobs)\n"
        "  -o allow_inject         tests only: enable fault injection (remapctl inject)\n"
        "  -o inject_file=PATH     tests only: fault rules (JSON array) loaded at mount\n"
        "  -o hdd_model=MB/S       benchmarks only: HDD-like service times (one actuator, seeks)\n"
        "  -f                      stay in the foreground\n"
        "  -d                      debug output (implies -f)\n"
        "  -s                      single-threaded\n"
        "  -h, --help              this text\n"
        "  -V, --version           version\n",
        argv0, fuse_op::BdiTuning{}.max_dirty_percent, fuse_op::BdiTuning{}.readahead_kib, Options{}.threads);
}

ParseResult parse_command_line(int argc, char** argv, bool helper) {
    ParseResult res;
    Options& o = res.options;
    std::vector<std::string> positional;
    std::vector<std::string> option_lists;
    bool sloppy = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            o.show_help = true;
        } else if (a == "-V" || a == "--version") {
            o.show_version = true;
        } else if (a == "-o" || a == "-t" || a == "-N") {
            if (i + 1 >= argc) {
                res.errors.push_back(fmt::format("{} needs an argument", a));
                break;
            }
            std::string v = argv[++i];
            if (a == "-o") option_lists.push_back(v);
            else if (a == "-N") res.errors.push_back("mount namespaces (-N) are not supported");
            else if (v != "remapfs" && v != "fuse.remapfs") res.errors.push_back(fmt::format("-t {}: not a remapfs type", v));
        } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
            option_lists.push_back(a.substr(2));
        } else if (a.rfind("--", 0) == 0 && a.size() > 2) {
            res.errors.push_back(fmt::format("unknown option '{}'", a));
        } else if (a.size() > 1 && a[0] == '-' && a != "--") {
            // Clustered short flags. As a mount helper, -f is mount's "fake" and -s "sloppy".
            for (char f : a.substr(1)) {
                if (helper) {
                    if (f == 'f') o.fake = true;
                    else if (f == 's') sloppy = true;
                    else if (f == 'n' || f == 'v') {}
                    else res.errors.push_back(fmt::format("unknown flag -{}", f));
                } else {
                    if (f == 'f') o.foreground = true;
                    else if (f == 'd') o.debug = o.foreground = true;
                    else if (f == 's') o.single_thread = true;
                    else res.errors.push_back(fmt::format("unknown flag -{}", f));
                }
            }
        } else {
            positional.push_back(a);
        }
    }
    if (o.show_help || o.show_version) return res;
    for (const std::string& l : option_lists) apply_option_list(l, o, res.errors, sloppy);

    if (o.instance.hdd_mb_s && !o.instance.allow_inject)
        res.errors.push_back("hdd_model= needs allow_inject (it is a benchmark aid)");
    if (o.inject_file && !o.instance.allow_inject)
        res.errors.push_back("inject_file= needs allow_inject (fault injection is for tests only)");
    if (positional.size() < 2) {
        res.errors.push_back("expected BACKING and MOUNTPOINT (see --help)");
    } else if (positional.size() > 2) {
        res.errors.push_back(fmt::format("unexpected argument '{}'", positional[2]));
    } else {
        std::string backing = positional[0];
        // mount(8) may hand us "remapfs#BACKING" (the old fuse spec form).
        if (auto hash = backing.find('#'); helper && hash != std::string::npos) backing = backing.substr(hash + 1);
        o.instance.backing_path = absolute(backing);
        // Canonical, as /proc/self/mountinfo will show it (the readahead knob is found there).
        char real[PATH_MAX];
        o.mountpoint = ::realpath(positional[1].c_str(), real) ? std::string(real) : absolute(positional[1]);
    }
    return res;
}

}  // namespace remapfs::daemon
