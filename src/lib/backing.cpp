#include "remapfs/block/backing.hpp"

#include "remapfs/sys/io.hpp"

#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace remapfs::block {
namespace {

constexpr std::size_t kDirectAlign = 4096;

// Grows on demand and lives as long as the thread (FUSE worker, scanner, control thread).
std::byte* bounce_buffer(std::size_t len) {
    struct Buffer {
        std::byte* p = nullptr;
        std::size_t cap = 0;
        ~Buffer() { std::free(p); }
    };
    thread_local Buffer b;
    if (b.cap < len) {
        std::free(b.p);
        std::size_t cap = (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
        b.p = static_cast<std::byte*>(std::aligned_alloc(kDirectAlign, cap));
        b.cap = b.p ? cap : 0;
    }
    return b.p;
}

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kDirectAlign == 0; }

}  // namespace

Backing::Backing(const Geometry& g, int data_fd, int spare_fd, ByteOffset spare_file_offset, bool direct)
    : direct_(direct) {
    data_ = {data_fd, ByteOffset{0}, ByteOffset{0}, g.image_bytes()};
    spare_ = {spare_fd >= 0 ? spare_fd : data_fd, g.label_offset(),
              spare_fd >= 0 ? spare_file_offset : g.label_offset(), g.spare_region_bytes()};
    size_ = g.physical_bytes();
}

const Extent& Backing::extent_for(ByteOffset off, [[maybe_unused]] ByteCount len) const {
    // The remap layer never issues a request that straddles image and spare.
    if (off < spare_.phys_begin) {
        assert(off.v + len.v <= data_.length.v);
        return data_;
    }
    assert(off.v + len.v <= spare_.phys_begin.v + spare_.length.v);
    return spare_;
}

// Single transfers are a batch of one: the same extent lookup and bounce for O_DIRECT.
Result<void> Backing::pread(std::span<std::byte> buf, ByteOffset off) {
    IoRun run{buf.data(), ByteCount{buf.size()}, off, ok()};
    transfer_runs({&run, 1}, false);
    return run.result;
}

Result<void> Backing::pwrite(std::span<const std::byte> buf, ByteOffset off) {
    // transfer_runs only reads from `data` on writes.
    IoRun run{const_cast<std::byte*>(buf.data()), ByteCount{buf.size()}, off, ok()};
    transfer_runs({&run, 1}, true);
    return run.result;
}

void Backing::transfer_runs(std::span<IoRun> runs, bool write) {
    // O_DIRECT needs aligned buffers: runs that are not get their own aligned piece of one
    // bounce buffer, so they can all be in flight together.
    auto rounded = [](ByteCount len) { return (len.v + kDirectAlign - 1) / kDirectAlign * kDirectAlign; };
    std::size_t scratch_len = 0;
    if (direct_)
        for (const IoRun& r : runs)
            if (!aligned(r.data)) scratch_len += rounded(r.len);
    std::byte* scratch = scratch_len ? bounce_buffer(scratch_len) : nullptr;
    if (scratch_len && !scratch) {
        for (IoRun& r : runs) r.result = Errno{ENOMEM};
        return;
    }
    thread_local std::vector<sys::Transfer> ts;
    ts.clear();
    std::size_t at = 0;
    for (const IoRun& r : runs) {
        const Extent& e = extent_for(r.off, r.len);
        void* buf = r.data;
        if (direct_ && !aligned(r.data)) {
            buf = scratch + at;
            if (write) std::memcpy(buf, r.data, r.len.v);
            at += rounded(r.len);
        }
        ts.push_back({e.fd, write, buf, r.len, ByteOffset{e.file_offset.v + (r.off.v - e.phys_begin.v)}, ok()});
    }
    sys::run_concurrently(ts);
    for (std::size_t i = 0; i < runs.size(); ++i) {
        runs[i].result = ts[i].result;
        if (!write && ts[i].buf != runs[i].data && ts[i].result) std::memcpy(runs[i].data, ts[i].buf, runs[i].len.v);
    }
}

void Backing::pread_runs(std::span<IoRun> runs) { transfer_runs(runs, false); }

void Backing::pwrite_runs(std::span<IoRun> runs) { transfer_runs(runs, true); }

Result<void> Backing::flush() {
    REMAPFS_TRY(sys::fdatasync(data_.fd));
    if (spare_.fd != data_.fd) REMAPFS_TRY(sys::fdatasync(spare_.fd));
    return ok();
}

Result<void> Backing::discard(ByteOffset off, ByteCount len) {
    const Extent& e = extent_for(off, len);
    const ByteOffset file_off{e.file_offset.v + (off.v - e.phys_begin.v)};
    auto r = sys::punch_hole(e.fd, file_off, len);
    if (r || (r.error() != EOPNOTSUPP && r.error() != ENODEV)) return r;
    // No hole punching here (some filesystems, old block drivers): write zeros instead.
    constexpr std::size_t kChunk = 1 << 20;
    std::byte* zeros = bounce_buffer(kChunk);
    if (!zeros) return Errno{ENOMEM};
    std::memset(zeros, 0, kChunk);
    for (std::uint64_t done = 0; done < len.v;) {
        std::uint64_t n = std::min<std::uint64_t>(kChunk, len.v - done);
        REMAPFS_TRY(sys::pwrite_full(e.fd, zeros, ByteCount{n}, ByteOffset{file_off.v + done}));
        done += n;
    }
    return ok();
}

}  // namespace remapfs::block
