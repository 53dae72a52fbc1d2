#pragma once
// The remap layer: takes byte requests on the image (any alignment), checks every sector of
// each request on its own against the current table snapshot, sends remapped sectors to their
// spare slot and runs of the others to the backing, and turns partial sectors into
// read-modify-write (nbdkit cow filter: head / body / tail).
//
// When a run fails, its sectors are retried one by one (the slow path) so the failing sector
// is known: a write error sends that sector's data to a fresh spare slot and the write still
// succeeds; a read is retried with backoff and, if the sector stays unreadable, the request
// fails with EIO and the sector becomes pending. The slow path holds no snapshot while it asks
// the Remapper for changes. Only media errors (media_error.hpp) do any of that; a host error
// (ENOSPC from a full host filesystem, EINVAL, ...) goes back to the caller as it is.
//
// The layer is one unit over one layer below: it owns the Remapper that changes the table and
// the spare's own record (SpareMeta), and all three reach the device through the same `next`.
//
// A partial-sector write is read-modify-write: it must not interleave with any other write of
// that sector, or a whole-sector write acknowledged between its read and its write-back is
// lost. Writes take a stripe lock per 1 MiB-sized group of sectors: shared for whole sectors,
// exclusive for a read-modify-write. Reads take none.

#include "remapfs/block/layer.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/block/activity.hpp"
#include "remapfs/block/label.hpp"
#include "remapfs/remap/remapper.hpp"
#include "remapfs/remap/spare_meta.hpp"
#include "remapfs/remap/table.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <shared_mutex>

namespace remapfs::remap {

// What the remap unit is built from: the table, the store and the spare's label as an open
// found them.
struct RemapSetup {
    Geometry geometry;
    TableHolder& tables;
    db::Store& store;
    db::AllocatorState allocator;
    Policy policy;
    Clock& clock;
    Label label;               // the spare label, newest copy
    unsigned newest_copy = 0;  // which copy that is
    std::uint64_t generation = 0;  // the table's, as the database has it
    bool read_only = false;
};

class RemapLayer final : public block::BlockLayer {
public:
    RemapLayer(std::unique_ptr<block::BlockLayer> next, RemapSetup setup);

    Remapper& remapper() { return remapper_; }
    SpareMeta& spare_meta() { return meta_; }

    ByteCount size() const override { return geometry_.image_bytes(); }
    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override;
    Result<void> pwrite(std::span<const std::byte> buf, ByteOffset off) override;
    Result<void> discard(ByteOffset off, ByteCount len) override;

    // User requests are counted here so the scanner can tell when the image is idle.
    void set_activity(block::Activity* a) { activity_ = a; }

    // The scanner's read: whole sectors through the same per-sector error handling as a user's
    // (retries, pending, pre-emptive remaps), with each physical run's outcome and latency
    // reported to `on_run`. Not counted as user activity.
    using RunObserver = std::function<void(Lba first, SectorCount n, std::int64_t us, bool ok)>;
    Result<void> scan_read(Lba first, SectorCount n, std::byte* buf, const RunObserver& on_run);

private:
    enum class Io { read, write };
    // A snapshot with no sector of [first, first+n) in the middle of a move.
    TableHolder::Pin settled_snapshot(Lba first, SectorCount n) const;
    // Whole sectors [first, first+n): runs through the fast path, failing runs sector by sector.
    Result<void> body(Io io, Lba first, SectorCount n, std::byte* data, const RunObserver* observer = nullptr);
    // The fast path: every physical run of [first, first+n) in flight at once. False with the
    // first failed run (request-relative sector index and count) for the slow path.
    bool transfer_runs(Io io, const Table& t, Lba first, SectorCount n, std::byte* data,
                       std::uint64_t& fail_idx, std::uint64_t& fail_n);
    // The same, one run at a time, timing each for the observer and slow-sector detection.
    bool timed_reads(const Table& t, Lba first, SectorCount n, std::byte* data, const RunObserver* observer,
                     std::uint64_t& fail_idx, std::uint64_t& fail_n);
    Result<void> read_one(Lba lba, std::byte* out);
    Result<void> write_one(Lba lba, const std::byte* in);
    Result<void> patch_sector(const SectorSplit::Partial& p, const std::byte* data);  // data null: zeros

    // Stripe locks over groups of kStripeSectors sectors.
    static constexpr std::uint64_t kStripeSectors = 256;
    static constexpr std::size_t kStripes = 64;
    struct alignas(64) Stripe {
        std::shared_mutex m;
    };
    // Holds the stripes of [first, first + n) shared, taken in index order (no deadlock).
    class SharedStripes {
    public:
        SharedStripes(RemapLayer& l, Lba first, SectorCount n);
        ~SharedStripes();
        SharedStripes(const SharedStripes&) = delete;
        SharedStripes& operator=(const SharedStripes&) = delete;

    private:
        RemapLayer& l_;
        std::uint64_t mask_ = 0;
    };
    std::shared_mutex& stripe_of(Lba l) { return stripes_[(l.v / kStripeSectors) % kStripes].m; }

    Geometry geometry_;
    const TableHolder& tables_;
    Clock& clock_;
    bool read_only_;
    SpareMeta meta_;      // on next_
    Remapper remapper_;  // on next_, recording in meta_
    block::Activity* activity_ = nullptr;
    // Lock order: stripes, then the table's writer mutex (taken inside the Remapper).
    std::array<Stripe, kStripes> stripes_;
};

}  // namespace remapfs::remap
