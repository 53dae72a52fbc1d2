#include "remapfs/remap/table.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <thread>

namespace remapfs::remap {
namespace {
auto lower(const std::vector<Entry>& v, Lba lba) {
    return std::lower_bound(v.begin(), v.end(), lba, [](const Entry& e, Lba l) { return e.lba < l; });
}
}  // namespace

Table::Table(std::vector<Entry> sorted_entries) : entries_(std::move(sorted_entries)) {
    assert(std::is_sorted(entries_.begin(), entries_.end(),
                          [](const Entry& a, const Entry& b) { return a.lba < b.lba; }));
    for (const Entry& e : entries_) {
        if (e.remapped()) ++slots_used_;
        if (e.remapped() && e.pending) ++pending_remapped_;
    }
}

const Entry* Table::find(Lba lba) const {
    auto it = lower(entries_, lba);
    return it != entries_.end() && it->lba == lba ? &*it : nullptr;
}

std::span<const Entry> Table::range(Lba first, SectorCount n) const {
    if (entries_.empty()) return {};
    auto b = lower(entries_, first);
    auto e = lower(entries_, first + n);
    return {entries_.data() + (b - entries_.begin()), static_cast<std::size_t>(e - b)};
}

bool Table::any_moving(Lba first, SectorCount n) const {
    auto r = range(first, n);
    return std::any_of(r.begin(), r.end(), [](const Entry& e) { return e.state == Entry::State::moving; });
}

Table Table::with(Entry e) const {
    std::vector<Entry> v;
    v.reserve(entries_.size() + 1);
    auto it = lower(entries_, e.lba);
    v.insert(v.end(), entries_.begin(), it);
    v.push_back(e);
    if (it != entries_.end() && it->lba == e.lba) ++it;
    v.insert(v.end(), it, entries_.end());
    return Table(std::move(v));
}

Table Table::without(Lba lba) const {
    std::vector<Entry> v;
    v.reserve(entries_.size());
    for (const Entry& e : entries_)
        if (e.lba != lba) v.push_back(e);
    return Table(std::move(v));
}

void TableHolder::wait_for_change(std::uint64_t seen_generation) const {
    std::unique_lock lock(change_mutex_);
    changed_.wait(lock, [&] { return current_.load(std::memory_order_acquire)->generation() != seen_generation; });
}

void TableHolder::publish(Table t, Grace g) {
    t.generation_ = current_.load(std::memory_order_acquire)->generation() + 1;
    Snapshot old = current_.exchange(std::make_shared<const Table>(std::move(t)), std::memory_order_acq_rel);
    {
        // Taking the mutex orders the exchange before any waiter's predicate check.
        std::lock_guard lock(change_mutex_);
    }
    changed_.notify_all();
    // Grace period: requests copy the snapshot pointer, so once only `old` is left no request
    // can still be using the old mapping (the pointer is no longer reachable from current_).
    if (g == Grace::skip) return;
    while (old.use_count() > 1) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

}  // namespace remapfs::remap
