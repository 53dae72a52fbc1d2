#pragma once
// Units are types: a sector index, a sector count and a byte offset never share a plain
// integer. Conversions go through SectorSize, which is the only thing that knows both.

#include <compare>
#include <cstdint>
#include <functional>

namespace remapfs {

template <typename Tag>
struct Quantity {
    std::uint64_t v = 0;
    constexpr Quantity() = default;
    constexpr explicit Quantity(std::uint64_t x) : v(x) {}
    constexpr auto operator<=>(const Quantity&) const = default;
};

struct LbaTag {};
struct SectorCountTag {};
struct ByteOffsetTag {};
struct ByteCountTag {};
struct SpareSlotTag {};

// Index of a sector of the exposed image (remap granularity, not necessarily 512 B).
struct Lba : Quantity<LbaTag> { using Quantity::Quantity; };
struct SectorCount : Quantity<SectorCountTag> { using Quantity::Quantity; };
// Index of a slot in the spare area (slot 0 is the first slot after the spare label).
struct SpareSlot : Quantity<SpareSlotTag> { using Quantity::Quantity; };
struct ByteOffset : Quantity<ByteOffsetTag> { using Quantity::Quantity; };
struct ByteCount : Quantity<ByteCountTag> { using Quantity::Quantity; };

constexpr Lba operator+(Lba a, SectorCount n) { return Lba{a.v + n.v}; }
constexpr SectorCount operator-(Lba a, Lba b) { return SectorCount{a.v - b.v}; }
constexpr SectorCount operator+(SectorCount a, SectorCount b) { return SectorCount{a.v + b.v}; }
constexpr ByteOffset operator+(ByteOffset a, ByteCount n) { return ByteOffset{a.v + n.v}; }
constexpr ByteCount operator-(ByteOffset a, ByteOffset b) { return ByteCount{a.v - b.v}; }
constexpr ByteCount operator+(ByteCount a, ByteCount b) { return ByteCount{a.v + b.v}; }
constexpr ByteCount operator-(ByteCount a, ByteCount b) { return ByteCount{a.v - b.v}; }

class SectorSize {
public:
    constexpr explicit SectorSize(std::uint32_t bytes) : bytes_(bytes) {}
    constexpr std::uint32_t bytes() const { return bytes_; }
    constexpr ByteCount count() const { return ByteCount{bytes_}; }

    constexpr ByteOffset offset(Lba l) const { return ByteOffset{l.v * bytes_}; }
    constexpr ByteCount bytes(SectorCount n) const { return ByteCount{n.v * bytes_}; }
    constexpr Lba lba_of(ByteOffset o) const { return Lba{o.v / bytes_}; }
    constexpr SectorCount sectors_in(ByteCount n) const { return SectorCount{n.v / bytes_}; }
    constexpr std::uint64_t within(ByteOffset o) const { return o.v % bytes_; }
    constexpr bool aligned(ByteOffset o) const { return o.v % bytes_ == 0; }
    constexpr bool aligned(ByteCount n) const { return n.v % bytes_ == 0; }
    constexpr ByteOffset round_down(ByteOffset o) const { return ByteOffset{o.v - o.v % bytes_}; }
    constexpr ByteCount round_down(ByteCount n) const { return ByteCount{n.v - n.v % bytes_}; }
    constexpr bool operator==(const SectorSize&) const = default;

    static constexpr bool valid(std::uint64_t b) { return b == 512 || b == 4096; }

private:
    std::uint32_t bytes_;
};

// A byte range [offset, offset + length) split at sector boundaries: an unaligned head, a run
// of whole sectors and an unaligned tail (nbdkit cow filter shape). Any part may be empty; a
// request inside one sector is a head only.
struct SectorSplit {
    struct Partial {
        Lba lba;
        std::uint32_t offset_in_sector = 0;  // bytes
        std::uint32_t length = 0;            // bytes; 0 = absent
    };
    Partial head;
    Lba body_first;
    SectorCount body_count;
    Partial tail;

    // Every sector the request touches, partial ones included.
    constexpr Lba first() const { return head.length ? head.lba : body_first; }
    constexpr SectorCount touched() const {
        Lba end = tail.length      ? tail.lba + SectorCount{1}
                  : body_count.v ? body_first + body_count
                  : head.length  ? head.lba + SectorCount{1}
                                 : first();
        return end - first();
    }
};

constexpr SectorSplit split_sectors(SectorSize ss, ByteOffset off, ByteCount len) {
    SectorSplit s{};
    const std::uint64_t bs = ss.bytes();
    std::uint64_t pos = off.v;
    std::uint64_t end = off.v + len.v;
    if (pos % bs != 0 && pos < end) {
        std::uint64_t sector_end = pos - pos % bs + bs;
        std::uint64_t n = (end < sector_end ? end : sector_end) - pos;
        s.head = {Lba{pos / bs}, static_cast<std::uint32_t>(pos % bs), static_cast<std::uint32_t>(n)};
        pos += n;
    }
    std::uint64_t whole = (end - pos) / bs;
    s.body_first = Lba{pos / bs};
    s.body_count = SectorCount{whole};
    pos += whole * bs;
    if (pos < end) s.tail = {Lba{pos / bs}, 0, static_cast<std::uint32_t>(end - pos)};
    return s;
}

}  // namespace remapfs

template <>
struct std::hash<remapfs::Lba> {
    std::size_t operator()(remapfs::Lba l) const noexcept { return std::hash<std::uint64_t>{}(l.v); }
};
