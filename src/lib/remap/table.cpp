#include "remapfs/remap/table.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <thread>

namespace remapfs::remap {

Table::Chunk::Chunk(std::vector<Entry> sorted) : entries(std::move(sorted)) {
    assert(!entries.empty() && entries.size() <= kChunkMax);
    for (std::size_t g = 0; g * kGroup < entries.size(); ++g) fences[g] = entries[g * kGroup].lba.v;
}

std::size_t Table::Chunk::lower_bound(Lba lba) const {
    // Branch-free counts: the compares do not wait on each other, so the loads overlap.
    const std::size_t groups = (entries.size() + kGroup - 1) / kGroup;
    std::size_t g = 0;
    for (std::size_t i = 1; i < groups; ++i) g += fences[i] < lba.v;
    const std::size_t first = g * kGroup, last = std::min(first + kGroup, entries.size());
    std::size_t pos = first;
    for (std::size_t i = first; i < last; ++i) pos += entries[i].lba < lba;
    return pos;
}

Table::Table(std::span<const Entry> sorted_entries) {
    Builder b;
    for (const Entry& e : sorted_entries) b.add(e);
    *this = std::move(b).finish();
}

void Table::count(std::span<const Entry> c, bool add) {
    std::uint64_t used = 0, pending_remapped = 0;
    for (const Entry& e : c) {
        used += e.remapped();
        pending_remapped += e.remapped() && e.pending;
    }
    if (add) {
        size_ += c.size();
        slots_used_ += used;
        pending_remapped_ += pending_remapped;
    } else {
        size_ -= c.size();
        slots_used_ -= used;
        pending_remapped_ -= pending_remapped;
    }
}

std::size_t Table::chunk_for(Lba lba) const {
    assert(!chunks_.empty());
    auto it = std::upper_bound(firsts_.begin(), firsts_.end(), lba.v);
    return it == firsts_.begin() ? 0 : static_cast<std::size_t>(it - firsts_.begin()) - 1;
}

const Entry* Table::find(Lba lba) const {
    if (chunks_.empty()) return nullptr;
    const Chunk& c = *chunks_[chunk_for(lba)];
    const std::size_t i = c.lower_bound(lba);
    return i < c.size() && c[i].lba == lba ? &c[i] : nullptr;
}

Table::Range Table::range(Lba first, SectorCount n) const {
    const ChunkPtr* end = chunks_.data() + chunks_.size();
    const Range::iterator e(end, end, 0, 0);
    if (chunks_.empty() || n.v == 0) return {e, e};
    const std::size_t i = chunk_for(first);
    return {Range::iterator(chunks_.data() + i, end, chunks_[i]->lower_bound(first), (first + n).v), e};
}

Table::Range Table::all() const {
    const ChunkPtr* end = chunks_.data() + chunks_.size();
    const Range::iterator e(end, end, 0, 0);
    return {Range::iterator(chunks_.data(), end, 0, UINT64_MAX), e};
}

bool Table::any_moving(Lba first, SectorCount n) const {
    auto r = range(first, n);
    return std::any_of(r.begin(), r.end(), [](const Entry& e) { return e.state == Entry::State::moving; });
}

// A copy sharing every chunk but [from, to), which `entries` (sorted) replaces, cut into chunks
// of at most kChunkMax.
Table Table::spliced(std::size_t from, std::size_t to, std::vector<Entry> entries) const {
    Table t;
    t.size_ = size_;
    t.slots_used_ = slots_used_;
    t.pending_remapped_ = pending_remapped_;
    t.generation_ = generation_;
    for (std::size_t i = from; i < to; ++i) t.count(chunks_[i]->entries, false);
    const std::size_t pieces = (entries.size() + kChunkMax - 1) / kChunkMax;
    t.firsts_.reserve(firsts_.size() - (to - from) + pieces);
    t.chunks_.reserve(chunks_.size() - (to - from) + pieces);
    t.firsts_.insert(t.firsts_.end(), firsts_.begin(), firsts_.begin() + from);
    t.chunks_.insert(t.chunks_.end(), chunks_.begin(), chunks_.begin() + from);
    auto add = [&](std::vector<Entry> c) {
        t.count(c, true);
        t.firsts_.push_back(c.front().lba.v);
        t.chunks_.push_back(std::make_shared<const Chunk>(std::move(c)));
    };
    if (pieces == 1) {
        add(std::move(entries));
    } else {
        for (std::size_t p = 0, done = 0; p < pieces; ++p) {
            const std::size_t next = entries.size() * (p + 1) / pieces;  // even pieces
            add(std::vector<Entry>(entries.begin() + done, entries.begin() + next));
            done = next;
        }
    }
    t.firsts_.insert(t.firsts_.end(), firsts_.begin() + to, firsts_.end());
    t.chunks_.insert(t.chunks_.end(), chunks_.begin() + to, chunks_.end());
    return t;
}

Table Table::with(Entry e) const {
    if (chunks_.empty()) return spliced(0, 0, {e});
    const std::size_t i = chunk_for(e.lba);
    const std::vector<Entry>& c = chunks_[i]->entries;
    std::vector<Entry> v;
    v.reserve(c.size() + 1);
    auto it = c.begin() + static_cast<std::ptrdiff_t>(chunks_[i]->lower_bound(e.lba));
    v.insert(v.end(), c.begin(), it);
    v.push_back(e);
    if (it != c.end() && it->lba == e.lba) ++it;
    v.insert(v.end(), it, c.end());
    return spliced(i, i + 1, std::move(v));
}

Table Table::without(Lba lba) const {
    if (!find(lba)) return *this;
    std::size_t from = chunk_for(lba), to = from + 1;
    // A chunk shrinking below kChunkMin is merged with a neighbour, so that many removals
    // cannot leave many tiny chunks.
    if (chunks_[from]->size() - 1 < kChunkMin && chunks_.size() > 1) {
        if (to < chunks_.size()) ++to;
        else --from;
    }
    std::vector<Entry> v;
    std::size_t n = 0;
    for (std::size_t i = from; i < to; ++i) n += chunks_[i]->size();
    v.reserve(n - 1);
    for (std::size_t i = from; i < to; ++i)
        for (const Entry& e : chunks_[i]->entries)
            if (e.lba != lba) v.push_back(e);
    return spliced(from, to, std::move(v));
}

void Table::Builder::add(const Entry& e) {
    assert(open_.empty() ? full_.empty() || full_.back().back().lba < e.lba : open_.back().lba < e.lba);
    if (open_.empty()) open_.reserve(kChunkTarget);
    open_.push_back(e);
    if (open_.size() == kChunkTarget) close_chunk();
}

void Table::Builder::close_chunk() {
    if (open_.empty()) return;
    t_.count(open_, true);
    t_.firsts_.push_back(open_.front().lba.v);
    full_.push_back(std::move(open_));
    open_ = {};
}

Table Table::Builder::finish() && {
    close_chunk();
    // The chunk headers (fences) are made only now, one after the other, so they sit together
    // in memory rather than between the entry arrays and stay cached: a lookup in a large
    // table then misses the cache once, on its group of entries.
    t_.chunks_.reserve(full_.size());
    for (std::vector<Entry>& entries : full_) t_.chunks_.push_back(std::make_shared<const Chunk>(std::move(entries)));
    full_.clear();
    return std::move(t_);
}

TableHolder::TableHolder() : current_(std::make_shared<const Table>()), current_raw_(current_.load().get()) {}

TableHolder::Pin TableHolder::pin() const {
    Pin p;
    for (std::atomic<const Table*>& entry : hazards_.local().entries) {
        if (entry.load(std::memory_order_relaxed)) continue;  // held by an outer pin of this thread
        const Table* t = current_raw_.load(std::memory_order_acquire);
        for (;;) {
            // Announce, then check the table is still current: a publish either sees the
            // announcement in its scan or has already swapped the pointer, and we retry.
            entry.store(t, std::memory_order_seq_cst);
            const Table* again = current_raw_.load(std::memory_order_seq_cst);
            if (again == t) break;
            t = again;
        }
        p.table_ = t;
        p.hazard_ = &entry;
        return p;
    }
    p.owned_ = load();
    p.table_ = p.owned_.get();
    return p;
}

bool TableHolder::pinned(const Table* t) const {
    bool found = false;
    hazards_.for_each([&](const Hazards& h) {
        for (const std::atomic<const Table*>& e : h.entries) found = found || e.load(std::memory_order_seq_cst) == t;
    });
    return found;
}

void TableHolder::drop_unused_retired() {
    std::erase_if(retired_, [&](const Snapshot& s) { return s.use_count() == 1 && !pinned(s.get()); });
}

void TableHolder::wait_for_change(std::uint64_t seen_generation) const {
    std::unique_lock lock(change_mutex_);
    changed_.wait(lock, [&] { return current_.load(std::memory_order_acquire)->generation() != seen_generation; });
}

void TableHolder::publish(Table t, Grace g) {
    std::unique_lock lock(publish_mutex_);
    const std::uint64_t generation = current_.load(std::memory_order_acquire)->generation() + 1;
    t.generation_ = generation;
    Snapshot next = std::make_shared<const Table>(std::move(t));
    const Table* next_raw = next.get();
    retired_.push_back(current_.exchange(std::move(next), std::memory_order_acq_rel));
    current_raw_.store(next_raw, std::memory_order_seq_cst);
    {
        // Taking the mutex orders the exchange before any waiter's predicate check.
        std::lock_guard change(change_mutex_);
    }
    changed_.notify_all();
    // Grace period: every older snapshot, not only the one just replaced (a request may still
    // pin one from before an earlier Grace::skip publish), must be out of use.
    drop_unused_retired();
    if (g == Grace::skip) return;
    auto older_in_use = [&] {
        return std::any_of(retired_.begin(), retired_.end(), [&](const Snapshot& s) { return s->generation() < generation; });
    };
    while (older_in_use()) {
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        lock.lock();
        drop_unused_retired();
    }
}

}  // namespace remapfs::remap
