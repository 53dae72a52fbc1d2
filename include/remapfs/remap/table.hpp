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
    Lba lba;
    SpareSlot slot;
    // Data is being copied between the backing and the slot: I/O touching this sector waits
    // until the move is committed (or undone) and the next snapshot is published.
    bool moving = false;
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
    bool any_moving(Lba first, SectorCount n) const;

    // Copy-on-write edits for writers.
    Table with(Entry e) const;            // insert or replace
    Table without(Lba lba) const;

private:
    std::vector<Entry> entries_;
};

using Snapshot = std::shared_ptr<const Table>;

class TableHolder {
public:
    TableHolder() : current_(std::make_shared<const Table>()) {}

    Snapshot load() const { return current_.load(std::memory_order_acquire); }

    // Readers that met a moving entry wait here for the next publication.
    void wait_for_change(const Snapshot& seen) const;

    // Writer side. Publishing returns once no request still holds an older snapshot (an RCU
    // grace period), so a writer knows no in-flight I/O uses the old mapping any more.
    void publish(Table t);
    // publish(edit(current table)), without holding the current snapshot across the grace
    // period (holding it would wait on ourselves).
    template <typename F>
    void update(F&& edit) {
        Table next = [&] {
            Snapshot cur = load();
            return edit(*cur);
        }();
        publish(std::move(next));
    }

    // Serialises writers; hold it across a whole remap/unremap.
    std::mutex& writer_mutex() { return writer_mutex_; }

private:
    std::atomic<Snapshot> current_;
    std::mutex writer_mutex_;
    mutable std::mutex change_mutex_;
    mutable std::condition_variable changed_;
};

}  // namespace remapfs::remap
