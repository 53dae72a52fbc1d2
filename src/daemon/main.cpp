// remapfs: the daemon, and (by argv[0]) its mount(8) helpers mount.remapfs and
// mount.fuse.remapfs. Order follows sshfs: parse, open everything, mount, then detach, so every
// failure reaches the shell as one line and a non-zero status.

#include "daemon/control_server.hpp"
#include "daemon/daemonize.hpp"
#include "daemon/options.hpp"
#include "fuse/ops.hpp"
#include "fuse/transport/session_loop.hpp"
#include "fuse/transport/uring_transport.hpp"
#include "remapfs/block/fault_rule_json.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace remapfs;

[[noreturn]] void die(std::optional<daemon::Detacher>& d, const std::string& msg) {
    std::fprintf(stderr, "remapfs: %s\n", msg.c_str());
    if (d) d->failed(1);
    std::exit(1);
}

// fsname shows in /proc/mounts; commas would split the option string (sshfs escapes them too).
std::string escape_commas(const std::string& s) {
    std::string r;
    for (char c : s) {
        if (c == ',' || c == '\\') r += '\\';
        r += c;
    }
    return r;
}

// True if PATH (which need not exist yet) lies under directory DIR (canonical).
bool lies_under(const std::string& path, const std::string& dir) {
    std::error_code ec;
    const std::string p = std::filesystem::weakly_canonical(path, ec).string();
    if (ec) return false;
    if (dir == "/") return true;
    return p.size() > dir.size() && p.compare(0, dir.size(), dir) == 0 && p[dir.size()] == '/';
}

// The mount hides what lies under the mountpoint, and SQLite opens its -wal and -shm by path
// after we mount: a request to ourselves before the session loop runs, which hangs for good.
std::optional<std::string> hidden_by_mount(const daemon::Options& o) {
    std::string db;
    try {
        db = db_path_for(o.instance);
    } catch (const std::exception&) {
        return std::nullopt;  // a missing backing: opening it says so
    }
    const std::pair<const char*, std::string> files[] = {
        {"database", db}, {"backing", o.instance.backing_path}, {"spare", o.instance.spare_path.value_or("")}};
    for (const auto& [what, path] : files)
        if (!path.empty() && lies_under(path, o.mountpoint))
            return fmt::format("the {} {} lies under the mountpoint {}, which the mount would hide", what, path,
                               o.mountpoint);
    return std::nullopt;
}

std::string basename_of(const char* p) {
    const char* s = std::strrchr(p, '/');
    return s ? s + 1 : p;
}

int run(int argc, char** argv) {
    const std::string self = basename_of(argv[0]);
    const bool helper = self.rfind("mount.", 0) == 0;
    auto parsed = daemon::parse_command_line(argc, argv, helper);
    daemon::Options& o = parsed.options;
    if (o.show_help) {
        std::fputs(daemon::usage(argv[0]).c_str(), stdout);
        return 0;
    }
    if (o.show_version) {
        std::printf("remapfs %s (libfuse %d)\n", REMAPFS_VERSION, fuse_version());
        return 0;
    }
    if (!parsed.errors.empty()) {
        // One line: all the problems, so a fix needs one round trip.
        std::string all;
        for (const auto& e : parsed.errors) all += (all.empty() ? "" : "; ") + e;
        std::fprintf(stderr, "remapfs: %s\n", all.c_str());
        return 1;
    }
    struct stat st {};
    if (::stat(o.mountpoint.c_str(), &st) != 0)
        return std::fprintf(stderr, "remapfs: mountpoint %s: %s\n", o.mountpoint.c_str(), std::strerror(errno)), 1;
    if (!S_ISDIR(st.st_mode))
        return std::fprintf(stderr, "remapfs: mountpoint %s is not a directory\n", o.mountpoint.c_str()), 1;
    if (auto why = hidden_by_mount(o)) return std::fprintf(stderr, "remapfs: %s\n", why->c_str()), 1;
    if (o.inject_file) {
        try {
            o.instance.faults = block::load_fault_rules(*o.inject_file);
        } catch (const std::exception& e) {
            return std::fprintf(stderr, "remapfs: %s\n", e.what()), 1;
        }
    }
    if (o.fake) return 0;
    // In the foreground the operator watches the log; a mount command should print only errors.
    log::set_level(o.debug ? log::Level::debug : o.foreground ? log::Level::info : log::Level::warning);

    std::optional<daemon::Detacher> detacher;
    if (!o.foreground) detacher.emplace(daemon::Detacher::fork_and_wait());

    std::unique_ptr<Instance> instance;
    try {
        instance = Instance::open(o.instance);
    } catch (const std::exception& e) {
        die(detacher, e.what());
    }

    fuse_op::FsContext ctx{*instance, o.image_name, o.mountpoint, o.instance.read_only, o.writeback_cache, o.bdi, o.single_thread ? 1 : o.threads, ::getuid(), ::getgid(), {}, {}, fuse_op::HandleModes{o.direct_bypass}};
    ::clock_gettime(CLOCK_REALTIME, &ctx.mount_time);
    ctx.sync_writes = o.sync;
    if (o.uid) ctx.uid = *o.uid;
    if (o.gid) ctx.gid = *o.gid;
    ctx.image_mode = 0666 & ~o.umask;
    ctx.dir_mode = (0777 & ~o.umask) | 0500;  // the owner can always list it

    std::string mount_opts = fmt::format("fsname=remapfs:{},subtype=remapfs,default_permissions",
                                         escape_commas(o.instance.backing_path));
    if (o.allow_other) mount_opts += ",allow_other";
    if (o.instance.read_only) mount_opts += ",ro";
    for (const auto& k : o.kernel_options) mount_opts += "," + k;
    std::vector<std::string> args = {argv[0], "-o", mount_opts};
    if (o.debug) args.push_back("-d");
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());

    fuse_session* se = fuse_session_new(&fargs, &fuse_op::operations(), sizeof(fuse_lowlevel_ops), &ctx);
    if (!se) die(detacher, "cannot create the FUSE session");
    if (fuse_set_signal_handlers(se) != 0) die(detacher, "cannot install signal handlers");
    if (fuse_session_mount(se, o.mountpoint.c_str()) != 0)
        die(detacher, fmt::format("cannot mount on {}", o.mountpoint));
    ::fcntl(fuse_session_fd(se), F_SETFD, FD_CLOEXEC);

    int status = 0;
    {
        std::optional<daemon::ControlServer> control;
        try {
            control.emplace(*instance, daemon::DaemonInfo{o.mountpoint, o.mountpoint + "/" + o.image_name});
            control->start();
            instance->start_services(o.scanner, o.mountpoint);  // threads: after the fork, never across it
        } catch (const std::exception& e) {
            fuse_session_unmount(se);
            die(detacher, e.what());
        }
        log::info("serving {} as {}/{} ({} sectors of {} bytes, {} remapped, database {})",
                  o.instance.backing_path, o.mountpoint, o.image_name, instance->geometry().image_sectors.v,
                  instance->geometry().sector_size.bytes(), instance->tables().load()->size(), instance->db_path());
        if (detacher) detacher->ready();

        {
            // Off with -s: a single-threaded session means one request at a time.
            std::optional<fuse_op::UringTransport> ring;
            if (o.io_uring && !o.single_thread) {
                try {
                    ring.emplace(se, o.io_uring_workers ? o.io_uring_workers : o.threads);
                } catch (const std::exception& e) {
                    log::warning("{}; using /dev/fuse", e.what());
                }
            }
            status = fuse_op::run_session(se, o.single_thread ? 1 : o.threads);
        }
        if (status != 0) {
            log::error("FUSE session ended by an error: {}", errno_name(-status));
        } else if (!ctx.initialised) {
            log::error("FUSE session ended before the kernel's INIT was answered: nothing was served");
            status = 1;
        }
    }
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    if (auto r = instance->image().flush(); !r) {
        log::error("final flush of {}: {}", o.instance.backing_path, errno_name(r.error()));
        status = 1;
    }
    return status == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "remapfs: %s\n", e.what());
        return 1;
    }
}
