#include "remapfs/instance/device_layout.hpp"

#include "remapfs/core/parse.hpp"
#include "remapfs/sys/io.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace remapfs {
namespace {

using std::runtime_error;
constexpr std::uint64_t kMiB = 1024 * 1024;

std::uint64_t spare_bytes_for(const SpareSize& s, std::uint64_t backing_bytes) {
    if (s.percent > 0) return static_cast<std::uint64_t>(std::ceil(static_cast<double>(backing_bytes) * s.percent / 100.0));
    return s.bytes;
}

std::optional<Label> read_label(int fd, std::uint64_t offset, const std::string& where) {
    alignas(4096) std::array<std::byte, 4096> raw{};
    if (auto r = sys::pread_full(fd, raw.data(), ByteCount{raw.size()}, ByteOffset{offset}); !r)
        throw runtime_error(fmt::format("cannot read the label of {}: {}", where, errno_name(r.error())));
    return Label::decode(raw);
}

void write_label(int fd, std::uint64_t offset, const Label& l, const std::string& where) {
    alignas(4096) const auto raw = l.encode();
    if (auto r = sys::pwrite_dsync(fd, raw.data(), ByteCount{raw.size()}, ByteOffset{offset}); !r)
        throw runtime_error(fmt::format("cannot write the label to {}: {}", where, errno_name(r.error())));
}

}  // namespace

SpareSize parse_spare_size(const std::string& s) {
    if (!s.empty() && s.back() == '%') {
        std::string num = s.substr(0, s.size() - 1);
        char* end = nullptr;
        double p = std::strtod(num.c_str(), &end);
        if (num.empty() || *end != '\0' || !(p > 0) || p > 50)
            throw std::invalid_argument(fmt::format("spare_size '{}': a percentage must be above 0 and at most 50", s));
        return {0, p};
    }
    std::uint64_t b = parse_size(s);
    if (b == 0) throw std::invalid_argument("spare_size must not be 0");
    return {b, 0};
}

Layout compute_layout(const LayoutRequest& r) {
    Layout l;
    const std::uint32_t ss = r.sector_size.value_or(4096);
    l.g.sector_size = SectorSize(ss);
    l.g.layout = r.layout;
    const SectorSize sz(ss);
    if (r.spare_file_bytes) {
        const std::uint64_t have = *r.spare_file_bytes;
        const std::uint64_t want = r.spare_size ? spare_bytes_for(*r.spare_size, r.backing_bytes) : have;
        if (want > have)
            throw runtime_error(fmt::format("spare_size {} is larger than the spare ({} bytes)", want, have));
        l.g.image_sectors = SectorCount{r.backing_bytes / ss};
        l.spare_offset = 0;
        l.g.spare_slots = Geometry::slots_fitting(ByteCount{want}, sz, r.layout);
        if (l.g.spare_slots.v == 0)
            throw runtime_error(fmt::format("spare ({} bytes) is too small: it needs {} bytes for the labels and a "
                                            "slot header block plus at least one {}-byte slot",
                                            want, l.g.label_area_bytes().v + kHeaderBlockBytes, ss));
    } else {
        const std::uint64_t want = r.spare_size ? spare_bytes_for(*r.spare_size, r.backing_bytes)
                                                : std::max<std::uint64_t>(kMiB, r.backing_bytes / 100);
        if (Geometry::slots_fitting(ByteCount{want}, sz, r.layout).v == 0)
            throw runtime_error(fmt::format("spare_size {} is too small: it needs {} bytes for the labels and a slot "
                                            "header block plus at least one {}-byte slot",
                                            want, l.g.label_area_bytes().v + kHeaderBlockBytes, ss));
        if (want + ss > r.backing_bytes)
            throw runtime_error(fmt::format("backing {} ({} bytes) is too small for a spare area of {} bytes",
                                            r.backing_path, r.backing_bytes, want));
        const std::uint64_t image = (r.backing_bytes - want) / ss * ss;
        l.g.image_sectors = SectorCount{image / ss};
        l.spare_offset = image;
        l.g.spare_slots = Geometry::slots_fitting(ByteCount{r.backing_bytes - image}, sz, r.layout);
    }
    if (l.g.image_sectors.v == 0) throw runtime_error(fmt::format("backing {} is too small", r.backing_path));
    return l;
}

LabelsOnDisk read_labels(int spare_fd, std::uint64_t spare_offset, const Geometry& g, const std::string& spare_where) {
    LabelsOnDisk out;
    auto a = read_label(spare_fd, spare_offset, spare_where);
    // Copy B exists only in layout 2; what copy A says decides, or the geometry when A is torn.
    const bool two = a ? a->layout >= 2 : g.self_describing();
    std::optional<Label> b = two ? read_label(spare_fd, spare_offset + kLabelBytes.v, spare_where) : std::nullopt;
    if (a && b && !a->same_device(*b)) b.reset();  // B is not A's: trust the copy at the start
    if (b && (!a || b->generation > a->generation)) {
        out.spare = b;
        out.newest_copy = 1;
    } else {
        out.spare = a;
    }
    return out;
}

void write_labels(int spare_fd, std::uint64_t spare_offset, const Geometry& g, const std::string& uuid, Label::Role role,
                  const std::string& spare_where) {
    const Label l{uuid, g.sector_size.bytes(), g.image_sectors.v, g.spare_slots.v, g.layout, role, 0};
    write_label(spare_fd, spare_offset, l, spare_where);
    if (g.self_describing()) write_label(spare_fd, spare_offset + kLabelBytes.v, l, spare_where);
}

}  // namespace remapfs
