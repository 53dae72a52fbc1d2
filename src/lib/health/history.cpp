#include "remapfs/health/history.hpp"

#include "remapfs/db/history_store.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <fmt/format.h>

namespace remapfs::health {
namespace {

constexpr std::size_t kMaxQueued = 100'000;
constexpr std::size_t kBatch = 2'000;
constexpr std::int64_t kDownsampleEvery = 3600;

template <class Item>
std::size_t regions_in(const Item& it) {
    if (std::holds_alternative<RegionStats>(it)) return 1;
    if (auto* c = std::get_if<HistoryWriter::Checkpoint>(&it)) return c->regions.size();
    return 0;
}

}  // namespace

std::int64_t normalised_us(std::int64_t us, std::uint64_t bytes) {
    constexpr std::uint64_t kUnit = 1 << 20;
    if (bytes <= kUnit) return us;
    return static_cast<std::int64_t>(static_cast<double>(us) * kUnit / static_cast<double>(bytes));
}

HistoryWriter::HistoryWriter(const std::string& db_path, Clock& clock)
    : db_path_(db_path), clock_(clock), store_(std::make_unique<db::HistoryStore>(db_path)) {}

HistoryWriter::~HistoryWriter() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
    flush();
}

void HistoryWriter::push(Item it) {
    {
        std::lock_guard lock(mutex_);
        if (queue_.size() >= kMaxQueued) {
            ++dropped_;
            return;
        }
        queued_regions_ += regions_in(it);
        queue_.push_back(std::move(it));
    }
    cv_.notify_one();
}

void HistoryWriter::event(SectorEvent e) { push(std::move(e)); }
void HistoryWriter::region(const RegionStats& r) { push(r); }
void HistoryWriter::checkpoint(const ScanCheckpoint& c) { push(c); }
void HistoryWriter::pass(const PassRecord& p) { push(p); }
void HistoryWriter::checkpoint(Checkpoint c) { push(std::move(c)); }

std::size_t HistoryWriter::backlog_regions() const {
    if (!threaded_.load(std::memory_order_relaxed)) return 0;
    std::lock_guard lock(mutex_);
    return queued_regions_;
}

std::uint64_t HistoryWriter::dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
}

void HistoryWriter::write_batch(std::deque<Item>& batch) {
    db::HistoryStore::Batch b = store_->batch();
    for (Item& it : batch) {
        if (auto* e = std::get_if<SectorEvent>(&it)) {
            b.event(*e);
        } else if (auto* r = std::get_if<RegionStats>(&it)) {
            b.region(*r);
        } else if (auto* c = std::get_if<ScanCheckpoint>(&it)) {
            b.state(*c);
        } else if (auto* p = std::get_if<PassRecord>(&it)) {
            b.pass(*p);
        } else if (auto* k = std::get_if<Checkpoint>(&it)) {
            for (const auto& reg : k->regions) b.region(reg);
            b.pass(k->pass);
            b.state(k->state);
        }
    }
    b.commit();
}

void HistoryWriter::flush() {
    std::lock_guard wlock(write_mutex_);
    for (;;) {
        std::deque<Item> batch;
        {
            std::lock_guard lock(mutex_);
            if (queue_.empty()) break;
            const std::size_t n = std::min(kBatch, queue_.size());
            batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
            queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
            for (const Item& it : batch) queued_regions_ -= regions_in(it);
        }
        try {
            write_batch(batch);
        } catch (const std::exception& e) {
            // History is best effort: a failed batch is logged and dropped, I/O goes on.
            log::error("health history: {}", e.what());
            std::lock_guard lock(mutex_);
            dropped_ += batch.size();
        }
    }
    const std::int64_t now = clock_.now_s();
    if (now - last_downsample_s_ >= kDownsampleEvery) {
        last_downsample_s_ = now;
        try {
            store_->downsample(now);  // write_mutex_ is held
        } catch (const std::exception& e) {
            log::error("health history downsampling: {}", e.what());
        }
    }
}

void HistoryWriter::downsample(std::int64_t now_s) {
    std::lock_guard wlock(write_mutex_);
    store_->downsample(now_s);
}

void HistoryWriter::run(std::stop_token st) {
    while (!st.stop_requested()) {
        {
            std::unique_lock lock(mutex_);
            // Batch: wake at most once a second unless a lot is waiting.
            cv_.wait_for(lock, st, std::chrono::seconds(1),
                         [&] { return queue_.size() >= kBatch || queued_regions_ >= kBatch; });
        }
        flush();
    }
}

void HistoryWriter::start() {
    threaded_.store(true, std::memory_order_relaxed);
    thread_ = std::jthread([this](std::stop_token st) {
        sys::name_this_thread("rfs-history");
        run(st);
    });
}

}  // namespace remapfs::health
