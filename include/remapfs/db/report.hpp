#pragma once
// What a health report reads (remapctl scan report): the regions of the latest pass, streamed so
// that a 16 TiB image's 131072 rows are never held at once, and the event counts of the last day.

#include "remapfs/db/records.hpp"
#include "remapfs/db/sqlite.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace remapfs::db {

// Calls f for every region row of the newest pass in region_pass; returns that pass (0: none).
std::uint64_t each_region_of_latest_pass(Connection& c, const std::function<void(const RegionStats&)>& f);
// (kind, count) of the sector events in the 24 hours up to the newest one.
std::vector<std::pair<std::string, std::int64_t>> event_counts_last_day(Connection& c);
std::int64_t pending_count(Connection& c);
std::int64_t remap_count(Connection& c);

}  // namespace remapfs::db
