#pragma once
// Whether an open of disk.img goes through the kernel's page cache or bypasses it
// (FOPEN_DIRECT_IO). O_DIRECT openers — losetup --direct-io=on, fio/dd with direct — bypass it:
// the kernel then sends their requests straight to us instead of through its generic O_DIRECT
// path, which locks the inode and invalidates the page cache around every write (4k writes at
// QD16 through a direct-io loop: ~22k -> ~40k IOPS, bench/README.md).
//
// Bypassing is only coherent while nobody holds cached pages, so the two kinds never overlap:
// an O_DIRECT open while buffered handles are open takes the kernel's cached O_DIRECT path (it
// invalidates what it writes), and a buffered open while bypassing handles are open bypasses
// too. A bypassing open drops the inode's cached pages (no FOPEN_KEEP_CACHE), and when the last
// writable bypassing handle closes, the next cached open drops them again: a private mmap of a
// bypassing handle caches pages the kernel does not invalidate on a bypassing write (6.1, as
// Debian 12 ships; newer kernels also invalidate on direct writes).

#include <mutex>

namespace remapfs::fuse_op {

class HandleModes {
public:
    explicit HandleModes(bool bypass_for_o_direct) : bypass_for_o_direct_(bypass_for_o_direct) {}

    struct Decision {
        bool direct_io = false;   // FOPEN_DIRECT_IO
        bool keep_cache = false;  // FOPEN_KEEP_CACHE (cached opens only)
    };
    Decision open(bool o_direct);
    void release(bool direct_io, bool writable);

private:
    const bool bypass_for_o_direct_;
    std::mutex m_;
    unsigned cached_ = 0;  // at most one of the two is non-zero
    unsigned bypassing_ = 0;
    bool cache_stale_ = false;
};

}  // namespace remapfs::fuse_op
