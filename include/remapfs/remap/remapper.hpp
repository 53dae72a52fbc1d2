#pragma once
// Every change to the remap table goes through here, serialised on the table's writer mutex:
//
//  * moves (manual remap/unremap, pre-emptive remaps of flaky or slow sectors): mark the sector
//    moving (I/O on it waits), wait out requests on the old snapshot, copy, fdatasync, commit,
//    publish. No reader ever sees a slot that does not yet hold the sector's data.
//  * write errors: the data in hand goes to a fresh slot (a slot that fails is retired and the
//    next one tried), fdatasync, commit, publish, and only then is the write acknowledged.
//  * read errors: the sector is recorded as pending; its next write gets a fresh slot.
//
// Work that must not run inside an I/O request (moves wait for in-flight requests) is queued and
// run by a background thread, or by drain() in tests and tools.

#include "remapfs/block/layer.hpp"
#include "remapfs/clock.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/geometry.hpp"
#include "remapfs/health/events.hpp"
#include "remapfs/remap/policy.hpp"
#include "remapfs/remap/table.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
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
    std::uint64_t free() const { return total - used - retired; }
    bool exhausted() const { return used + retired >= total; }
};

class Remapper {
public:
    Remapper(db::Store& store, TableHolder& tables, block::BlockLayer& physical, const Geometry& g,
             const db::AllocatorState& allocator, Policy policy, Clock& clock);
    ~Remapper();

    // Moves. EEXIST: already remapped; ENOSPC: no free slot; EINVAL: outside the image; EIO:
    // the sector could not be read or the slot not written, nothing changed.
    Result<SpareSlot> remap(Lba lba, std::string_view reason);
    Result<void> unremap(Lba lba);  // ENOENT: not remapped

    // From inside an I/O request (callers may hold a snapshot). `sector` is the whole sector's
    // new content.
    Result<void> remap_with_data(Lba lba, std::span<const std::byte> sector, std::string_view reason);
    Result<void> mark_pending(Lba lba, int err);
    void note_recovered_read(Lba lba);                // failed, then read fine on a retry
    void note_slow_read(Lba first, SectorCount n, std::int64_t latency_us);  // one request over the threshold

    SpareUsage usage() const;
    const Policy& policy() const { return policy_; }

    // Where health events go (the history writer); set before I/O starts.
    void set_event_sink(health::EventSink* sink) { sink_ = sink; }

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
        std::string reason;
        health::Source source;  // whose I/O found it: the worker reports on its behalf
    };
    Result<Allocation> allocate();
    void give_back(Allocation a);
    Result<void> copy_sector(ByteOffset from, ByteOffset to);
    // Writes `sector` to a fresh slot, retiring slots that fail; returns the slot that took it.
    Result<Allocation> write_to_fresh_slot(std::span<const std::byte> sector);
    void enqueue(Task t);
    void run(const Task& t);
    void count_slow(Lba lba, std::int64_t latency_us);
    void emit(health::EventKind k, Lba lba, std::int64_t latency_us = -1, std::string detail = {});
    void worker(std::stop_token st);

    db::Store& store_;
    TableHolder& tables_;
    block::BlockLayer& physical_;
    Geometry geometry_;
    Policy policy_;
    Clock& clock_;
    health::EventSink* sink_ = nullptr;
    // Guarded by tables_.writer_mutex().
    std::uint64_t next_slot_;
    std::set<std::uint64_t> free_slots_;
    std::atomic<std::uint64_t> retired_;
    bool warned_exhausted_ = false;

    // Counters for flaky and slow sectors; bounded (cleared when they grow past a limit).
    std::mutex counts_mutex_;
    std::unordered_map<std::uint64_t, std::uint32_t> recovered_;
    std::unordered_map<std::uint64_t, std::uint32_t> slow_;

    std::mutex queue_mutex_;
    std::condition_variable_any queue_cv_;
    std::deque<Task> queue_;
    std::set<std::uint64_t> queued_moves_;
    std::jthread worker_;
};

}  // namespace remapfs::remap
