#include "remapfs/remap/remap_layer.hpp"

#include "remapfs/block/media_error.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <optional>

namespace remapfs::remap {
namespace {

constexpr std::size_t kMaxSector = 4096;
constexpr std::uint32_t kMaxRetryDelayUs = 1'000'000;
alignas(kMaxSector) const std::byte kZeros[kMaxSector] = {};

// Calls f(physical offset, index of the first sector in the request, sector count, entry or
// null) for each maximal run of sectors that are contiguous on the physical side: runs of
// sectors not remapped (pending ones included: they still live on the backing), and remapped
// sectors one at a time. Stops at the first error.
template <typename F>
Result<void> for_each_run(const Geometry& g, const Table& t, Lba first, SectorCount n, F&& f) {
    std::uint64_t i = 0;
    for (const Entry& e : t.range(first, n)) {
        if (!e.remapped() && !e.pending) continue;
        const std::uint64_t idx = e.lba.v - first.v;
        if (!e.remapped()) {
            if (idx > i) REMAPFS_TRY(f(g.data_offset(first + SectorCount{i}), i, SectorCount{idx - i}, nullptr));
            REMAPFS_TRY(f(g.data_offset(e.lba), idx, SectorCount{1}, &e));
            i = idx + 1;
            continue;
        }
        if (idx > i) REMAPFS_TRY(f(g.data_offset(first + SectorCount{i}), i, SectorCount{idx - i}, nullptr));
        REMAPFS_TRY(f(g.slot_offset(e.slot), idx, SectorCount{1}, &e));
        i = idx + 1;
    }
    if (i < n.v) REMAPFS_TRY(f(g.data_offset(first + SectorCount{i}), i, SectorCount{n.v - i}, nullptr));
    return ok();
}

}  // namespace

RemapLayer::RemapLayer(std::unique_ptr<block::BlockLayer> next, RemapSetup setup)
    : BlockLayer(std::move(next)),
      geometry_(setup.geometry),
      tables_(setup.tables),
      clock_(setup.clock),
      read_only_(setup.read_only),
      meta_(*next_, setup.geometry, std::move(setup.label), setup.newest_copy),
      remapper_(setup.store, setup.tables, *next_, setup.geometry, setup.allocator, setup.policy, setup.clock, meta_,
                setup.generation) {
    assert(geometry_.sector_size.bytes() <= kMaxSector);
}

RemapLayer::SharedStripes::SharedStripes(RemapLayer& l, Lba first, SectorCount n) : l_(l) {
    const std::uint64_t g0 = first.v / kStripeSectors, g1 = (first.v + n.v - 1) / kStripeSectors;
    if (g1 - g0 + 1 >= kStripes) mask_ = ~std::uint64_t{0};
    else
        for (std::uint64_t g = g0; g <= g1; ++g) mask_ |= std::uint64_t{1} << (g % kStripes);
    for (std::size_t i = 0; i < kStripes; ++i)
        if (mask_ >> i & 1) l_.stripes_[i].m.lock_shared();
}

RemapLayer::SharedStripes::~SharedStripes() {
    for (std::size_t i = 0; i < kStripes; ++i)
        if (mask_ >> i & 1) l_.stripes_[i].m.unlock_shared();
}

TableHolder::Pin RemapLayer::settled_snapshot(Lba first, SectorCount n) const {
    for (;;) {
        TableHolder::Pin s = tables_.pin();
        if (!s->any_moving(first, n)) return s;
        const std::uint64_t gen = s->generation();
        s.reset();  // a writer may be waiting for it to go
        tables_.wait_for_change(gen);
    }
}

Result<void> RemapLayer::read_one(Lba lba, std::byte* out) {
    const std::uint32_t ss = geometry_.sector_size.bytes();
    const remap::Policy& pol = remapper_.policy();
    Result<void> r = ok();
    std::uint32_t delay = pol.retry_delay_us;
    for (std::uint32_t attempt = 0; attempt <= pol.read_retries; ++attempt) {
        if (attempt) {
            clock_.sleep_us(delay);
            // Doubling, up to a second (or the first delay, if that is longer): never wraps.
            delay = static_cast<std::uint32_t>(std::min<std::uint64_t>(
                std::uint64_t{delay} * 2, std::max(kMaxRetryDelayUs, pol.retry_delay_us)));
        }
        {
            TableHolder::Pin s = settled_snapshot(lba, SectorCount{1});
            const Entry* e = s->find(lba);
            r = next_->pread({out, ss}, e && e->remapped() ? geometry_.slot_offset(e->slot) : geometry_.data_offset(lba));
        }
        if (r) {
            if (attempt) remapper_.note_recovered_read(lba);
            return ok();
        }
    }
    // Only the medium failing makes a sector pending; a refusal from the host is passed on.
    if (!block::is_media_error(r.error())) return r;
    (void)remapper_.mark_pending(lba, r.error());
    return Errno{EIO};
}

Result<void> RemapLayer::write_one(Lba lba, const std::byte* in) {
    const std::span<const std::byte> sector{in, geometry_.sector_size.bytes()};
    Result<void> r = ok();
    bool remapped = false;
    {
        TableHolder::Pin s = settled_snapshot(lba, SectorCount{1});
        const Entry* e = s->find(lba);
        // A pending sector is not rewritten in place: drive semantics, it gets a fresh slot.
        if (e && e->pending) {
            s.reset();
            return remapper_.remap_with_data(lba, sector, db::RemapReason::rewrite_pending);
        }
        remapped = e && e->remapped();
        r = next_->pwrite(sector, remapped ? geometry_.slot_offset(e->slot) : geometry_.data_offset(lba));
    }
    if (r) return ok();
    if (!block::is_media_error(r.error())) return r;
    if (!remapped && !remapper_.policy().auto_remap) {
        (void)remapper_.mark_pending(lba, r.error());
        return Errno{EIO};
    }
    return remapper_.remap_with_data(lba, sector, db::RemapReason::write_error);
}

bool RemapLayer::transfer_runs(Io io, const Table& t, Lba first, SectorCount n, std::byte* data,
                               std::uint64_t& fail_idx, std::uint64_t& fail_n) {
    struct Piece {
        std::uint64_t idx, count;
        bool pending_write;  // handled by write_one on the slow path: never written in place
    };
    thread_local std::vector<Piece> pieces;
    thread_local std::vector<block::IoRun> runs;
    pieces.clear();
    runs.clear();
    const std::uint32_t ss = geometry_.sector_size.bytes();
    (void)for_each_run(geometry_, t, first, n,
                       [&](ByteOffset phys, std::uint64_t idx, SectorCount cnt, const Entry* e) -> Result<void> {
        const bool pending_write = io == Io::write && e && e->pending;
        pieces.push_back({idx, cnt.v, pending_write});
        if (!pending_write) runs.push_back({data + idx * ss, ByteCount{ss * cnt.v}, phys, ok()});
        return ok();
    });
    if (io == Io::read) next_->pread_runs(runs);
    else next_->pwrite_runs(runs);
    std::size_t r = 0;
    for (const Piece& p : pieces) {
        if (p.pending_write || !runs[r++].result) {
            fail_idx = p.idx;
            fail_n = p.count;
            return false;
        }
    }
    return true;
}

bool RemapLayer::timed_reads(const Table& t, Lba first, SectorCount n, std::byte* data,
                             const RunObserver* observer, std::uint64_t& fail_idx, std::uint64_t& fail_n) {
    const std::uint32_t ss = geometry_.sector_size.bytes();
    const std::uint32_t slow_us = remapper_.policy().slow_us;
    auto r = for_each_run(geometry_, t, first, n,
                          [&](ByteOffset phys, std::uint64_t idx, SectorCount cnt, const Entry*) -> Result<void> {
        const std::int64_t t0 = clock_.now_us();
        Result<void> res = next_->pread({data + idx * ss, ss * cnt.v}, phys);
        const std::int64_t took = clock_.now_us() - t0;
        if (!res) {
            fail_idx = idx;
            fail_n = cnt.v;
            return res;
        }
        if (observer) (*observer)(first + SectorCount{idx}, cnt, took, true);
        if (slow_us && took > slow_us) remapper_.note_slow_read(first + SectorCount{idx}, cnt, took);
        return ok();
    });
    return bool(r);
}

Result<void> RemapLayer::body(Io io, Lba first, SectorCount n, std::byte* data, const RunObserver* observer) {
    const std::uint32_t ss = geometry_.sector_size.bytes();
    const std::uint32_t slow_us = remapper_.policy().slow_us;
    Result<void> outcome = ok();
    std::uint64_t done = 0;
    while (done < n.v) {
        const Lba pos = first + SectorCount{done};
        const SectorCount left{n.v - done};
        std::uint64_t fail_idx = 0, fail_n = 0;
        bool fast_ok;
        {
            TableHolder::Pin snap = settled_snapshot(pos, left);
            // Reads that need each run's latency (the scanner, slow-sector detection) go one run
            // at a time; everything else has all of its runs in flight together.
            if (io == Io::read && (slow_us || observer))
                fast_ok = timed_reads(*snap, pos, left, data + done * ss, observer, fail_idx, fail_n);
            else
                fast_ok = transfer_runs(io, *snap, pos, left, data + done * ss, fail_idx, fail_n);
        }
        if (fast_ok) break;
        // Slow path for the failed run, one sector at a time, holding no snapshot.
        for (std::uint64_t k = 0; k < fail_n; ++k) {
            const Lba l = pos + SectorCount{fail_idx + k};
            std::byte* p = data + (done + fail_idx + k) * ss;
            if (io == Io::read) {
                // Keep going so every unreadable sector of the request is recorded.
                const std::int64_t t0 = observer ? clock_.now_us() : 0;
                auto r = read_one(l, p);
                if (observer) (*observer)(l, SectorCount{1}, clock_.now_us() - t0, bool(r));
                if (!r && outcome) outcome = r;
            } else {
                REMAPFS_TRY(write_one(l, p));
            }
        }
        done += fail_idx + fail_n;
    }
    return outcome;
}

Result<void> RemapLayer::scan_read(Lba first, SectorCount n, std::byte* buf, const RunObserver& on_run) {
    assert(first.v + n.v <= geometry_.image_sectors.v);
    return body(Io::read, first, n, buf, &on_run);
}

Result<void> RemapLayer::pread(std::span<std::byte> buf, ByteOffset off) {
    block::Activity::Scope busy(activity_);
    const std::uint32_t ss = geometry_.sector_size.bytes();
    assert(off.v + buf.size() <= size().v);
    const SectorSplit sp = split_sectors(geometry_.sector_size, off, ByteCount{buf.size()});
    std::byte* out = buf.data();
    alignas(kMaxSector) std::byte sector[kMaxSector];
    Result<void> outcome = ok();
    if (sp.head.length) {
        outcome = read_one(sp.head.lba, sector);
        if (outcome) std::memcpy(out, sector + sp.head.offset_in_sector, sp.head.length);
        out += sp.head.length;
    }
    if (sp.body_count.v) {
        if (auto r = body(Io::read, sp.body_first, sp.body_count, out); !r && outcome) outcome = r;
        out += ss * sp.body_count.v;
    }
    if (sp.tail.length) {
        auto r = read_one(sp.tail.lba, sector);
        if (r) std::memcpy(out, sector, sp.tail.length);
        else if (outcome) outcome = r;
    }
    return outcome;
}

Result<void> RemapLayer::patch_sector(const SectorSplit::Partial& p, const std::byte* data) {
    alignas(kMaxSector) std::byte sector[kMaxSector];
    std::lock_guard lock(stripe_of(p.lba));
    // An unreadable sector cannot be merged: its untouched bytes are gone. Fail like a 512e
    // drive does; a whole-sector write will heal it.
    REMAPFS_TRY(read_one(p.lba, sector));
    if (data)
        std::memcpy(sector + p.offset_in_sector, data, p.length);
    else
        std::memset(sector + p.offset_in_sector, 0, p.length);
    return write_one(p.lba, sector);
}

Result<void> RemapLayer::pwrite(std::span<const std::byte> buf, ByteOffset off) {
    if (read_only_) return Errno{EROFS};
    block::Activity::Scope busy(activity_);
    const std::uint32_t ss = geometry_.sector_size.bytes();
    assert(off.v + buf.size() <= size().v);
    const SectorSplit sp = split_sectors(geometry_.sector_size, off, ByteCount{buf.size()});
    const std::byte* in = buf.data();
    if (sp.head.length) {
        REMAPFS_TRY(patch_sector(sp.head, in));
        in += sp.head.length;
    }
    if (sp.body_count.v) {
        SharedStripes hold(*this, sp.body_first, sp.body_count);
        // body() only reads from `data` on writes.
        REMAPFS_TRY(body(Io::write, sp.body_first, sp.body_count, const_cast<std::byte*>(in)));
        in += ss * sp.body_count.v;
    }
    if (sp.tail.length) REMAPFS_TRY(patch_sector(sp.tail, in));
    return ok();
}

Result<void> RemapLayer::discard(ByteOffset off, ByteCount len) {
    if (read_only_) return Errno{EROFS};
    block::Activity::Scope busy(activity_);
    assert(off.v + len.v <= size().v);
    const SectorSplit sp = split_sectors(geometry_.sector_size, off, len);
    if (sp.head.length) REMAPFS_TRY(patch_sector(sp.head, nullptr));
    if (sp.body_count.v) {
        SharedStripes hold(*this, sp.body_first, sp.body_count);
        std::optional<Lba> retry_first;
        std::uint64_t retry_n = 0;
        {
            TableHolder::Pin snap = settled_snapshot(sp.body_first, sp.body_count);
            auto r = for_each_run(geometry_, *snap, sp.body_first, sp.body_count,
                                  [&](ByteOffset phys, std::uint64_t idx, SectorCount n,
                                      const Entry* e) -> Result<void> {
                // A spare slot is one sector: zero it rather than punch a hole in the spare
                // area. Pending sectors take the write path (they get a fresh slot).
                Result<void> res = e ? (e->pending ? Result<void>(Errno{EAGAIN})
                                                   : next_->pwrite({kZeros, geometry_.sector_size.bytes()}, phys))
                                     : next_->discard(phys, geometry_.sector_size.bytes(n));
                if (!res) {
                    retry_first = sp.body_first + SectorCount{idx};
                    retry_n = sp.body_count.v - idx;
                }
                return res;
            });
            (void)r;
        }
        // Whatever could not be discarded in place is written as zeros, sector by sector,
        // which brings the usual write-error handling with it.
        for (std::uint64_t k = 0; retry_first && k < retry_n; ++k) REMAPFS_TRY(write_one(*retry_first + SectorCount{k}, kZeros));
    }
    if (sp.tail.length) REMAPFS_TRY(patch_sector(sp.tail, nullptr));
    return ok();
}

}  // namespace remapfs::remap
