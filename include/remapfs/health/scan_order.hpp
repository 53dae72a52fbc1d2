#pragma once
// The order a pass visits the image in: position p (0..positions) to the LBA it reads, either
// sequential or staggered (segment k of every region before segment k+1, Schroeder, Damouras
// and Gill 2010: the same reads find errors sooner). Built in one place, from the geometry.

#include "remapfs/core/units.hpp"

#include <cstdint>
#include <optional>

namespace remapfs::health {

inline constexpr std::uint64_t kRegionBytes = 128ull << 20;  // history granularity
inline constexpr std::uint64_t kSegmentBytes = 1ull << 20;   // a staggered step

struct ScanOrder {
    SectorCount image;
    SectorCount region;   // sectors per kRegionBytes
    SectorCount segment;  // sectors per kSegmentBytes
    bool staggered = false;

    static ScanOrder of(SectorSize ss, SectorCount image, bool staggered) {
        return {image, SectorCount{kRegionBytes / ss.bytes()}, SectorCount{kSegmentBytes / ss.bytes()}, staggered};
    }
    std::uint64_t positions() const;
    // nullopt: p lies past the image in a partial last region (staggered only).
    std::optional<Lba> lba_at(std::uint64_t p) const;
    // Sectors from p that stay contiguous on the image (to the end of a segment or the image).
    std::uint64_t run_at(std::uint64_t p) const;
};

}  // namespace remapfs::health
