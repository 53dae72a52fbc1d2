#include "remapfs/db/report.hpp"

namespace remapfs::db {

std::uint64_t each_region_of_latest_pass(Connection& c, const std::function<void(const RegionStats&)>& f) {
    const std::int64_t pass = c.query_int("SELECT coalesce(max(pass), 0) FROM region_pass");
    Statement q(c, "SELECT region, b0, b1, b2, b3, b4, b5, b6, b7, errors, sum_us, max_us FROM region_pass "
                   "WHERE pass = ?");
    auto u = q.use();
    u(pass);
    while (u.next()) {
        RegionStats r;
        r.pass = static_cast<std::uint64_t>(pass);
        r.region = static_cast<std::uint64_t>(u.get_int(0));
        for (int i = 0; i < kBuckets; ++i) r.buckets[static_cast<std::size_t>(i)] = static_cast<std::uint64_t>(u.get_int(1 + i));
        r.errors = static_cast<std::uint64_t>(u.get_int(9));
        r.sum_us = static_cast<std::uint64_t>(u.get_int(10));
        r.max_us = static_cast<std::uint64_t>(u.get_int(11));
        f(r);
    }
    return static_cast<std::uint64_t>(pass);
}

std::vector<std::pair<std::string, std::int64_t>> event_counts_last_day(Connection& c) {
    const std::int64_t day_ago = c.query_int("SELECT coalesce(max(t), 0) FROM sector_event") - 86400;
    Statement ev(c, "SELECT kind, count(*) FROM sector_event WHERE t >= ? GROUP BY kind");
    std::vector<std::pair<std::string, std::int64_t>> out;
    auto u = ev.use();
    u(day_ago);
    while (u.next()) out.emplace_back(u.get_str(0), u.get_int(1));
    return out;
}

std::int64_t pending_count(Connection& c) { return c.query_int("SELECT count(*) FROM pending"); }
std::int64_t remap_count(Connection& c) { return c.query_int("SELECT count(*) FROM remap"); }

}  // namespace remapfs::db
