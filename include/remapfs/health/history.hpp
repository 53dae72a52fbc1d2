#pragma once
// The one writer of health history. Producers (the remap layer, the scanner) push records into
// a bounded queue and never wait; a thread with its own SQLite connection drains it in batches,
// one transaction per batch, and runs the tiered downsampling:
//
//   region_pass (per pass, kept kRawDays)  -> region_daily (kept kDailyDays) -> region_monthly
//   sector_event (kept kEventDays)         -> event_daily
//
// so the database stays bounded however long the device lives.

#include "remapfs/core/clock.hpp"
#include "remapfs/db/records.hpp"
#include "remapfs/remap/events.hpp"

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
class HistoryStore;
}

namespace remapfs::health {

// The records it writes live with the database (db/records.hpp); here by their old names.
using db::bucket_of;
using db::EventKind;
using db::kBuckets;
using db::kBucketUpperUs;
using db::kDailyDays;
using db::kEventDays;
using db::kRawDays;
using db::PassRecord;
using db::RegionStats;
using db::ScanCheckpoint;
using db::ScanConfig;
using db::SectorEvent;
using db::Source;
using remap::current_source;
using remap::EventSink;
using remap::ScopedSource;
using remap::TeeSink;

// Scanner reads differ in size (64 KiB while users are busy, sectors_per_scan when idle):
// reads up to 1 MiB are classed by their latency as it is, larger ones per 1 MiB, so a 16 MiB
// read is not "slow" for being large.
std::int64_t normalised_us(std::int64_t us, std::uint64_t bytes);

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
    std::unique_ptr<db::HistoryStore> store_;
    std::mutex write_mutex_;  // one writer of the store at a time (thread or flush())
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
