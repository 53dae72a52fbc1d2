#include "remapfs/health/scan_order.hpp"

#include <algorithm>

namespace remapfs::health {

std::uint64_t ScanOrder::positions() const {
    if (!staggered) return image.v;
    const std::uint64_t regions = (image.v + region.v - 1) / region.v;
    return regions * region.v;
}

std::optional<Lba> ScanOrder::lba_at(std::uint64_t p) const {
    if (p >= positions()) return std::nullopt;
    if (!staggered) return Lba{p};
    // Segment k of the order visits segment k / R of region k % R: every region early.
    const std::uint64_t regions = (image.v + region.v - 1) / region.v;
    const std::uint64_t k = p / segment.v;
    const std::uint64_t within = p % segment.v;
    const std::uint64_t lba = (k % regions) * region.v + (k / regions) * segment.v + within;
    if (lba >= image.v) return std::nullopt;
    return Lba{lba};
}

std::uint64_t ScanOrder::run_at(std::uint64_t p) const {
    auto l = lba_at(p);
    if (!l) return staggered ? segment.v - p % segment.v : 0;  // skip the hole
    if (!staggered) return image.v - p;
    return std::min(segment.v - p % segment.v, image.v - l->v);
}

}  // namespace remapfs::health
