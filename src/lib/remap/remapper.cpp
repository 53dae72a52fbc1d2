#include "remapfs/remap/remapper.hpp"

#include "remapfs/block/media_error.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <optional>

namespace remapfs::remap {
namespace {

using State = Entry::State;
constexpr std::size_t kMaxCounted = 100'000;  // per map; beyond it the counts start over
constexpr std::size_t kMaxQueued = 4096;

std::optional<Entry> current_entry(const TableHolder& tables, Lba lba) {
    Snapshot cur = tables.load();
    const Entry* e = cur->find(lba);
    return e ? std::optional<Entry>(*e) : std::nullopt;
}

}  // namespace

Remapper::Remapper(db::Store& store, TableHolder& tables, block::BlockLayer& physical, const Geometry& g,
                   const db::AllocatorState& allocator, Policy policy, Clock& clock, SpareMeta& meta,
                   std::uint64_t generation)
    : store_(store),
      tables_(tables),
      physical_(physical),
      geometry_(g),
      policy_(policy),
      clock_(clock),
      meta_(meta),
      next_slot_(allocator.next_slot),
      free_slots_(allocator.free_slots.begin(), allocator.free_slots.end()),
      retired_(allocator.retired),
      generation_(std::max(generation, meta.generation())) {}

void Remapper::emit(EventKind k, Lba lba, std::int64_t latency_us, std::string detail) {
    if (sink_) sink_->event({clock_.now_s(), lba, k, latency_us, current_source(), std::move(detail)});
}

Remapper::~Remapper() { stop_worker(); }

void Remapper::stop_worker() {
    if (worker_.joinable()) {
        worker_.request_stop();
        worker_.join();
    }
}

Result<Remapper::Allocation> Remapper::allocate() {
    if (!free_slots_.empty()) {
        auto it = free_slots_.begin();
        Allocation a{*it, true};
        free_slots_.erase(it);
        return a;
    }
    if (!geometry_.contains(next_slot_)) {
        if (!warned_exhausted_)
            log::error("spare area exhausted: all {} slots used or retired; writes that need a new remap fail "
                       "with ENOSPC", geometry_.spare_slots.v);
        warned_exhausted_ = true;
        return Errno{ENOSPC};
    }
    const SpareSlot s = next_slot_;
    next_slot_ = SpareSlot{s.v + 1};
    return Allocation{s, false};
}

void Remapper::give_back(Allocation a) {
    if (a.from_free_list)
        free_slots_.insert(a.slot);
    else if (a.slot.v + 1 == next_slot_.v)
        next_slot_ = a.slot;
}

void Remapper::record(const Result<void>& r, const char* what) {
    if (r) return;
    if (!records_behind_.exchange(true))
        log::warning("writing {} to the spare area failed ({}); the device's own record of its remaps lags the "
                     "database until the next mount puts it right", what, errno_name(r.error()));
}

void Remapper::commit_label(std::uint64_t generation) {
    // One copy failing is what the two are for: the other takes the generation.
    if (meta_.commit(generation)) return;
    record(meta_.commit(generation), "the label");
}

Result<Remapper::Allocation> Remapper::write_to_fresh_slot(std::span<const std::byte> sector,
                                                           std::optional<Allocation> first) {
    const std::int64_t now = clock_.now_s();
    const bool probing = slot_fail_streak_ >= kFailingStreak;
    if (probing && now < probe_after_s_) {
        if (first) give_back(*first);
        return Errno{EIO};
    }
    for (unsigned attempt = 0; attempt < kSlotAttempts; ++attempt) {
        Allocation a{};
        if (attempt == 0 && first) {
            a = *first;
        } else {
            auto n = allocate();
            if (!n) return Errno{n.error()};
            a = *n;
        }
        auto w = physical_.pwrite_durable(sector, geometry_.slot_offset(a.slot));
        if (w) {
            if (probing) log::warning("spare slot {} took a write again: remaps resume", a.slot.v);
            slot_fail_streak_ = 0;
            failing_ = false;
            return a;
        }
        // Not the slot's fault (the host filesystem is full, say): nothing to retire.
        if (!block::is_media_error(w.error())) {
            give_back(a);
            if (probing) probe_after_s_ = now + kProbeSeconds;
            return Errno{w.error()};
        }
        if (++slot_fail_streak_ >= kFailingStreak) {
            give_back(a);
            if (!probing)
                log::error("{} spare slot writes in a row failed ({}): the device is failing, not its slots; writes "
                           "that need a new spare slot fail with EIO, and one slot is tried every {} s",
                           slot_fail_streak_, errno_name(w.error()), kProbeSeconds);
            failing_ = true;
            probe_after_s_ = now + kProbeSeconds;
            return Errno{EIO};
        }
        log::warning("spare slot {} failed a write ({}); retiring it", a.slot.v, errno_name(w.error()));
        if (auto c = store_.commit_retire(a.slot, a.from_free_list, w.error()); !c) {
            give_back(a);
            return Errno{EIO};
        }
        ++retired_;
        record(meta_.write(std::array{SlotChange{a.slot, {SlotHeader::State::retired, Lba{0}, generation_.load()}}}),
               "a slot header");
    }
    log::error("{} spare slots failed a write one after another; this write fails with EIO", kSlotAttempts);
    return Errno{EIO};
}

Result<void> Remapper::commit_new_mapping(Lba lba, Allocation a, db::RemapReason reason) {
    const std::uint64_t g = ++generation_;
    record(meta_.write(std::array{SlotChange{a.slot, {SlotHeader::State::mapped, lba, g}}}), "a slot header");
    if (auto c = store_.commit_remap(lba, a.slot, a.from_free_list, reason, g); !c) {
        // The remap never happened: its header must not claim the slot.
        record(meta_.write(std::array{SlotChange{a.slot, {}}}), "a slot header");
        give_back(a);
        return c;
    }
    commit_label(g);
    return ok();
}

Result<SpareSlot> Remapper::remap(Lba lba, db::RemapReason reason) {
    if (!geometry_.contains(lba)) return Errno{EINVAL};
    std::lock_guard lock(tables_.writer_mutex());
    const std::optional<Entry> prev = current_entry(tables_, lba);
    if (prev && prev->remapped()) return Errno{EEXIST};
    auto first = allocate();
    if (!first) return Errno{first.error()};

    tables_.update([&](const Table& t) { return t.with({lba, first->slot, State::moving}); }, TableHolder::Grace::wait);
    auto undo = [&] {
        tables_.update([&](const Table& t) { return prev ? t.with(*prev) : t.without(lba); }, TableHolder::Grace::skip);
    };
    alignas(4096) std::byte sector[4096];
    const std::uint32_t ss = geometry_.sector_size.bytes();
    // The sector's own read failing is not the slot's fault: nothing is retired.
    if (auto r = physical_.pread({sector, ss}, geometry_.data_offset(lba)); !r) {
        give_back(*first);
        undo();
        return Errno{r.error()};
    }
    auto a = write_to_fresh_slot({sector, ss}, *first);
    Result<void> done = a ? commit_new_mapping(lba, *a, reason) : Result<void>(Errno{a.error()});
    if (!done) {
        undo();
        return Errno{done.error()};
    }
    tables_.update([&](const Table& t) { return t.with({lba, a->slot, State::active}); }, TableHolder::Grace::skip);
    log::info("sector {} remapped to spare slot {} ({})", lba.v, a->slot.v, db::to_string(reason));
    emit(EventKind::remap, lba, -1, db::to_string(reason));
    return a->slot;
}

Result<void> Remapper::unremap(Lba lba) {
    if (!geometry_.contains(lba)) return Errno{EINVAL};
    std::lock_guard lock(tables_.writer_mutex());
    const std::optional<Entry> prev = current_entry(tables_, lba);
    if (!prev || !prev->remapped()) return Errno{ENOENT};
    const SpareSlot slot = prev->slot;

    tables_.update([&](const Table& t) { return t.with({lba, slot, State::moving, prev->pending}); },
                   TableHolder::Grace::wait);
    alignas(4096) std::byte sector[4096];
    const std::uint32_t ss = geometry_.sector_size.bytes();
    auto done = physical_.pread({sector, ss}, geometry_.slot_offset(slot));
    if (done) done = physical_.pwrite_durable({sector, ss}, geometry_.data_offset(lba));
    // The slot stops claiming the sector before the table lets it go: the sector's own place
    // holds the data now, so a rebuild from either state is right. A pending sector's slot is
    // the copy that failed to read: it is retired, not reused.
    const std::uint64_t g = ++generation_;
    const SlotHeader after = prev->pending ? SlotHeader{SlotHeader::State::retired, lba, g} : SlotHeader{};
    if (done) done = meta_.write(std::array{SlotChange{slot, after}});
    if (done) {
        done = store_.commit_unremap(lba, slot, prev->pending, g);
        if (!done)  // back as it was; if even that fails, the next open puts it right
            record(meta_.write(std::array{SlotChange{slot, {SlotHeader::State::mapped, lba, g - 1}}}), "a slot header");
    }
    if (!done) {
        tables_.update([&](const Table& t) { return t.with(*prev); }, TableHolder::Grace::skip);
        return Errno{done.error()};
    }
    commit_label(g);
    tables_.update([&](const Table& t) { return t.without(lba); }, TableHolder::Grace::skip);
    if (prev->pending) ++retired_;
    else free_slots_.insert(slot);
    warned_exhausted_ = false;
    log::info("sector {} unremapped, spare slot {} {}", lba.v, slot.v, prev->pending ? "retired" : "freed");
    emit(EventKind::heal, lba, -1, "unremap");
    return ok();
}

Result<void> Remapper::remap_with_data(Lba lba, std::span<const std::byte> sector, db::RemapReason reason) {
    if (reason == db::RemapReason::write_error) emit(EventKind::write_error, lba);
    std::lock_guard lock(tables_.writer_mutex());
    const std::optional<Entry> prev = current_entry(tables_, lba);
    if (prev && prev->remapped()) {
        // Another request remapped it meanwhile, or its slot is what failed.
        int old_err = EIO;
        if (!prev->pending) {
            auto w = physical_.pwrite_durable(sector, geometry_.slot_offset(prev->slot));
            if (w) return ok();
            if (!block::is_media_error(w.error())) return w;
            old_err = w.error();
        }
        auto a = write_to_fresh_slot(sector);
        if (!a) return Errno{a.error()};
        const std::uint64_t g = ++generation_;
        record(meta_.write(std::array{SlotChange{a->slot, {SlotHeader::State::mapped, lba, g}}}), "a slot header");
        if (!store_.commit_relocate(lba, prev->slot, a->slot, a->from_free_list, old_err, g)) {
            record(meta_.write(std::array{SlotChange{a->slot, {}}}), "a slot header");
            give_back(*a);
            return Errno{EIO};
        }
        ++retired_;
        // The label first: until it has g, the new slot's header counts as uncommitted, and the
        // old slot's {mapped, lba} is what a rebuild must find (it holds the acknowledged data).
        commit_label(g);
        record(meta_.write(std::array{SlotChange{prev->slot, {SlotHeader::State::retired, lba, g}}}), "a slot header");
        tables_.update([&](const Table& t) { return t.with({lba, a->slot, State::active}); }, TableHolder::Grace::skip);
        log::warning("sector {}: spare slot {} failed, moved to slot {}", lba.v, prev->slot.v, a->slot.v);
        emit(EventKind::remap, lba, -1, "slot-failed");
        return ok();
    }
    auto a = write_to_fresh_slot(sector);
    if (!a) return Errno{a.error()};
    REMAPFS_TRY(commit_new_mapping(lba, *a, reason));
    tables_.update([&](const Table& t) { return t.with({lba, a->slot, State::active}); }, TableHolder::Grace::skip);
    log::warning("sector {} remapped to spare slot {} ({})", lba.v, a->slot.v, db::to_string(reason));
    emit(EventKind::remap, lba, -1, db::to_string(reason));
    return ok();
}

Result<void> Remapper::mark_pending(Lba lba, int err) {
    std::lock_guard lock(tables_.writer_mutex());
    auto committed = store_.commit_pending(lba, err);
    emit(EventKind::read_error, lba, -1, errno_name(err));
    const std::optional<Entry> prev = current_entry(tables_, lba);
    if (!prev || !prev->pending) {
        Entry e = prev ? *prev : Entry{lba, SpareSlot{0}, State::none};
        e.pending = true;
        tables_.update([&](const Table& t) { return t.with(e); }, TableHolder::Grace::skip);
        log::warning("sector {} is unreadable ({}); pending until it is rewritten", lba.v, errno_name(err));
        emit(EventKind::pending, lba);
    }
    return committed;
}

void Remapper::note_recovered_read(Lba lba) {
    if (policy_.error_threshold == 0) return;
    {
        std::lock_guard lock(counts_mutex_);
        if (recovered_.size() > kMaxCounted) recovered_.clear();
        if (++recovered_[lba] < policy_.error_threshold) return;
        recovered_.erase(lba);
    }
    enqueue({Task::Kind::move, lba, SectorCount{1}, db::RemapReason::read_errors, current_source()});
}

void Remapper::count_slow(Lba lba, std::int64_t latency_us) {
    emit(EventKind::slow_read, lba, latency_us);
    {
        std::lock_guard lock(counts_mutex_);
        if (slow_.size() > kMaxCounted) slow_.clear();
        if (++slow_[lba] < policy_.slow_count) return;
        slow_.erase(lba);
    }
    enqueue({Task::Kind::move, lba, SectorCount{1}, db::RemapReason::slow_reads, current_source()});
}

void Remapper::note_slow_read(Lba first, SectorCount n, std::int64_t latency_us) {
    if (policy_.slow_us == 0) return;
    if (n.v == 1) return count_slow(first, latency_us);
    // Which sector of the request was slow? Time them one by one, off the I/O path.
    enqueue({Task::Kind::probe, first, n, db::RemapReason::slow_reads, current_source()});
}

void Remapper::enqueue(Task t) {
    {
        std::lock_guard lock(queue_mutex_);
        if (queue_.size() >= kMaxQueued) return;
        if (t.kind == Task::Kind::move && !queued_moves_.insert(t.lba).second) return;
        queue_.push_back(std::move(t));
    }
    queue_cv_.notify_one();
}

void Remapper::run(const Task& t) {
    ScopedSource src(t.source);
    if (t.kind == Task::Kind::move) {
        auto r = remap(t.lba, t.reason);
        if (!r && r.error() != EEXIST)
            log::warning("pre-emptive remap of sector {} ({}) failed: {}", t.lba.v, db::to_string(t.reason), errno_name(r.error()));
        return;
    }
    alignas(4096) std::byte sector[4096];
    const std::uint32_t ss = geometry_.sector_size.bytes();
    for (std::uint64_t i = 0; i < t.count.v; ++i) {
        const Lba l = t.lba + SectorCount{i};
        const std::optional<Entry> e = current_entry(tables_, l);
        const ByteOffset where = e && e->remapped() ? geometry_.slot_offset(e->slot) : geometry_.data_offset(l);
        const std::int64_t start = clock_.now_us();
        auto r = physical_.pread({sector, ss}, where);
        const std::int64_t took = clock_.now_us() - start;
        if (r && took > static_cast<std::int64_t>(policy_.slow_us)) count_slow(l, took);
    }
}

void Remapper::drain() {
    for (;;) {
        Task t;
        {
            std::lock_guard lock(queue_mutex_);
            if (queue_.empty()) return;
            t = std::move(queue_.front());
            queue_.pop_front();
            if (t.kind == Task::Kind::move) queued_moves_.erase(t.lba);
        }
        run(t);
    }
}

void Remapper::worker(std::stop_token st) {
    while (!st.stop_requested()) {
        {
            std::unique_lock lock(queue_mutex_);
            if (!queue_cv_.wait(lock, st, [&] { return !queue_.empty(); })) return;
        }
        drain();
    }
}

void Remapper::start_worker() {
    worker_ = std::jthread([this](std::stop_token st) {
        sys::name_this_thread("rfs-remapper");
        worker(st);
    });
}

SpareUsage Remapper::usage() const {
    Snapshot cur = tables_.load();
    return {cur->slots_used(), retired_.load(), geometry_.spare_slots.v, cur->pending(), failing_.load(),
            records_behind()};
}

}  // namespace remapfs::remap
