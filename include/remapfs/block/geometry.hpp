#pragma once
// Where everything lives. Below the remap layer there is one *physical* address space:
//
//   [0, image)                      the image's sectors, 1:1 on the backing
//   [image, + label area)           the spare label (identity; layout 2: two copies, A and B,
//                                   carrying the commit generation)
//   [.., + header area)             layout 2: one 32-byte header per slot naming what it holds
//   [.., + slots * ss)              spare slots
//
// With a tail spare this is exactly the backing file; with `spare=PATH` the spare part maps to
// that file instead (see block::Backing). Nothing else ever shares these ranges.
//
// Layout 1 (label, then slots) is what remapfs 0.1 made; devices made with it keep it.

#include "remapfs/core/units.hpp"

namespace remapfs {

inline constexpr ByteCount kLabelBytes{4096};     // one copy of the label
inline constexpr std::uint32_t kSlotHeaderBytes = 32;
inline constexpr std::uint32_t kHeaderBlockBytes = 4096;
inline constexpr std::uint32_t kHeadersPerBlock = kHeaderBlockBytes / kSlotHeaderBytes;
inline constexpr std::uint32_t kCurrentLayout = 2;

struct Geometry {
    SectorSize sector_size{4096};
    SectorCount image_sectors;
    SectorCount spare_slots;
    std::uint32_t layout = kCurrentLayout;

    bool self_describing() const { return layout >= 2; }
    ByteCount image_bytes() const { return sector_size.bytes(image_sectors); }
    ByteCount label_area_bytes() const { return ByteCount{self_describing() ? 2 * kLabelBytes.v : kLabelBytes.v}; }
    std::uint64_t header_blocks() const {
        return self_describing() ? (spare_slots.v + kHeadersPerBlock - 1) / kHeadersPerBlock : 0;
    }
    ByteCount header_area_bytes() const { return ByteCount{header_blocks() * kHeaderBlockBytes}; }
    // copy 0 (A) or 1 (B); layout 1 has only copy 0.
    ByteOffset label_offset(unsigned copy = 0) const { return ByteOffset{image_bytes().v + copy * kLabelBytes.v}; }
    ByteOffset header_block_offset(std::uint64_t block) const {
        return ByteOffset{image_bytes().v + label_area_bytes().v + block * kHeaderBlockBytes};
    }
    ByteCount spare_region_bytes() const {
        return label_area_bytes() + header_area_bytes() + sector_size.bytes(spare_slots);
    }
    ByteCount physical_bytes() const { return image_bytes() + spare_region_bytes(); }
    ByteOffset data_offset(Lba l) const { return sector_size.offset(l); }
    ByteOffset slot_offset(SpareSlot s) const {
        return ByteOffset{image_bytes().v + label_area_bytes().v + header_area_bytes().v + s.v * sector_size.bytes()};
    }
    bool contains(Lba l) const { return l.v < image_sectors.v; }
    bool contains(SpareSlot s) const { return s.v < spare_slots.v; }

    // The most slots of `ss` bytes whose spare region fits in `bytes` (0 if not even one).
    static SectorCount slots_fitting(ByteCount bytes, SectorSize ss, std::uint32_t layout = kCurrentLayout) {
        Geometry g{ss, SectorCount{0}, SectorCount{0}, layout};
        if (bytes.v < g.label_area_bytes().v) return SectorCount{0};
        const std::uint64_t room = bytes.v - g.label_area_bytes().v;
        // Every kHeadersPerBlock slots take one header block more.
        std::uint64_t n = layout >= 2 ? room * kHeadersPerBlock / (std::uint64_t{kHeadersPerBlock} * ss.bytes() + kHeaderBlockBytes)
                                      : room / ss.bytes();
        auto fits = [&](std::uint64_t slots) {
            g.spare_slots = SectorCount{slots};
            return g.spare_region_bytes().v <= bytes.v;
        };
        while (n > 0 && !fits(n)) --n;  // the estimate is off by a header block at most
        while (fits(n + 1)) ++n;
        return SectorCount{n};
    }
};

}  // namespace remapfs
