#pragma once
// The remap table as immutable snapshots. Readers load the current snapshot with one atomic
// shared_ptr load and keep it for the whole request; no lock is taken per I/O. Writers
// (remap/unremap) serialise on TableWriter's mutex, build a new snapshot and publish it.
//
// Memory is proportional to the number of remaps (a sorted vector, 24 bytes an entry), never to
// the device size.

#include "remapfs/units.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace remapfs::remap {

struct Entry {
    enum class State : std::uint8_t {
        none,    // not remapped (the entry exists only because the sector is pending)
        active,  // served from `slot`
        // Data is being copied between the backing and the slot: I/O touching this sector
        // waits until the move is committed (or undone) and the next snapshot is published.
        moving,
    };
    Lba lba;
    SpareSlot slot;
    State state = State::active;
    // A read failed even after retries; the next write of the sector goes to a fresh slot
    // (drive semantics: a pending sector is reallocated when it is rewritten).
    bool pending = false;

    bool remapped() const { return state != State::none; }
};

class Table {
public:
    Table() = default;
    explicit Table(std::vector<Entry> sorted_entries);  // must be sorted by lba, unique

    const Entry* find(Lba lba) const;
    // Entries with first <= lba < first + n, in order.
    std::span<const Entry> range(Lba first, SectorCount n) const;
    std::span<const Entry> all() const { return entries_; }
    std::size_t size() const { return entries_.size(); }
    std::uint64_t slots_used() const { return slots_used_; }
    std::uint64_t pending() const { return entries_.size() - slots_used_ + pending_remapped_; }
    bool any_moving(Lba first, SectorCount n) const;
    std::uint64_t generation() const { return generation_; }

    // Copy-on-write edits for writers.
    Table with(Entry e) const;            // insert or replace
    Table without(Lba lba) const;

private:
    friend class TableHolder;
    std::vector<Entry> entries_;
    std::uint64_t slots_used_ = 0;
    std::uint64_t pending_remapped_ = 0;
    std::uint64_t generation_ = 0;  // set by TableHolder::publish
};

using Snapshot = std::shared_ptr<const Table>;

class TableHolder {
public:
    TableHolder() : current_(std::make_shared<const Table>()) {}

    Snapshot load() const { return current_.load(std::memory_order_acquire); }

    // Readers that met a moving entry drop their snapshot and wait here for a newer one.
    void wait_for_change(std::uint64_t seen_generation) const;

    enum class Grace { skip, wait };
    // Writer side. With Grace::wait, returns once no request still holds an older snapshot (an
    // RCU grace period), so no in-flight I/O uses the old mapping any more: needed before
    // copying a sector's data. A caller holding a snapshot itself must use Grace::skip.
    void publish(Table t, Grace g);
    // publish(edit(current table)), without holding the current snapshot across the grace
    // period (holding it would wait on ourselves).
    template <typename F>
    void update(F&& edit, Grace g) {
        Table next = [&] {
            Snapshot cur = load();
            return edit(*cur);
        }();
        publish(std::move(next), g);
    }

    // Serialises writers; hold it across a whole remap/unremap.
    // Never acquire it while holding a snapshot: a writer inside a grace period waits for
    // every snapshot holder.
    std::mutex& writer_mutex() { return writer_mutex_; }

private:
    std::atomic<Snapshot> current_;
    std::mutex writer_mutex_;
    mutable std::mutex change_mutex_;
    mutable std::condition_variable changed_;
};

}  // namespace remapfs::remap
