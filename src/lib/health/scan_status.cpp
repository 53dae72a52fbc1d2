#include "remapfs/health/scan_status.hpp"

#include <algorithm>

namespace remapfs::health {

const char* to_string(ScanState s) {
    switch (s) {
    case ScanState::disabled: return "disabled";
    case ScanState::paused: return "paused";
    case ScanState::rescanning: return "rescanning";
    case ScanState::scanning: return "scanning";
    case ScanState::waiting: return "waiting";
    case ScanState::no_daemon: return "stopped (no daemon)";
    }
    return "?";
}

ScanStatus stored_scan_status(const db::ScanConfig& c, const db::ScanCheckpoint& st, const ScanOrder& order) {
    ScanStatus s;
    const bool in_pass = st.pass_started != 0 && st.cursor < order.positions();
    s.state = !c.enabled ? ScanState::disabled : c.paused ? ScanState::paused : ScanState::no_daemon;
    s.pass = st.pass;
    s.positions = order.positions();
    s.position = std::min(st.cursor, s.positions);
    s.percent = in_pass ? 100.0 * static_cast<double>(st.cursor) / static_cast<double>(s.positions) : 100.0;
    s.total_scans = st.total_scans;
    s.warnings_issued = st.warnings_issued;
    s.config = c;
    if (!in_pass && st.pass_started) s.next_pass_at = st.pass_started + c.interval_s;
    return s;
}

}  // namespace remapfs::health
