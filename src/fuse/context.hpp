#pragma once
// What every FUSE op needs: the instance and the two inodes we expose. Reached from a request
// with fs(req); set up once before the session starts and read-only afterwards.

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>

#include "fuse/bdi.hpp"
#include "fuse/handle_modes.hpp"
#include "remapfs/instance/instance.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <sys/stat.h>

namespace remapfs::fuse_op {

inline constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
inline constexpr fuse_ino_t kImageIno = 2;
// The image never changes size or identity: let the kernel cache its attributes for long.
inline constexpr double kAttrTimeout = 86400.0;

struct FsContext {
    Instance& instance;
    std::string image_name;
    std::string mountpoint;
    bool read_only = false;
    // Buffered writers (a loop device with direct-io off, cp, dd without oflag=direct) write into
    // the kernel's page cache; the kernel sends them to us in batches and fsync waits for them.
    bool writeback_cache = true;
    BdiTuning bdi;
    std::uint32_t threads = 16;  // FUSE worker threads
    uid_t uid = 0;
    gid_t gid = 0;
    struct timespec mount_time {};
    std::once_flag bdi_tuned;
    HandleModes handles;
    // Set by init once libfuse is bound to accept the kernel's INIT (it checks the protocol
    // before calling init and the wants after). A session that ends without it never served
    // anything, and libfuse keeps the reason to itself.
    std::atomic<bool> initialised{false};
    // -o sync: every write is durable before it is acknowledged, whatever the opener asked.
    bool sync_writes = false;
    // The image's owner and mode bits (-o uid=, gid=, umask=): with allow_other, who else may
    // open the disk. Default 0600: the mounting user only.
    mode_t image_mode = 0600;
    mode_t dir_mode = 0755;

    struct stat attr(fuse_ino_t ino) const;
};

inline FsContext& fs(fuse_req_t req) { return *static_cast<FsContext*>(fuse_req_userdata(req)); }

}  // namespace remapfs::fuse_op
