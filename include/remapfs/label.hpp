#pragma once
// The spare label: 4 KiB at the start of the spare area that ties the backing (or spare file)
// to its database. Written once, on first use; checked at every open, so a database is never
// applied to a backing it was not made for, and a fresh database is never silently started on
// a backing that already has remaps recorded elsewhere.

#include "remapfs/geometry.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace remapfs {

struct Label {
    std::string uuid;
    std::uint32_t sector_size = 0;
    std::uint64_t image_sectors = 0;
    std::uint64_t spare_slots = 0;

    std::array<std::byte, 4096> encode() const;
    // nullopt: no label (blank or foreign data); a label with a bad checksum is also nullopt.
    static std::optional<Label> decode(const std::array<std::byte, 4096>& raw);
};

}  // namespace remapfs
