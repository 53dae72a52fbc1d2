#pragma once
// The on-disk records that make a device self-describing.
//
// The label (4 KiB) ties a backing and its spare to their database: the device id, the role of
// the file it sits on, the layout, and (format 2) the commit generation of the remap table.
// Written on first use and, in layout 2, again after every committed change of the table, to
// whichever of its two copies is older, so a torn label write leaves the other one intact. A
// database older than the label's generation is a restored or rolled-back copy and is refused.
//
// A slot header (32 bytes, layout 2) says which sector a spare slot holds and from which
// generation on, so `remapctl recover` can rebuild a lost or stale table from the device alone.

#include "remapfs/block/geometry.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>

namespace remapfs {

struct Label {
    // Which file the label sits on: the backing's tail, or a separate spare. Format 1 labels
    // (remapfs 0.1) do not say: `tail`.
    enum class Role : std::uint32_t { tail = 0, spare = 1 };

    std::string uuid;
    std::uint32_t sector_size = 0;
    std::uint64_t image_sectors = 0;
    std::uint64_t spare_slots = 0;
    std::uint32_t layout = 1;
    Role role = Role::tail;
    std::uint64_t generation = 0;

    std::array<std::byte, 4096> encode() const;  // always format 2
    // nullopt: no label (blank or foreign data); a label with a bad checksum is also nullopt.
    static std::optional<Label> decode(const std::array<std::byte, 4096>& raw);
    // 64 bits of the uuid: what slot headers carry to say whose they are.
    std::uint64_t device_tag() const;
    bool same_device(const Label& o) const {
        return uuid == o.uuid && sector_size == o.sector_size && image_sectors == o.image_sectors &&
               spare_slots == o.spare_slots && layout == o.layout;
    }
};

const char* to_string(Label::Role r);

struct SlotHeader {
    enum class State : std::uint8_t { blank = 0, mapped = 1, retired = 2 };
    State state = State::blank;
    Lba lba;                      // mapped: the sector this slot holds
    std::uint64_t generation = 0;  // of the commit that made this header

    using Raw = std::array<std::byte, kSlotHeaderBytes>;
    Raw encode(std::uint64_t device_tag) const;  // blank: all zeros, as a never-written area reads
    // nullopt: neither blank nor a valid header of this device (torn, foreign, garbage).
    static std::optional<SlotHeader> decode(const std::byte* raw, std::uint64_t device_tag);
    bool operator==(const SlotHeader&) const = default;
};

}  // namespace remapfs
