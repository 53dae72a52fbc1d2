#pragma once
// Where everything lives. Below the remap layer there is one *physical* address space:
//
//   [0, image)                      the image's sectors, 1:1 on the backing
//   [image, image + label)          the spare label (identity, checked at every open)
//   [image + label, ... + slots*ss) spare slots
//
// With a tail spare this is exactly the backing file; with `spare=PATH` the spare part maps to
// that file instead (see block::Backing). Nothing else ever shares these ranges.

#include "remapfs/units.hpp"

namespace remapfs {

inline constexpr ByteCount kLabelBytes{4096};

struct Geometry {
    SectorSize sector_size{4096};
    SectorCount image_sectors;
    SectorCount spare_slots;

    ByteCount image_bytes() const { return sector_size.bytes(image_sectors); }
    ByteOffset label_offset() const { return ByteOffset{image_bytes().v}; }
    ByteCount spare_region_bytes() const { return kLabelBytes + sector_size.bytes(spare_slots); }
    ByteCount physical_bytes() const { return image_bytes() + spare_region_bytes(); }
    ByteOffset data_offset(Lba l) const { return sector_size.offset(l); }
    ByteOffset slot_offset(SpareSlot s) const {
        return ByteOffset{image_bytes().v + kLabelBytes.v + s.v * sector_size.bytes()};
    }
    bool contains(Lba l) const { return l.v < image_sectors.v; }
    bool contains(SpareSlot s) const { return s.v < spare_slots.v; }
};

}  // namespace remapfs
