#include "remapfs/health/history.hpp"

#include "remapfs/db/sqlite.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <fmt/format.h>

namespace remapfs::health {
namespace {

constexpr std::size_t kMaxQueued = 100'000;
constexpr std::size_t kBatch = 2'000;
constexpr std::int64_t kDownsampleEvery = 3600;

std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }

template <class Item>
std::size_t regions_in(const Item& it) {
    if (std::holds_alternative<RegionStats>(it)) return 1;
    if (auto* c = std::get_if<HistoryWriter::Checkpoint>(&it)) return c->regions.size();
    return 0;
}

// The counters every tier carries (kAddCols adds them up on conflict).
const char* kBucketCols = "b0, b1, b2, b3, b4, b5, b6, b7, sectors";
const char* kSumCols = "sum(b0), sum(b1), sum(b2), sum(b3), sum(b4), sum(b5), sum(b6), sum(b7), sum(sectors)";
const char* kAddCols =
    "b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2, b3 = b3 + excluded.b3, "
    "b4 = b4 + excluded.b4, b5 = b5 + excluded.b5, b6 = b6 + excluded.b6, b7 = b7 + excluded.b7, "
    "sectors = sectors + excluded.sectors, "
    "errors = errors + excluded.errors, sum_us = sum_us + excluded.sum_us, "
    "max_us = max(max_us, excluded.max_us)";

}  // namespace

std::int64_t normalised_us(std::int64_t us, std::uint64_t bytes) {
    constexpr std::uint64_t kUnit = 1 << 20;
    if (bytes <= kUnit) return us;
    return static_cast<std::int64_t>(static_cast<double>(us) * kUnit / static_cast<double>(bytes));
}

HistoryWriter::HistoryWriter(const std::string& db_path, Clock& clock)
    : db_path_(db_path), clock_(clock),
      conn_(std::make_unique<db::Connection>(db_path, db::Connection::Mode::read_write)) {
    // History is not what protects data: NORMAL is durable enough in WAL and much cheaper.
    conn_->exec("PRAGMA synchronous = NORMAL");
    last_downsample_s_ = 0;
}

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
    db::Transaction txn(*conn_);
    db::Statement ev(*conn_, "INSERT INTO sector_event (t, lba, kind, latency_us, source, detail) VALUES (?, ?, ?, ?, ?, ?)");
    db::Statement rg(*conn_, fmt::format("INSERT INTO region_pass (pass, region, t, {}, errors, sum_us, max_us) VALUES "
                                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pass, region) DO "
                                         "UPDATE SET t = excluded.t, {}",
                                         kBucketCols, kAddCols));
    db::Statement dd(*conn_, fmt::format("INSERT INTO device_daily (day, {}, errors, sum_us, max_us) VALUES "
                                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE SET {}",
                                         kBucketCols, kAddCols));
    db::Statement cp(*conn_, "UPDATE scan_state SET pass = ?, cursor = ?, pass_started = ?, total_scans = ?, "
                             "warnings_issued = ? WHERE id = 1");
    db::Statement ps(*conn_, "INSERT INTO scan_pass (pass, started, finished, sectors, errors, slow, max_us) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pass) DO UPDATE SET finished = excluded.finished, "
                             "sectors = excluded.sectors, errors = excluded.errors, slow = excluded.slow, "
                             "max_us = excluded.max_us");
    auto write_region = [&](const RegionStats& r) {
        auto u = rg.use();
        u(i64(r.pass))(i64(r.region))(r.t);
        for (auto b : r.buckets) u(i64(b));
        u(i64(r.sectors))(i64(r.errors))(i64(r.sum_us))(i64(r.max_us)).exec();
        auto d = dd.use();
        d(r.t / 86400);
        for (auto b : r.buckets) d(i64(b));
        d(i64(r.sectors))(i64(r.errors))(i64(r.sum_us))(i64(r.max_us)).exec();
    };
    auto write_state = [&](const ScanCheckpoint& c) {
        cp.use()(i64(c.pass))(i64(c.cursor))(c.pass_started)(i64(c.total_scans))(i64(c.warnings_issued)).exec();
    };
    auto write_pass = [&](const PassRecord& p) {
        auto u = ps.use();
        u(i64(p.pass))(p.started);
        if (p.finished) u(p.finished); else u(std::nullopt);
        u(i64(p.sectors))(i64(p.errors))(i64(p.slow))(i64(p.max_us)).exec();
    };
    for (Item& it : batch) {
        if (auto* e = std::get_if<SectorEvent>(&it)) {
            auto u = ev.use();
            u(e->t)(i64(e->lba.v))(std::string_view(to_string(e->kind)));
            if (e->latency_us >= 0) u(e->latency_us); else u(std::nullopt);
            u(std::string_view(to_string(e->source)));
            if (e->detail.empty()) u(std::nullopt); else u(std::string_view(e->detail));
            u.exec();
        } else if (auto* r = std::get_if<RegionStats>(&it)) {
            write_region(*r);
        } else if (auto* c = std::get_if<ScanCheckpoint>(&it)) {
            write_state(*c);
        } else if (auto* p = std::get_if<PassRecord>(&it)) {
            write_pass(*p);
        } else if (auto* k = std::get_if<Checkpoint>(&it)) {
            for (const auto& reg : k->regions) write_region(reg);
            write_pass(k->pass);
            write_state(k->state);
        }
    }
    txn.commit();
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
            downsample(now);
        } catch (const std::exception& e) {
            log::error("health history downsampling: {}", e.what());
        }
    }
}

void HistoryWriter::downsample(std::int64_t now_s) {
    const std::int64_t today = now_s / 86400;
    db::Transaction txn(*conn_);
    const std::int64_t raw_cut = now_s - kRawDays * 86400LL;
    conn_->exec(fmt::format("INSERT INTO region_daily (day, region, {0}, errors, sum_us, max_us) "
                            "SELECT t / 86400, region, {1}, sum(errors), sum(sum_us), max(max_us) FROM region_pass "
                            "WHERE t < {2} GROUP BY t / 86400, region ON CONFLICT (day, region) DO UPDATE SET {3}",
                            kBucketCols, kSumCols, raw_cut, kAddCols));
    conn_->exec(fmt::format("DELETE FROM region_pass WHERE t < {}", raw_cut));
    const std::int64_t daily_cut = today - kDailyDays;
    const char* month_of = "(CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) * 12 + "
                           "CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) - 1)";
    conn_->exec(fmt::format("INSERT INTO region_monthly (month, region, {0}, errors, sum_us, max_us) "
                            "SELECT {4}, region, {1}, sum(errors), sum(sum_us), max(max_us) FROM region_daily "
                            "WHERE day < {2} GROUP BY {4}, region ON CONFLICT (month, region) DO UPDATE SET {3}",
                            kBucketCols, kSumCols, daily_cut, kAddCols, month_of));
    conn_->exec(fmt::format("DELETE FROM region_daily WHERE day < {}", daily_cut));
    const std::int64_t event_cut = now_s - kEventDays * 86400LL;
    conn_->exec(fmt::format("INSERT INTO event_daily (day, kind, count) SELECT t / 86400, kind, count(*) FROM "
                            "sector_event WHERE t < {0} GROUP BY 1, 2 ON CONFLICT (day, kind) DO UPDATE SET "
                            "count = count + excluded.count",
                            event_cut));
    conn_->exec(fmt::format("DELETE FROM sector_event WHERE t < {}", event_cut));
    txn.commit();
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
