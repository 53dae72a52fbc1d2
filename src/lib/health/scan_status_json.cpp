#include "remapfs/health/scan_status_json.hpp"

namespace remapfs::health {

nlohmann::json to_json(const ScanStatus& s) {
    const db::ScanConfig& c = s.config;
    nlohmann::json j = {
        {"state", to_string(s.state)},
        {"pass", s.pass},
        {"position", s.position},
        {"positions", s.positions},
        {"percent", s.percent},
        {"total_scans", s.total_scans},
        {"warnings_issued", s.warnings_issued},
        {"config",
         {{"enabled", c.enabled}, {"interval", c.interval_s}, {"sectors_per_scan", c.sectors_per_scan},
          {"intensity", c.intensity}, {"health_threshold", c.health_threshold}, {"staggered", c.staggered},
          {"paused", c.paused}}},
    };
    if (s.next_pass_at) j["next_pass_at"] = *s.next_pass_at;
    if (s.live) {
        j["rate_bytes_per_s"] = s.live->rate_bytes_per_s;
        j["pass_errors"] = s.live->pass_errors;
        j["pass_slow_reads"] = s.live->pass_slow_reads;
        j["rescanned_sectors"] = s.live->rescanned_sectors;
        j["cache_bypassed"] = s.live->cache_bypassed;
        if (s.live->eta_s) j["eta_s"] = *s.live->eta_s;
    }
    return j;
}

}  // namespace remapfs::health
