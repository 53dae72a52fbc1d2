#pragma once
// The background scanner: really reads the surface, sector by sector, through the same stack
// as user I/O below the remap layer (remapped sectors are read on their spare slots), with the
// same error handling (retries, pending, pre-emptive remaps). Paced by Pacer, checkpointed every
// few seconds so a restart resumes, recording latency classes per region and pass in the
// history. Errors found anywhere trigger an immediate rescan of their neighbourhood, because
// latent sector errors cluster (P(another within 10 MB) = 0.5, Bairavasundaram 2007).

#include "remapfs/remap/remap_layer.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/health/history.hpp"
#include "remapfs/health/pacer.hpp"
#include "remapfs/health/scan_order.hpp"
#include "remapfs/health/scan_status.hpp"
#include "remapfs/health/score.hpp"
#include "remapfs/health/second_reader.hpp"
#include "remapfs/db/records.hpp"
#include "remapfs/sys/io_buffer.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>
#include <memory>
#include <mutex>
#include <thread>

namespace remapfs::health {

inline constexpr std::uint64_t kNeighbourhoodBytes = 10ull << 20;
inline constexpr std::int64_t kCheckpointEveryUs = 5'000'000;
// A checkpoint comes sooner once this many regions have rows waiting: the staggered order on a
// fast (or sparse) backing touches a new region every 1 MiB, and a 16 TiB image has 131072
// regions, so without a cap one checkpoint could carry the whole device.
inline constexpr std::size_t kMaxUnflushedRegions = 4096;
// The scanner waits while the history writer has more than this many region rows queued.
inline constexpr std::size_t kMaxHistoryBacklog = 4 * kMaxUnflushedRegions;

class Scanner final : public EventSink {
public:
    using Persist = std::function<void(const ScanConfig&)>;
    Scanner(remap::RemapLayer& layer, const Geometry& g, HistoryWriter& history, block::Activity& activity, Clock& clock,
            ScanConfig config, ScanCheckpoint resume, PassRecord resume_pass, Persist persist, bool cache_bypassed);
    ~Scanner() override;

    void start();  // the thread; step() is also callable directly (tests)
    // Reads in flight while idle: 2 (default), or 1 where a second thread only costs (a
    // simulation on an injected clock).
    void set_idle_depth(int d) { idle_depth_ = d; }
    // Does one unit of work; returns how long to wait before the next (0: go on at once).
    std::int64_t step();

    // Control. Each persists the new configuration first.
    void configure(const ScanConfig& c);
    ScanConfig config() const;
    void start_pass_now();  // `scan start`: enable and begin a pass now
    void stop();            // `scan stop`: abandon the pass and disable
    ScanStatus status() const;

    // Errors found by anyone: rescan their neighbourhood.
    void event(SectorEvent e) override;

private:
    void begin_pass(std::int64_t now_s);
    void finish_pass(std::int64_t now_s);
    void checkpoint_locked(std::int64_t now_us);
    std::size_t regions() const;  // of the image, kRegionBytes each
    void observe(Lba first, SectorCount n, std::int64_t us, bool ok, bool in_pass);
    void run(std::stop_token st);
    void wake();

    remap::RemapLayer& layer_;
    Geometry geometry_;
    HistoryWriter& history_;
    block::Activity& activity_;
    Clock& clock_;
    Persist persist_;
    bool cache_bypassed_;
    Pacer pacer_;
    SecondReader second_;
    int idle_depth_ = 2;
    sys::IoBuffer buf_;  // O_DIRECT reads land here

    mutable std::mutex mutex_;  // everything below; leaf lock (never held across I/O)
    std::condition_variable_any cv_;
    std::uint64_t wake_ = 0;  // bumped by control calls and new errors to cut a wait short
    ScanConfig config_;
    ScanCheckpoint state_;
    bool in_pass_ = false;
    bool start_requested_ = false;
    PassRecord pass_;
    std::deque<std::pair<Lba, SectorCount>> rescans_;
    std::int64_t last_checkpoint_us_ = 0;
    std::int64_t pass_started_us_ = 0;
    std::uint64_t pass_bytes_ = 0;
    std::uint64_t rescanned_ = 0;
    std::map<std::uint64_t, RegionStats> unflushed_;  // since the last checkpoint (<= kMaxUnflushedRegions)
    // This pass so far, for the health threshold. Only a region with an error or a slow read can
    // score below 1000, so only those keep counts; every region keeps just its read count (4
    // bytes per 128 MiB region: 512 KiB for 16 TiB), which the score needs as the denominator.
    struct Suspect {
        std::uint64_t errors = 0, slow = 0, very_slow = 0;
        bool warned = false;
    };
    std::vector<std::uint32_t> pass_reads_;               // by region
    std::unordered_map<std::uint64_t, Suspect> suspects_;  // by region
    std::jthread thread_;
};

}  // namespace remapfs::health
