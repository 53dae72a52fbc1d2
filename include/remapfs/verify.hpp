#pragma once
// Read-check a range of image sectors through the remap layer and report the unreadable ones.

#include "remapfs/block/layer.hpp"
#include "remapfs/units.hpp"

#include <vector>

namespace remapfs {

struct VerifyReport {
    Lba start;
    SectorCount count;
    std::uint64_t checked = 0;
    std::vector<Lba> unreadable;
};

// Reads in 1 MiB chunks; a chunk that fails is re-read sector by sector to name the bad ones.
VerifyReport verify_sectors(block::BlockLayer& image, SectorSize ss, Lba start, SectorCount count);

}  // namespace remapfs
