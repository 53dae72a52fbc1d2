#include "remapfs/db/history_store.hpp"

#include <fmt/format.h>

namespace remapfs::db {
namespace {

std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }

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

HistoryStore::HistoryStore(const std::string& db_path) : conn_(db_path, Connection::Mode::read_write) {
    conn_.exec("PRAGMA synchronous = NORMAL");
    event_.emplace(conn_, "INSERT INTO sector_event (t, lba, kind, latency_us, source, detail) VALUES (?, ?, ?, ?, ?, ?)");
    region_.emplace(conn_, fmt::format("INSERT INTO region_pass (pass, region, t, {}, errors, sum_us, max_us) VALUES "
                                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pass, region) DO "
                                       "UPDATE SET t = excluded.t, {}",
                                       kBucketCols, kAddCols));
    day_.emplace(conn_, fmt::format("INSERT INTO device_daily (day, {}, errors, sum_us, max_us) VALUES "
                                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE SET {}",
                                    kBucketCols, kAddCols));
    state_.emplace(conn_, "UPDATE scan_state SET pass = ?, cursor = ?, pass_started = ?, total_scans = ?, "
                          "warnings_issued = ? WHERE id = 1");
    pass_.emplace(conn_, "INSERT INTO scan_pass (pass, started, finished, sectors, errors, slow, max_us) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pass) DO UPDATE SET finished = excluded.finished, "
                         "sectors = excluded.sectors, errors = excluded.errors, slow = excluded.slow, "
                         "max_us = excluded.max_us");
}

HistoryStore::Batch::Batch(HistoryStore& s) : s_(s), txn_(s.conn_) {}

void HistoryStore::Batch::event(const SectorEvent& e) {
    auto u = s_.event_->use();
    u(e.t)(i64(e.lba.v))(std::string_view(to_string(e.kind)));
    if (e.latency_us >= 0) u(e.latency_us); else u(std::nullopt);
    u(std::string_view(to_string(e.source)));
    if (e.detail.empty()) u(std::nullopt); else u(std::string_view(e.detail));
    u.exec();
}

void HistoryStore::Batch::region(const RegionStats& r) {
    auto u = s_.region_->use();
    u(i64(r.pass))(i64(r.region))(r.t);
    for (auto b : r.buckets) u(i64(b));
    u(i64(r.sectors))(i64(r.errors))(i64(r.sum_us))(i64(r.max_us)).exec();
    auto d = s_.day_->use();
    d(r.t / 86400);
    for (auto b : r.buckets) d(i64(b));
    d(i64(r.sectors))(i64(r.errors))(i64(r.sum_us))(i64(r.max_us)).exec();
}

void HistoryStore::Batch::state(const ScanCheckpoint& c) {
    s_.state_->use()(i64(c.pass))(i64(c.cursor))(c.pass_started)(i64(c.total_scans))(i64(c.warnings_issued)).exec();
}

void HistoryStore::Batch::pass(const PassRecord& p) {
    auto u = s_.pass_->use();
    u(i64(p.pass))(p.started);
    if (p.finished) u(p.finished); else u(std::nullopt);
    u(i64(p.sectors))(i64(p.errors))(i64(p.slow))(i64(p.max_us)).exec();
}

void HistoryStore::Batch::commit() { txn_.commit(); }

void HistoryStore::downsample(std::int64_t now_s) {
    const std::int64_t today = now_s / 86400;
    Transaction txn(conn_);
    const std::int64_t raw_cut = now_s - kRawDays * 86400LL;
    conn_.exec(fmt::format("INSERT INTO region_daily (day, region, {0}, errors, sum_us, max_us) "
                           "SELECT t / 86400, region, {1}, sum(errors), sum(sum_us), max(max_us) FROM region_pass "
                           "WHERE t < {2} GROUP BY t / 86400, region ON CONFLICT (day, region) DO UPDATE SET {3}",
                           kBucketCols, kSumCols, raw_cut, kAddCols));
    conn_.exec(fmt::format("DELETE FROM region_pass WHERE t < {}", raw_cut));
    const std::int64_t daily_cut = today - kDailyDays;
    const char* month_of = "(CAST(strftime('%Y', day * 86400, 'unixepoch') AS INTEGER) * 12 + "
                           "CAST(strftime('%m', day * 86400, 'unixepoch') AS INTEGER) - 1)";
    conn_.exec(fmt::format("INSERT INTO region_monthly (month, region, {0}, errors, sum_us, max_us) "
                           "SELECT {4}, region, {1}, sum(errors), sum(sum_us), max(max_us) FROM region_daily "
                           "WHERE day < {2} GROUP BY {4}, region ON CONFLICT (month, region) DO UPDATE SET {3}",
                           kBucketCols, kSumCols, daily_cut, kAddCols, month_of));
    conn_.exec(fmt::format("DELETE FROM region_daily WHERE day < {}", daily_cut));
    const std::int64_t event_cut = now_s - kEventDays * 86400LL;
    conn_.exec(fmt::format("INSERT INTO event_daily (day, kind, count) SELECT t / 86400, kind, count(*) FROM "
                           "sector_event WHERE t < {0} GROUP BY 1, 2 ON CONFLICT (day, kind) DO UPDATE SET "
                           "count = count + excluded.count",
                           event_cut));
    conn_.exec(fmt::format("DELETE FROM sector_event WHERE t < {}", event_cut));
    txn.commit();
}

}  // namespace remapfs::db
