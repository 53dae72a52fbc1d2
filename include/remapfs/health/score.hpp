#pragma once
// A region's score for one pass, 0..1000: 1000 - 250 per unreadable sector - 1000 x the share of
// reads >= 50 ms - 500 x the share between 16.7 and 50 ms (latency classes of db/records.hpp).

#include "remapfs/db/records.hpp"

#include <cstdint>

namespace remapfs::health {

int region_score(const db::RegionStats& r);
// The same from the counts alone: reads that succeeded, errors, reads of 16.7-50 ms, >= 50 ms.
int region_score(std::uint64_t reads, std::uint64_t errors, std::uint64_t slow, std::uint64_t very_slow);

}  // namespace remapfs::health
