#include "remapfs/block/label.hpp"

#include <algorithm>
#include <cstring>

namespace remapfs {
namespace {

constexpr char kMagic[8] = {'R', 'M', 'A', 'P', 'F', 'S', 'L', '1'};
constexpr std::size_t kUuidLen = 36;
constexpr std::size_t kChecksumAt = 4096 - 8;
constexpr std::uint32_t kFormat = 2;
constexpr std::uint16_t kHeaderMagic = 0x5348;  // "HS" little-endian: slot header

void put_le(std::byte* p, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
std::uint64_t get_le(const std::byte* p, int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
}
std::uint64_t fnv1a(const std::byte* p, std::size_t n) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<std::uint64_t>(p[i])) * 0x100000001b3ULL;
    return h;
}
int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

const char* to_string(Label::Role r) {
    switch (r) {
    case Label::Role::tail: return "tail";
    case Label::Role::spare: return "spare";
    }
    return "?";
}

std::array<std::byte, 4096> Label::encode() const {
    std::array<std::byte, 4096> r{};
    std::memcpy(r.data(), kMagic, sizeof kMagic);
    put_le(r.data() + 8, kFormat, 4);
    put_le(r.data() + 12, sector_size, 4);
    put_le(r.data() + 16, image_sectors, 8);
    put_le(r.data() + 24, spare_slots, 8);
    std::memcpy(r.data() + 32, uuid.data(), std::min(uuid.size(), kUuidLen));
    put_le(r.data() + 68, layout, 4);
    put_le(r.data() + 72, static_cast<std::uint32_t>(role), 4);
    put_le(r.data() + 76, generation, 8);
    put_le(r.data() + kChecksumAt, fnv1a(r.data(), kChecksumAt), 8);
    return r;
}

std::optional<Label> Label::decode(const std::array<std::byte, 4096>& r) {
    if (std::memcmp(r.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
    if (get_le(r.data() + kChecksumAt, 8) != fnv1a(r.data(), kChecksumAt)) return std::nullopt;
    const std::uint64_t format = get_le(r.data() + 8, 4);
    if (format != 1 && format != kFormat) return std::nullopt;
    Label l;
    l.sector_size = static_cast<std::uint32_t>(get_le(r.data() + 12, 4));
    l.image_sectors = get_le(r.data() + 16, 8);
    l.spare_slots = get_le(r.data() + 24, 8);
    const char* u = reinterpret_cast<const char*>(r.data() + 32);
    l.uuid.assign(u, strnlen(u, kUuidLen));
    if (format >= 2) {
        l.layout = static_cast<std::uint32_t>(get_le(r.data() + 68, 4));
        const std::uint64_t role = get_le(r.data() + 72, 4);
        if (role > static_cast<std::uint32_t>(Role::spare) || l.layout < 1 || l.layout > kCurrentLayout)
            return std::nullopt;
        l.role = static_cast<Role>(role);
        l.generation = get_le(r.data() + 76, 8);
    }
    return l;
}

std::uint64_t Label::device_tag() const {
    // The uuid's first 16 hex digits; a uuid that is not hex (tests) is hashed instead.
    std::uint64_t tag = 0;
    int digits = 0;
    for (char c : uuid) {
        const int d = hex_digit(c);
        if (c == '-') continue;
        if (d < 0) return fnv1a(reinterpret_cast<const std::byte*>(uuid.data()), uuid.size()) | 1;
        tag = tag << 4 | static_cast<std::uint64_t>(d);
        if (++digits == 16) break;
    }
    return tag | 1;  // never 0: a zero tag would make a blank header look like ours
}

// Slot header: magic(2) state(1) reserved(1) checksum(4) device tag(8) lba(8) generation(8).
SlotHeader::Raw SlotHeader::encode(std::uint64_t device_tag) const {
    Raw r{};
    if (state == State::blank) return r;
    put_le(r.data(), kHeaderMagic, 2);
    r[2] = static_cast<std::byte>(state);
    put_le(r.data() + 8, device_tag, 8);
    put_le(r.data() + 16, lba.v, 8);
    put_le(r.data() + 24, generation, 8);
    put_le(r.data() + 4, fnv1a(r.data() + 8, 24) ^ static_cast<std::uint64_t>(state), 4);
    return r;
}

std::optional<SlotHeader> SlotHeader::decode(const std::byte* r, std::uint64_t device_tag) {
    if (std::all_of(r, r + kSlotHeaderBytes, [](std::byte b) { return b == std::byte{0}; })) return SlotHeader{};
    if (get_le(r, 2) != kHeaderMagic) return std::nullopt;
    const auto state = static_cast<std::uint8_t>(r[2]);
    if (state != static_cast<std::uint8_t>(State::mapped) && state != static_cast<std::uint8_t>(State::retired))
        return std::nullopt;
    if (get_le(r + 4, 4) != ((fnv1a(r + 8, 24) ^ state) & 0xffffffffULL)) return std::nullopt;
    if (get_le(r + 8, 8) != device_tag) return std::nullopt;
    SlotHeader h;
    h.state = static_cast<State>(state);
    h.lba = Lba{get_le(r + 16, 8)};
    h.generation = get_le(r + 24, 8);
    return h;
}

}  // namespace remapfs
