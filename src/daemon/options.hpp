#pragma once
// Command line of the daemon, in both of its shapes:
//   remapfs [options] BACKING MOUNTPOINT
//   mount.remapfs BACKING MOUNTPOINT [-sfnv] [-N ns] [-o opts] [-t type]   (mount(8) helper)
// All problems are collected and reported together (mergerfs cfg.errs); parsing changes
// nothing on disk.

#include "fuse/bdi.hpp"
#include "remapfs/instance/instance.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace remapfs::daemon {

struct Options {
    InstanceOptions instance;
    std::string mountpoint;
    std::string image_name = "disk.img";
    bool foreground = false;
    bool debug = false;
    bool single_thread = false;
    std::uint32_t threads = 16;  // -o threads=N: FUSE worker threads
    bool io_uring = true;        // -o io_uring=off: never take the kernel's FUSE-over-io_uring
    std::uint32_t io_uring_workers = 0;  // -o io_uring_workers=N: ring workers per CPU (0: as threads)
    bool allow_other = false;
    bool sync = false;                   // -o sync: every write durable before it is acknowledged
    std::optional<std::uint32_t> uid;    // -o uid=N: owner of the image (default: who mounts)
    std::optional<std::uint32_t> gid;    // -o gid=N
    std::uint32_t umask = 077;           // -o umask=OOO: image 0666 & ~umask, root 0777 & ~umask | 0500
    bool writeback_cache = true;         // -o writeback_cache=off: buffered writes go through one by one
    bool direct_bypass = true;           // -o direct_bypass=off: O_DIRECT opens use the kernel's cached path
    fuse_op::BdiTuning bdi;              // -o readahead_kb=N, -o max_dirty_percent=N
    bool scanner = true;  // -o noscan: no scanner thread at all (benchmarks)
    bool fake = false;       // mount -f: do everything but mount
    bool show_help = false;
    bool show_version = false;
    std::vector<std::string> kernel_options;  // nodev, nosuid, noexec, noatime ...
    std::optional<std::string> inject_file;
};

struct ParseResult {
    Options options;
    std::vector<std::string> errors;
};

// helper: invoked as mount.remapfs / mount.fuse.remapfs.
ParseResult parse_command_line(int argc, char** argv, bool helper);
std::string usage(const char* argv0);

}  // namespace remapfs::daemon
