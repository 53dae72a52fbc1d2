#pragma once
// Every change to the remap table goes through here, serialised on the table's writer mutex:
//
//  * moves (manual remap/unremap, pre-emptive remaps of flaky or slow sectors): mark the sector
//    moving (I/O on it waits), wait out requests on the old snapshot, copy, fdatasync, commit,
//    publish. No reader ever sees a slot that does not yet hold the sector's data.
//  * write errors: the data in hand goes to a fresh slot (a slot that fails is retired and the
//    next one tried, at most kSlotAttempts per request), fdatasync, commit, publish, and only
//    then is the write acknowledged.
//  * read errors: the sector is recorded as pending; its next write gets a fresh slot.
//
// Only media errors (block/media_error.hpp) retire a slot; a host error (a full host
// filesystem, a quota) goes back to the caller. When kFailingStreak slot writes in a row fail,
// the device is failing, not its slots: writes that need a new slot get EIO and one slot is
// tried again every kProbeSeconds, so a dying disk does not use up its whole spare.
//
// With a self-describing spare (layout 2) every change also writes the slot headers and the
// label's generation (spare_meta.hpp has the order).
//
// Work that must not run inside an I/O request (moves wait for in-flight requests) is queued and
// run by a background thread, or by drain() in tests and tools.

#include "remapfs/block/layer.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/remap/events.hpp"
#include "remapfs/remap/policy.hpp"
#include "remapfs/remap/spare_meta.hpp"
#include "remapfs/remap/table.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace remapfs::remap {

struct SpareUsage {
    std::uint64_t used = 0;     // slots holding a remap
    std::uint64_t retired = 0;  // slots that failed and are never used again
    std::uint64_t total = 0;    // all slots
    std::uint64_t pending = 0;  // sectors waiting for a rewrite
    bool failing = false;       // slot writes keep failing: the device is failing
    bool records_behind = false;  // the spare's own record (slot headers, label) lags the table
    std::uint64_t free() const { return total - used - retired; }
    bool exhausted() const { return used + retired >= total; }
};

class Remapper {
public:
    static constexpr unsigned kSlotAttempts = 3;
    static constexpr unsigned kFailingStreak = 8;
    static constexpr std::int64_t kProbeSeconds = 30;

    // generation: the table's, as the database has it (the label's may be lower after a crash).
    Remapper(db::Store& store, TableHolder& tables, block::BlockLayer& physical, const Geometry& g,
             const db::AllocatorState& allocator, Policy policy, Clock& clock, SpareMeta& meta,
             std::uint64_t generation);
    ~Remapper();

    // Moves. EEXIST: already remapped; ENOSPC: no free slot; EINVAL: outside the image; EIO:
    // the sector (remap) or its slot (unremap) could not be read, or no slot took the data;
    // a host error as it came. Nothing changed unless it succeeded.
    Result<SpareSlot> remap(Lba lba, db::RemapReason reason);
    Result<void> unremap(Lba lba);  // ENOENT: not remapped

    // From inside an I/O request (callers may hold a snapshot). `sector` is the whole sector's
    // new content.
    Result<void> remap_with_data(Lba lba, std::span<const std::byte> sector, db::RemapReason reason);
    Result<void> mark_pending(Lba lba, int err);
    void note_recovered_read(Lba lba);                // failed, then read fine on a retry
    void note_slow_read(Lba first, SectorCount n, std::int64_t latency_us);  // one request over the threshold

    SpareUsage usage() const;
    const Policy& policy() const { return policy_; }
    std::uint64_t generation() const { return generation_.load(); }
    // A slot header or label write failed: the spare's record is behind the database until the
    // next open puts it right (the daemon leaves the device marked dirty).
    bool records_behind() const { return records_behind_.load() || meta_.records_lost(); }
    void mark_records_behind() { records_behind_ = true; }

    // Where health events go (the history writer); set before I/O starts.
    void set_event_sink(EventSink* sink) { sink_ = sink; }

    void start_worker();
    void stop_worker();
    void drain();  // runs queued work on this thread

private:
    struct Allocation {
        SpareSlot slot;
        bool from_free_list;
    };
    struct Task {
        enum class Kind { move, probe } kind;
        Lba lba;
        SectorCount count;
        db::RemapReason reason;
        Source source;  // whose I/O found it: the worker reports on its behalf
    };
    Result<Allocation> allocate();
    void give_back(Allocation a);
    // Writes `sector` durably to a fresh slot (to `first` first, if given), retiring slots that
    // fail with a media error; returns the slot that took it. `first` is given back on failure.
    Result<Allocation> write_to_fresh_slot(std::span<const std::byte> sector, std::optional<Allocation> first = {});
    // Header, database, label for a new remap of lba (spare_meta.hpp); gives the slot back if
    // the database refuses.
    Result<void> commit_new_mapping(Lba lba, Allocation a, db::RemapReason reason);
    void record(const Result<void>& r, const char* what);  // a spare-record write's outcome
    void commit_label(std::uint64_t generation);
    void enqueue(Task t);
    void run(const Task& t);
    void count_slow(Lba lba, std::int64_t latency_us);
    void emit(EventKind k, Lba lba, std::int64_t latency_us = -1, std::string detail = {});
    void worker(std::stop_token st);

    db::Store& store_;
    TableHolder& tables_;
    block::BlockLayer& physical_;
    Geometry geometry_;
    Policy policy_;
    Clock& clock_;
    SpareMeta& meta_;
    EventSink* sink_ = nullptr;
    // Guarded by tables_.writer_mutex().
    SpareSlot next_slot_;             // the first never handed out
    std::set<SpareSlot> free_slots_;  // freed, reused first (lowest first)
    std::uint32_t slot_fail_streak_ = 0;
    std::int64_t probe_after_s_ = 0;
    bool warned_exhausted_ = false;
    std::atomic<std::uint64_t> retired_;
    std::atomic<std::uint64_t> generation_;  // the last one handed out: each change takes the next
    std::atomic<bool> failing_{false};
    std::atomic<bool> records_behind_{false};

    // Counters for flaky and slow sectors; bounded (cleared when they grow past a limit).
    std::mutex counts_mutex_;
    std::unordered_map<Lba, std::uint32_t> recovered_;
    std::unordered_map<Lba, std::uint32_t> slow_;

    std::mutex queue_mutex_;
    std::condition_variable_any queue_cv_;
    std::deque<Task> queue_;
    std::set<Lba> queued_moves_;
    std::jthread worker_;
};

}  // namespace remapfs::remap
