#include "remapfs/label.hpp"

#include <cstring>

namespace remapfs {
namespace {

constexpr char kMagic[8] = {'R', 'M', 'A', 'P', 'F', 'S', 'L', '1'};
constexpr std::size_t kUuidLen = 36;
constexpr std::size_t kChecksumAt = 4096 - 8;

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

}  // namespace

std::array<std::byte, 4096> Label::encode() const {
    std::array<std::byte, 4096> r{};
    std::memcpy(r.data(), kMagic, sizeof kMagic);
    put_le(r.data() + 8, 1, 4);  // format version
    put_le(r.data() + 12, sector_size, 4);
    put_le(r.data() + 16, image_sectors, 8);
    put_le(r.data() + 24, spare_slots, 8);
    std::memcpy(r.data() + 32, uuid.data(), std::min(uuid.size(), kUuidLen));
    put_le(r.data() + kChecksumAt, fnv1a(r.data(), kChecksumAt), 8);
    return r;
}

std::optional<Label> Label::decode(const std::array<std::byte, 4096>& r) {
    if (std::memcmp(r.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
    if (get_le(r.data() + kChecksumAt, 8) != fnv1a(r.data(), kChecksumAt)) return std::nullopt;
    if (get_le(r.data() + 8, 4) != 1) return std::nullopt;
    Label l;
    l.sector_size = static_cast<std::uint32_t>(get_le(r.data() + 12, 4));
    l.image_sectors = get_le(r.data() + 16, 8);
    l.spare_slots = get_le(r.data() + 24, 8);
    const char* u = reinterpret_cast<const char*>(r.data() + 32);
    l.uuid.assign(u, strnlen(u, kUuidLen));
    return l;
}

}  // namespace remapfs
