#pragma once
// Read-check a range of image sectors through the remap layer and report the unreadable ones.

#include "remapfs/block/layer.hpp"
#include "remapfs/core/units.hpp"

#include <stop_token>
#include <vector>

namespace remapfs {

struct VerifyReport {
    Lba start;
    SectorCount count;
    std::uint64_t checked = 0;
    std::vector<Lba> unreadable;
    bool stopped = false;  // `stop` was requested before every sector was checked
};

// Reads in 1 MiB chunks; a chunk that fails is re-read sector by sector to name the bad ones.
// Looks at `stop` before each chunk: a daemon shutting down must not wait for a whole device.
VerifyReport verify_sectors(block::BlockLayer& image, SectorSize ss, Lba start, SectorCount count,
                            std::stop_token stop = {});

}  // namespace remapfs
