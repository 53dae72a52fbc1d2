// Instance: the daemon's services (the mount log, the history writer, the scanner, the
// remapper's worker), started after the daemon has detached, and a clean close.

#include "remapfs/instance/instance.hpp"

#include "remapfs_config.h"

#include "remapfs/core/log.hpp"

#include <unistd.h>

#include <ctime>

namespace remapfs {

void Instance::start_services(bool scanner, std::string_view mountpoint) {
    // A read-only mount writes nothing to its database: no history, no scanner.
    if (read_only_) return stack_.remap->remapper().start_worker();
    // Written before anything is served, and not only for the operator: the first write after
    // SQLite opens a database starts its WAL, and that syncs the WAL header (a device cache
    // flush). Here it costs the mount a few milliseconds; left to the scanner's first
    // checkpoint it landed in the middle of user I/O and stalled it (400 ms on the bench VM).
    mount_log_id_ = store_->log_mount_start(std::time(nullptr), ::getpid(), REMAPFS_VERSION, mountpoint);
    history_ = std::make_unique<health::HistoryWriter>(db_path_, *clock_);
    if (scanner) {
        auto persist = [this](const health::ScanConfig& c) { store_->save_scan_config(c); };
        health::ScanConfig cfg;
        health::ScanCheckpoint state;
        health::PassRecord pass;
        cfg = store_->scan_config();
        state = store_->scan_state();
        pass = store_->scan_pass(state.pass);
        scanner_ = std::make_unique<health::Scanner>(*stack_.remap, geometry_, *history_,
                                                     *activity_, *clock_, cfg, state, pass, persist, direct_);
    }
    tee_ = std::make_unique<health::TeeSink>(*history_, scanner_.get());
    stack_.remap->remapper().set_event_sink(tee_.get());
    history_->start();
    stack_.remap->remapper().start_worker();
    if (scanner_) scanner_->start();
}

Instance::~Instance() {
    // Stop the producers before the history they write to.
    scanner_.reset();
    if (stack_.remap) {
        stack_.remap->remapper().stop_worker();
        stack_.remap->remapper().set_event_sink(nullptr);
    }
    tee_.reset();
    history_.reset();
    if (!store_ || read_only_ || !stack_.remap) return;
    try {
        if (mount_log_id_) store_->log_mount_stop(*mount_log_id_, std::time(nullptr));
        // Clean only if everything acknowledged is on the device and the spare's own record
        // is in step with the table; otherwise the next open checks the slot headers.
        if (stack_.top->flush() && !stack_.remap->remapper().records_behind()) store_->set_dirty(false);
    } catch (const std::exception& e) {
        log::warning("cannot record the end of this session in {}: {}", db_path_, e.what());
    }
}

}  // namespace remapfs
