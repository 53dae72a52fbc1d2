#pragma once
// The remap table as immutable snapshots. A request pins the current snapshot for its whole
// length with a hazard pointer in its own thread's slot (no lock, no shared cache line
// written); other readers copy a shared_ptr. Writers (remap/unremap) serialise on
// TableHolder's writer mutex, build a new snapshot and publish it.
//
// Memory is proportional to the number of remaps, never to the device size: sorted chunks of
// at most kChunkMax entries (24 bytes each) behind shared pointers, plus each chunk's first lba
// for the binary search. Snapshots share every chunk they have in common, so an edit copies one
// or two chunks and the chunk index (O(chunk + n/chunk)), not the whole table.

#include "remapfs/core/per_thread.hpp"
#include "remapfs/core/units.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <iterator>
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
    static constexpr std::size_t kChunkTarget = 256;            // entries a chunk gets when built in bulk
    static constexpr std::size_t kChunkMax = 2 * kChunkTarget;  // an edit splits a chunk beyond this
    static constexpr std::size_t kChunkMin = kChunkTarget / 4;  // and merges one below this with a neighbour

private:
    // Sorted entries, never empty, and the lba of every kGroup-th one next to the chunk's
    // header. A lookup scans the fences (cached: they are small) and then one group whose
    // lines load in parallel, instead of a binary search whose every probe misses the cache.
    struct Chunk {
        static constexpr std::size_t kGroup = 16;
        explicit Chunk(std::vector<Entry> sorted);
        std::size_t lower_bound(Lba lba) const;  // index of the first entry at or after lba
        std::size_t size() const { return entries.size(); }
        const Entry& operator[](std::size_t i) const { return entries[i]; }

        std::array<std::uint64_t, kChunkMax / kGroup> fences{};
        std::vector<Entry> entries;
    };
    using ChunkPtr = std::shared_ptr<const Chunk>;

public:
    class Range;
    class Builder;

    Table() = default;
    explicit Table(std::span<const Entry> sorted_entries);  // must be sorted by lba, unique

    const Entry* find(Lba lba) const;
    // Entries with first <= lba < first + n, in order. Valid while the table lives.
    Range range(Lba first, SectorCount n) const;
    Range all() const;
    std::size_t size() const { return size_; }
    std::uint64_t slots_used() const { return slots_used_; }
    std::uint64_t pending() const { return size_ - slots_used_ + pending_remapped_; }
    bool any_moving(Lba first, SectorCount n) const;
    std::uint64_t generation() const { return generation_; }
    std::size_t chunk_count() const { return chunks_.size(); }  // tests and benchmarks

    // Copy-on-write edits for writers.
    Table with(Entry e) const;            // insert or replace
    Table without(Lba lba) const;

private:
    friend class TableHolder;
    std::size_t chunk_for(Lba lba) const;  // the chunk that holds lba or would take it; needs a chunk
    Table spliced(std::size_t from, std::size_t to, std::vector<Entry> entries) const;
    void count(std::span<const Entry> c, bool add);  // adds (or takes away) c's entries to the counts

    std::vector<std::uint64_t> firsts_;  // firsts_[i] == chunks_[i]->entries.front().lba.v
    std::vector<ChunkPtr> chunks_;
    std::size_t size_ = 0;
    std::uint64_t slots_used_ = 0;
    std::uint64_t pending_remapped_ = 0;
    std::uint64_t generation_ = 0;  // set by TableHolder::publish
};

// A forward range over a run of entries that may cross chunks (range-for, std::any_of).
class Table::Range {
public:
    class iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = Entry;
        using difference_type = std::ptrdiff_t;
        using pointer = const Entry*;
        using reference = const Entry&;

        iterator() = default;
        reference operator*() const { return (**chunk_)[pos_]; }
        pointer operator->() const { return &**this; }
        iterator& operator++() {
            if (++pos_ == (*chunk_)->size()) {
                ++chunk_;
                pos_ = 0;
            }
            settle();
            return *this;
        }
        iterator operator++(int) {
            iterator old = *this;
            ++*this;
            return old;
        }
        bool operator==(const iterator& o) const { return chunk_ == o.chunk_ && pos_ == o.pos_; }

    private:
        friend class Table;
        iterator(const ChunkPtr* chunk, const ChunkPtr* end, std::size_t pos, std::uint64_t limit)
            : chunk_(chunk), end_(end), pos_(pos), limit_(limit) {
            if (chunk_ != end_ && pos_ == (*chunk_)->size()) {
                ++chunk_;
                pos_ = 0;
            }
            settle();
        }
        // At or past the limit, or past the last chunk: become the end iterator, so the end is
        // known without a second search.
        void settle() {
            if (chunk_ != end_ && (**chunk_)[pos_].lba.v >= limit_) {
                chunk_ = end_;
                pos_ = 0;
            }
        }

        const ChunkPtr* chunk_ = nullptr;
        const ChunkPtr* end_ = nullptr;
        std::size_t pos_ = 0;
        std::uint64_t limit_ = 0;
    };

    iterator begin() const { return begin_; }
    iterator end() const { return end_; }
    bool empty() const { return begin_ == end_; }

private:
    friend class Table;
    Range(iterator b, iterator e) : begin_(b), end_(e) {}
    iterator begin_, end_;
};

// Builds a table from entries given in ascending lba order in O(n), with no copy of the whole
// set (loading a large table at mount).
class Table::Builder {
public:
    void add(const Entry& e);
    Table finish() &&;

private:
    void close_chunk();
    Table t_;
    std::vector<Entry> open_;                // the chunk being filled
    std::vector<std::vector<Entry>> full_;   // chunks waiting for their headers
};

using Snapshot = std::shared_ptr<const Table>;

class TableHolder {
public:
    // A snapshot held for one request. The table stays alive and unchanged while the pin
    // lives; release it on the thread that took it, before asking a writer for anything.
    class Pin {
    public:
        Pin() = default;
        Pin(Pin&& o) noexcept : table_(o.table_), hazard_(o.hazard_), owned_(std::move(o.owned_)) {
            o.table_ = nullptr;
            o.hazard_ = nullptr;
        }
        Pin& operator=(Pin&& o) noexcept {
            if (this != &o) {
                reset();
                std::swap(table_, o.table_);
                std::swap(hazard_, o.hazard_);
                owned_ = std::move(o.owned_);
            }
            return *this;
        }
        Pin(const Pin&) = delete;
        Pin& operator=(const Pin&) = delete;
        ~Pin() { reset(); }

        const Table& operator*() const { return *table_; }
        const Table* operator->() const { return table_; }
        void reset() {
            if (hazard_) hazard_->store(nullptr, std::memory_order_release);
            hazard_ = nullptr;
            owned_.reset();
            table_ = nullptr;
        }

    private:
        friend class TableHolder;
        const Table* table_ = nullptr;
        std::atomic<const Table*>* hazard_ = nullptr;  // this thread's entry naming table_
        Snapshot owned_;                               // instead, when every entry was taken
    };

    TableHolder();

    // The request path: no lock, and the only store goes to this thread's own cache line.
    Pin pin() const;
    // Everyone else (status, the remapper, tests): a shared_ptr copy.
    Snapshot load() const { return current_.load(std::memory_order_acquire); }

    // Readers that met a moving entry drop their snapshot and wait here for a newer one.
    void wait_for_change(std::uint64_t seen_generation) const;

    enum class Grace { skip, wait };
    // Writer side. With Grace::wait, returns once no request still holds an older snapshot (an
    // RCU grace period), so no in-flight I/O uses an old mapping any more: needed before
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
    // Pins a thread can hold at once (nested requests, several holders); more fall back to
    // a shared_ptr copy.
    struct Hazards {
        std::array<std::atomic<const Table*>, 4> entries{};
    };
    bool pinned(const Table* t) const;
    void drop_unused_retired();  // needs publish_mutex_

    std::atomic<Snapshot> current_;
    std::atomic<const Table*> current_raw_;  // current_.get(), what pins load
    mutable PerThread<Hazards> hazards_;
    std::mutex publish_mutex_;
    // Replaced snapshots that a request may still pin or a load() still hold; freed by a
    // later publish once nobody does.
    std::vector<Snapshot> retired_;
    std::mutex writer_mutex_;
    mutable std::mutex change_mutex_;
    mutable std::condition_variable changed_;
};

}  // namespace remapfs::remap
