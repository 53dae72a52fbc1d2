#pragma once
// A device as it sits on its files: the layout a first mount makes, and the labels found on
// (or written to) the backing and the spare. Startup only: throws std::runtime_error with a
// one-line message.

#include "remapfs/block/geometry.hpp"
#include "remapfs/block/label.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace remapfs {

struct SpareSize {
    std::uint64_t bytes = 0;     // when percent == 0
    double percent = 0;          // of the backing
};

// "64M", "1G", "1048576", "2%" (0 < N <= 50). Throws std::invalid_argument with a one-line message.
SpareSize parse_spare_size(const std::string& s);

struct Layout {
    Geometry g;
    std::uint64_t spare_offset = 0;  // of the spare label, in the spare's file
};

struct LayoutRequest {
    std::optional<SpareSize> spare_size;
    std::optional<std::uint32_t> sector_size;
    std::uint64_t backing_bytes = 0;
    std::optional<std::uint64_t> spare_file_bytes;  // a separate spare
    std::string backing_path;                       // for messages
    std::uint32_t layout = kCurrentLayout;          // 1: a device made by remapfs 0.1
};

// The layout a first mount makes: a tail spare of spare_size (default max(1 MiB,
// 1 %)) and the image before it; or, with a separate spare, the image is the whole backing
// (wrapping a disk that is full already) and the spare takes spare_size of the spare file
// (default all).
Layout compute_layout(const LayoutRequest& r);

struct LabelsOnDisk {
    std::optional<Label> spare;  // the newest valid copy of the label on the spare (or tail)
    unsigned newest_copy = 0;    // which copy that is (layout 2 keeps two)
};

// spare_fd: the file with the spare label (the backing itself for a tail spare).
LabelsOnDisk read_labels(int spare_fd, std::uint64_t spare_offset, const Geometry& g, const std::string& spare_where);
// Writes the labels of a fresh device (generation 0), durable. role: tail or spare.
void write_labels(int spare_fd, std::uint64_t spare_offset, const Geometry& g, const std::string& uuid, Label::Role role,
                  const std::string& spare_where);

}  // namespace remapfs
