#pragma once
// The one writer of health history. Producers (the remap layer, the scanner) push records into
// a bounded queue and never wait; a thread with its own SQLite connection drains it in batches,
// one transaction per batch, and runs the tiered downsampling:
//
//   region_pass (per pass, kept kRawDays)  -> region_daily (kept kDailyDays) -> region_monthly
//   sector_event (kept kEventDays)         -> event_daily
//
// so the database stays bounded however long the device lives.

#include "remapfs/clock.hpp"
#include "remapfs/health/events.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace remapfs::db {
class Connection;
}

namespace remapfs::health {

inline constexpr int kRawDays = 15;
inline constexpr int kDailyDays = 90;
inline constexpr int kEventDays = 90;
inline constexpr int kBuckets = 8;
// Upper bounds of the latency classes in microseconds (hdck's 7200 rpm classes plus one for
// solid-state); the last class is everything slower.
inline constexpr std::array<std::int64_t, kBuckets - 1> kBucketUpperUs = {500, 2100, 4200, 8300, 16700, 33300, 50000};
int bucket_of(std::int64_t us);
// Scanner reads differ in size (64 KiB while users are busy, sectors_per_scan when idle):
// reads up to 1 MiB are classed by their latency as it is, larger ones per 1 MiB, so a 16 MiB
// read is not "slow" for being large.
std::int64_t normalised_us(std::int64_t us, std::uint64_t bytes);

struct RegionStats {
    std::uint64_t pass = 0;
    std::uint64_t region = 0;
    std::int64_t t = 0;
    std::array<std::uint64_t, kBuckets> buckets{};
    std::uint64_t sectors = 0;  // read (or attempted) in this pass
    std::uint64_t errors = 0;
    std::uint64_t sum_us = 0;
    std::uint64_t max_us = 0;
    std::uint64_t reads() const;
    void add(std::int64_t us);
};

struct ScanCheckpoint {
    std::uint64_t pass = 0;
    std::uint64_t cursor = 0;
    std::int64_t pass_started = 0;
    std::uint64_t total_scans = 0;
    std::uint64_t warnings_issued = 0;
};

struct PassRecord {
    std::uint64_t pass = 0;
    std::int64_t started = 0;
    std::int64_t finished = 0;  // 0: still running
    std::uint64_t sectors = 0, errors = 0, slow = 0, max_us = 0;
};

class HistoryWriter final : public EventSink {
public:
    // Opens its own connection to the (already migrated) database.
    HistoryWriter(const std::string& db_path, Clock& clock);
    ~HistoryWriter() override;  // drains what is queued, then stops

    void event(SectorEvent e) override;
    void region(const RegionStats& r);
    void checkpoint(const ScanCheckpoint& c);
    void pass(const PassRecord& p);
    // Region rows, the pass record and the scanner position in one transaction, so a restart
    // never counts the reads since the last checkpoint twice.
    struct Checkpoint {
        std::vector<RegionStats> regions;
        PassRecord pass;
        ScanCheckpoint state;
    };
    void checkpoint(Checkpoint c);

    void start();  // the writer thread (daemon); without it, flush() does the work
    void flush();  // writes everything queued now, on the caller's thread
    void downsample(std::int64_t now_s);
    std::uint64_t dropped() const;
    // Region rows queued and not yet taken by the writer thread (0 without the thread: then
    // whoever calls flush() decides when). The scanner waits while this is large.
    std::size_t backlog_regions() const;

private:
    using Item = std::variant<SectorEvent, RegionStats, ScanCheckpoint, PassRecord, Checkpoint>;
    void push(Item it);
    void write_batch(std::deque<Item>& batch);
    void run(std::stop_token st);

    std::string db_path_;
    Clock& clock_;
    std::unique_ptr<db::Connection> conn_;
    std::mutex write_mutex_;  // one writer of the connection at a time (thread or flush())
    mutable std::mutex mutex_;  // the queue only; leaf lock
    std::condition_variable_any cv_;
    std::deque<Item> queue_;
    std::uint64_t dropped_ = 0;
    std::size_t queued_regions_ = 0;  // RegionStats in queue_, loose or in a Checkpoint
    std::atomic<bool> threaded_{false};
    std::int64_t last_downsample_s_ = 0;
    std::jthread thread_;
};

}  // namespace remapfs::health
