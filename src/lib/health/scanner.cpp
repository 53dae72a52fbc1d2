#include "remapfs/health/scanner.hpp"

#include "remapfs/core/log.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace remapfs::health {
Scanner::Scanner(remap::RemapLayer& layer, const Geometry& g, HistoryWriter& history, block::Activity& activity,
                 Clock& clock, ScanConfig config, ScanCheckpoint resume, PassRecord resume_pass, Persist persist,
                 bool cache_bypassed)
    : layer_(layer),
      geometry_(g),
      history_(history),
      activity_(activity),
      clock_(clock),
      persist_(std::move(persist)),
      cache_bypassed_(cache_bypassed),
      config_(config),
      state_(resume) {
    const ScanOrder order = ScanOrder::of(g.sector_size, g.image_sectors, config.staggered);
    // A pass that was under way when we stopped goes on where its checkpoint left it.
    in_pass_ = state_.pass_started != 0 && state_.cursor < order.positions();
    if (in_pass_) {
        pass_reads_.assign(regions(), 0);
        // What the pass found before the restart stays counted.
        pass_ = resume_pass.pass == state_.pass ? resume_pass : PassRecord{state_.pass, state_.pass_started, 0, 0, 0, 0, 0};
        pass_.finished = 0;
        pass_started_us_ = clock_.now_us();
        log::info("scanner: resuming pass {} at position {} of {}", state_.pass, state_.cursor, order.positions());
    }
}

Scanner::~Scanner() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
    std::lock_guard lock(mutex_);
    if (in_pass_) checkpoint_locked(clock_.now_us());
}

void Scanner::begin_pass(std::int64_t now_s) {
    state_.pass += 1;
    state_.cursor = 0;
    state_.pass_started = now_s;
    pass_ = {state_.pass, now_s, 0, 0, 0, 0, 0};
    pass_started_us_ = clock_.now_us();
    pass_bytes_ = 0;
    pass_reads_.assign(regions(), 0);
    suspects_.clear();
    in_pass_ = true;
    start_requested_ = false;
    history_.checkpoint(HistoryWriter::Checkpoint{{}, pass_, state_});
    log::info("scanner: pass {} started", state_.pass);
}

void Scanner::finish_pass(std::int64_t now_s) {
    pass_.finished = now_s;
    state_.total_scans += 1;
    in_pass_ = false;
    checkpoint_locked(clock_.now_us());
    log::info("scanner: pass {} finished: {} sectors, {} errors, {} slow reads", pass_.pass, pass_.sectors,
              pass_.errors, pass_.slow);
}

void Scanner::checkpoint_locked(std::int64_t now_us) {
    const std::int64_t now_s = now_us / 1'000'000;
    HistoryWriter::Checkpoint c;
    for (auto& [region, r] : unflushed_) {
        r.t = now_s;
        c.regions.push_back(r);
        // Health threshold: warn once per region and pass when its score drops below it. A
        // region with no error and no slow read scores 1000, never below the threshold.
        auto it = suspects_.find(region);
        if (it == suspects_.end() || it->second.warned) continue;
        Suspect& sus = it->second;
        const std::uint64_t reads = region < pass_reads_.size() ? pass_reads_[region] : 0;
        const int score = region_score(reads, sus.errors, sus.slow, sus.very_slow);
        if (score < static_cast<int>(config_.health_threshold)) {
            sus.warned = true;
            ++state_.warnings_issued;
            const std::uint64_t first = region * kRegionBytes;
            log::warning("health: region {} (image bytes {}..{}) scores {} in pass {}, below the threshold {}: {} "
                         "errors, {} of {} reads slower than 16.7 ms",
                         region, first, first + kRegionBytes - 1, score, pass_.pass, config_.health_threshold,
                         sus.errors, sus.slow + sus.very_slow, reads);
        }
    }
    unflushed_.clear();
    if (!in_pass_) {  // the pass is over: its per-region counts are in the history now
        std::vector<std::uint32_t>().swap(pass_reads_);
        std::unordered_map<std::uint64_t, Suspect>().swap(suspects_);
    }
    c.pass = pass_;
    c.state = state_;
    history_.checkpoint(std::move(c));
    last_checkpoint_us_ = now_us;
}

void Scanner::observe(Lba first, SectorCount n, std::int64_t raw_us, bool ok, bool in_pass) {
    if (!in_pass) return;  // neighbourhood rescans find errors (events), not pass statistics
    const std::int64_t us = normalised_us(raw_us, n.v * geometry_.sector_size.bytes());
    std::lock_guard lock(mutex_);
    const std::uint64_t region = first.v * geometry_.sector_size.bytes() / kRegionBytes;
    RegionStats& r = unflushed_[region];
    r.pass = pass_.pass;
    r.region = region;
    r.sectors += n.v;
    if (ok) r.add(us);
    else ++r.errors;
    if (ok && region < pass_reads_.size()) ++pass_reads_[region];
    const int bucket = ok ? bucket_of(us) : -1;
    if (!ok || bucket >= 5) {
        Suspect& sus = suspects_[region];
        if (!ok) ++sus.errors;
        else if (bucket == kBuckets - 1) ++sus.very_slow;
        else ++sus.slow;
    }
    if (!ok) pass_.errors += n.v;
    else if (bucket_of(us) == kBuckets - 1) ++pass_.slow;
    if (ok) pass_.max_us = std::max<std::uint64_t>(pass_.max_us, static_cast<std::uint64_t>(us));
}

std::size_t Scanner::regions() const {
    return static_cast<std::size_t>((geometry_.image_bytes().v + kRegionBytes - 1) / kRegionBytes);
}

std::int64_t Scanner::step() {
    ScanConfig cfg;
    const std::int64_t now_us = clock_.now_us();
    std::optional<std::pair<Lba, SectorCount>> rescan;
    std::uint64_t pos = 0;
    {
        std::lock_guard lock(mutex_);
        cfg = config_;
        if (!cfg.enabled || cfg.paused) return 1'000'000;
        if (!rescans_.empty()) {
            rescan = rescans_.front();
        } else if (!in_pass_) {
            const std::int64_t next = state_.pass_started + cfg.interval_s;
            if (state_.pass_started != 0 && !start_requested_ && now_us / 1'000'000 < next)
                return std::min<std::int64_t>((next - now_us / 1'000'000) * 1'000'000, 60'000'000);
            begin_pass(now_us / 1'000'000);
        }
        pos = state_.cursor;
    }
    // Never outrun the history: its queue holds what the checkpoints have not yet written.
    if (history_.backlog_regions() > kMaxHistoryBacklog) return 100'000;
    const SectorSize ss = geometry_.sector_size;
    const ScanOrder order = ScanOrder::of(ss, geometry_.image_sectors, cfg.staggered);
    const Pacer::Decision d = pacer_.next(activity_.sample(), now_us, ss, cfg.sectors_per_scan);
    if (d.wait_us > 0) return d.wait_us;

    Lba first;
    std::uint64_t n = 0;
    if (rescan) {
        first = rescan->first;
        n = std::min<std::uint64_t>(rescan->second.v, d.sectors.v);
    } else {
        const std::uint64_t run = order.run_at(pos);
        auto l = order.lba_at(pos);
        if (!l) {  // a hole in the staggered order past the image: skip it
            std::lock_guard lock(mutex_);
            state_.cursor += run;
            if (state_.cursor >= order.positions()) finish_pass(now_us / 1'000'000);
            return 0;
        }
        first = *l;
        n = std::min<std::uint64_t>(run, d.sectors.v);
    }
    if (!buf_.reserve(n * ss.bytes())) return 1'000'000;
    const std::int64_t started = clock_.now_us();
    {
        const bool in_pass = !rescan;
        auto read = [this, in_pass](Lba f, std::uint64_t count, std::byte* into) {
            ScopedSource src(Source::scan);
            (void)layer_.scan_read(f, SectorCount{count}, into,
                                   [&](Lba l, SectorCount c, std::int64_t us, bool ok) { observe(l, c, us, ok, in_pass); });
        };
        if (d.idle && n >= 2 && idle_depth_ > 1) {
            // Idle: two reads in flight, each half of the chunk.
            const std::uint64_t half = n / 2;
            second_.start([&] { read(first, half, buf_.data()); });
            read(first + SectorCount{half}, n - half, buf_.data() + half * ss.bytes());
            second_.wait();
        } else {
            read(first, n, buf_.data());
        }
    }
    const std::int64_t end_us = clock_.now_us();
    pacer_.done(n * ss.bytes(), started, d.idle, cfg.intensity);

    std::lock_guard lock(mutex_);
    if (rescan) {
        rescanned_ += n;
        auto& front = rescans_.front();
        front.first = front.first + SectorCount{n};
        front.second = SectorCount{front.second.v - n};
        if (front.second.v == 0) rescans_.pop_front();
        return 0;
    }
    state_.cursor += n;
    pass_.sectors += n;
    pass_bytes_ += n * ss.bytes();
    if (state_.cursor >= order.positions()) finish_pass(end_us / 1'000'000);
    else if (end_us - last_checkpoint_us_ >= kCheckpointEveryUs || unflushed_.size() >= kMaxUnflushedRegions)
        checkpoint_locked(end_us);
    return 0;
}

void Scanner::event(SectorEvent e) {
    if (e.kind != EventKind::read_error && e.kind != EventKind::write_error) return;
    // Errors cluster: read the ~10 MB around a new one right away, unless that is queued.
    const std::uint64_t half = kNeighbourhoodBytes / 2 / geometry_.sector_size.bytes();
    const std::uint64_t lo = e.lba.v > half ? e.lba.v - half : 0;
    const std::uint64_t hi = std::min(geometry_.image_sectors.v, e.lba.v + half);
    {
        std::lock_guard lock(mutex_);
        for (const auto& [f, c] : rescans_)
            if (e.lba.v >= f.v && e.lba.v < f.v + c.v) return;
        if (rescans_.size() >= 64) return;
        rescans_.emplace_back(Lba{lo}, SectorCount{hi - lo});
    }
    wake();
}

void Scanner::wake() {
    {
        std::lock_guard lock(mutex_);
        ++wake_;
    }
    cv_.notify_all();
}

void Scanner::configure(const ScanConfig& c) {
    persist_(c);
    {
        std::lock_guard lock(mutex_);
        if (c.staggered != config_.staggered && in_pass_) {
            // The order changed: positions mean something else now; start the pass over.
            in_pass_ = false;
            start_requested_ = true;
        }
        config_ = c;
    }
    wake();
}

ScanConfig Scanner::config() const {
    std::lock_guard lock(mutex_);
    return config_;
}

void Scanner::start_pass_now() {
    ScanConfig c = config();
    c.enabled = true;
    c.paused = false;
    persist_(c);
    {
        std::lock_guard lock(mutex_);
        config_ = c;
        if (!in_pass_) start_requested_ = true;
    }
    wake();
}

void Scanner::stop() {
    ScanConfig c = config();
    c.enabled = false;
    persist_(c);
    {
        std::lock_guard lock(mutex_);
        config_ = c;
        if (in_pass_) {
            // Abandoned: the pass keeps finished = NULL; the next start begins a new one.
            state_.cursor = ScanOrder::of(geometry_.sector_size, geometry_.image_sectors, c.staggered).positions();
            in_pass_ = false;
            checkpoint_locked(clock_.now_us());
        }
    }
    wake();
}

ScanStatus Scanner::status() const {
    std::lock_guard lock(mutex_);
    const ScanOrder order = ScanOrder::of(geometry_.sector_size, geometry_.image_sectors, config_.staggered);
    // What the stored state says, and then what only the running scanner knows.
    ScanStatus s = stored_scan_status(config_, state_, order);
    s.state = !config_.enabled  ? ScanState::disabled
              : config_.paused  ? ScanState::paused
              : !rescans_.empty() ? ScanState::rescanning
              : in_pass_        ? ScanState::scanning
                                : ScanState::waiting;
    s.percent = in_pass_ ? 100.0 * static_cast<double>(s.position) / static_cast<double>(s.positions) : 100.0;
    s.next_pass_at = !in_pass_ && state_.pass_started ? std::optional<std::int64_t>(state_.pass_started + config_.interval_s)
                                                      : std::nullopt;
    const double elapsed = static_cast<double>(std::max<std::int64_t>(1, clock_.now_us() - pass_started_us_)) / 1e6;
    const double rate = in_pass_ ? static_cast<double>(pass_bytes_) / elapsed : 0.0;
    ScanStatus::Live live{static_cast<std::uint64_t>(rate), pass_.errors, pass_.slow, rescanned_, cache_bypassed_, {}};
    if (in_pass_ && rate > 0)
        live.eta_s = static_cast<std::int64_t>(static_cast<double>(s.positions - s.position) *
                                               geometry_.sector_size.bytes() / rate);
    s.live = live;
    return s;
}

void Scanner::run(std::stop_token st) {
    while (!st.stop_requested()) {
        const std::int64_t wait_us = step();
        if (wait_us <= 0) continue;
        std::unique_lock lock(mutex_);
        const std::uint64_t seen = wake_;
        cv_.wait_for(lock, st, std::chrono::microseconds(wait_us), [&] { return wake_ != seen; });
    }
}

void Scanner::start() {
    thread_ = std::jthread([this](std::stop_token st) {
        sys::name_this_thread("rfs-scanner");
        run(st);
    });
}

}  // namespace remapfs::health
