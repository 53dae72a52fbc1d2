#include "remapfs/block/backing.hpp"

#include "remapfs/sys/io.hpp"
#include "remapfs/sys/io_buffer.hpp"

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

namespace remapfs::block {
namespace {

constexpr std::size_t kDirectAlign = 4096;

// Grows on demand and lives as long as the thread (FUSE worker, scanner, control thread).
std::byte* bounce_buffer(std::size_t len) {
    thread_local sys::IoBuffer buffer;
    return buffer.reserve(len);
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

Result<void> Backing::pwrite_durable(std::span<const std::byte> buf, ByteOffset off) {
    IoRun run{const_cast<std::byte*>(buf.data()), ByteCount{buf.size()}, off, ok()};
    transfer_runs({&run, 1}, true, true);
    return run.result;
}

void Backing::transfer_runs(std::span<IoRun> runs, bool write, bool dsync) {
    // Runs that follow each other in the same file become one transfer, whatever their places in
    // the request: slots are handed out in order, so the remapped sectors of one request (and a
    // cluster of adjacent bad sectors) usually sit side by side in the spare and cost one device
    // request, not one each. Everything of a group shares its result; the remap layer's slow
    // path then finds the failing sector on its own.
    struct Group {
        std::size_t first, count;  // into `order`
        std::uint64_t len;
        std::byte* data;           // contiguous in memory: one plain transfer from here
        bool bounce;
    };
    thread_local std::vector<std::size_t> order;
    thread_local std::vector<int> fds;
    thread_local std::vector<std::uint64_t> file_off;
    thread_local std::vector<Group> groups;
    thread_local std::vector<iovec> iovs;
    thread_local std::vector<sys::Transfer> ts;
    order.clear();
    fds.clear();
    file_off.clear();
    groups.clear();
    iovs.clear();
    ts.clear();
    for (std::size_t i = 0; i < runs.size(); ++i) {
        const Extent& e = extent_for(runs[i].off, runs[i].len);
        fds.push_back(e.fd);
        file_off.push_back(e.file_offset.v + (runs[i].off.v - e.phys_begin.v));
        order.push_back(i);
    }
    if (runs.size() > 1)
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return fds[a] != fds[b] ? fds[a] < fds[b] : file_off[a] < file_off[b];
        });
    auto rounded = [](std::uint64_t len) { return (len + kDirectAlign - 1) / kDirectAlign * kDirectAlign; };
    std::size_t scratch_len = 0;
    std::uint64_t bounced = 0;
    for (std::size_t k = 0; k < order.size(); ++k) {
        const IoRun& r = runs[order[k]];
        if (!groups.empty()) {
            Group& g = groups.back();
            const IoRun& last = runs[order[g.first + g.count - 1]];
            if (fds[order[g.first]] == fds[order[k]] && file_off[order[k]] == file_off[order[g.first]] + g.len &&
                g.count < IOV_MAX) {
                if (g.data && last.data + last.len.v != r.data) g.data = nullptr;
                g.bounce = g.bounce || (direct_ && !aligned(r.data));
                g.len += r.len.v;
                ++g.count;
                continue;
            }
        }
        groups.push_back({k, 1, r.len.v, r.data, direct_ && !aligned(r.data)});
    }
    for (const Group& g : groups) {
        // Scattered in memory but aligned: the kernel takes the pieces as they are (preadv).
        // Otherwise one aligned piece of the bounce buffer holds the whole group.
        if (g.bounce) {
            scratch_len += rounded(g.len);
            bounced += g.len;
        } else if (!g.data) {
            iovs.resize(iovs.size() + g.count);  // sized first: spans into it stay valid
        }
    }
    std::byte* scratch = scratch_len ? bounce_buffer(scratch_len) : nullptr;
    if (scratch_len && !scratch) {
        for (IoRun& r : runs) r.result = Errno{ENOMEM};
        return;
    }
    if (bounced) bounced_bytes_.fetch_add(bounced, std::memory_order_relaxed);
    std::size_t at = 0, iov_at = 0;
    for (const Group& g : groups) {
        const std::size_t head = order[g.first];
        sys::Transfer t{fds[head], write, g.data, ByteCount{g.len}, ByteOffset{file_off[head]}, ok()};
        t.dsync = dsync;
        if (g.bounce) {
            t.buf = scratch + at;
            if (write)
                for (std::size_t k = 0, pos = 0; k < g.count; pos += runs[order[g.first + k]].len.v, ++k)
                    std::memcpy(scratch + at + pos, runs[order[g.first + k]].data, runs[order[g.first + k]].len.v);
            at += rounded(g.len);
        } else if (!g.data) {
            for (std::size_t k = 0; k < g.count; ++k) {
                const IoRun& r = runs[order[g.first + k]];
                iovs[iov_at + k] = {r.data, r.len.v};
            }
            t.segments = {iovs.data() + iov_at, g.count};
            iov_at += g.count;
        }
        ts.push_back(t);
    }
    sys::run_concurrently(ts);
    at = 0;
    for (std::size_t gi = 0; gi < groups.size(); ++gi) {
        const Group& g = groups[gi];
        for (std::size_t k = 0, pos = 0; k < g.count; ++k) {
            IoRun& r = runs[order[g.first + k]];
            r.result = ts[gi].result;
            if (g.bounce && !write && r.result) std::memcpy(r.data, scratch + at + pos, r.len.v);
            pos += r.len.v;
        }
        if (g.bounce) at += rounded(g.len);
    }
}

void Backing::pread_runs(std::span<IoRun> runs) { transfer_runs(runs, false); }

void Backing::pwrite_runs(std::span<IoRun> runs) { transfer_runs(runs, true); }

Result<void> Backing::flush() {
    flushes_.fetch_add(1, std::memory_order_relaxed);
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
