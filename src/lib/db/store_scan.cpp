// db::Store, the scanner's part: its settings, position and passes, and the mount log.

#include "remapfs/db/store.hpp"

namespace remapfs::db {

ScanConfig Store::scan_config() {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT enabled, interval_s, sectors_per_scan, intensity, health_threshold, staggered, paused "
                       "FROM scan_config WHERE id = 1");
    auto u = s.use();
    ScanConfig c;
    if (!u.next()) return c;
    c.enabled = u.get_int(0) != 0;
    c.interval_s = static_cast<std::uint32_t>(u.get_int(1));
    c.sectors_per_scan = static_cast<std::uint32_t>(u.get_int(2));
    c.intensity = static_cast<std::uint32_t>(u.get_int(3));
    c.health_threshold = static_cast<std::uint32_t>(u.get_int(4));
    c.staggered = u.get_int(5) != 0;
    c.paused = u.get_int(6) != 0;
    return c;
}

void Store::save_scan_config(const ScanConfig& c) {
    auto guard = lock();
    Transaction txn(conn_);
    Statement& s = conn_.prepared("UPDATE scan_config SET enabled = ?, interval_s = ?, sectors_per_scan = ?, intensity = ?, "
                       "health_threshold = ?, staggered = ?, paused = ? WHERE id = 1");
    s.use()(std::int64_t{c.enabled})(std::int64_t{c.interval_s})(std::int64_t{c.sectors_per_scan})(
         std::int64_t{c.intensity})(std::int64_t{c.health_threshold})(std::int64_t{c.staggered})(std::int64_t{c.paused})
        .exec();
    txn.commit();
}

std::int64_t Store::log_mount_start(std::int64_t started, std::int64_t pid, std::string_view version,
                                   std::string_view mountpoint) {
    auto guard = lock();
    Transaction txn(conn_);
    Statement& s = conn_.prepared("INSERT INTO mount_log (started, pid, version, mountpoint) VALUES (?, ?, ?, ?)");
    s.use()(started)(pid)(version)(mountpoint).exec();
    const std::int64_t id = conn_.query_int("SELECT last_insert_rowid()");
    txn.commit();
    return id;
}

void Store::log_mount_stop(std::int64_t id, std::int64_t stopped) {
    auto guard = lock();
    Transaction txn(conn_);
    Statement& s = conn_.prepared("UPDATE mount_log SET stopped = ? WHERE id = ?");
    s.use()(stopped)(id).exec();
    txn.commit();
}

MountSummary Store::mount_summary() {
    auto guard = lock();
    MountSummary m;
    {
        Statement& n = conn_.prepared("SELECT count(*), count(*) - count(stopped) FROM mount_log");
        auto u = n.use();
        if (u.next()) {  // an aggregate: always one row
            m.count = static_cast<std::uint64_t>(u.get_int(0));
            m.not_stopped = static_cast<std::uint64_t>(u.get_int(1));
        }
    }
    Statement& s = conn_.prepared("SELECT id, started, stopped, pid, version, mountpoint FROM mount_log ORDER BY id DESC LIMIT 1");
    auto u = s.use();
    if (u.next()) {
        MountRow r;
        r.id = u.get_int(0);
        r.started = u.get_int(1);
        if (!u.is_null(2)) r.stopped = u.get_int(2);
        r.pid = u.get_int(3);
        r.version = u.get_str(4);
        r.mountpoint = u.get_str(5);
        m.last = std::move(r);
    }
    return m;
}

ScanCheckpoint Store::scan_state() {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT pass, cursor, pass_started, total_scans, warnings_issued FROM scan_state WHERE id = 1");
    auto u = s.use();
    ScanCheckpoint c;
    if (!u.next()) return c;
    c.pass = static_cast<std::uint64_t>(u.get_int(0));
    c.cursor = static_cast<std::uint64_t>(u.get_int(1));
    c.pass_started = u.get_int(2);
    c.total_scans = static_cast<std::uint64_t>(u.get_int(3));
    c.warnings_issued = static_cast<std::uint64_t>(u.get_int(4));
    return c;
}

PassRecord Store::scan_pass(std::uint64_t pass) {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT pass, started, coalesce(finished, 0), sectors, errors, slow, max_us FROM scan_pass "
                       "WHERE pass = ?");
    auto u = s.use();
    u(static_cast<std::int64_t>(pass));
    PassRecord p;
    if (!u.next()) return p;
    p.pass = static_cast<std::uint64_t>(u.get_int(0));
    p.started = u.get_int(1);
    p.finished = u.get_int(2);
    p.sectors = static_cast<std::uint64_t>(u.get_int(3));
    p.errors = static_cast<std::uint64_t>(u.get_int(4));
    p.slow = static_cast<std::uint64_t>(u.get_int(5));
    p.max_us = static_cast<std::uint64_t>(u.get_int(6));
    return p;
}

}  // namespace remapfs::db
