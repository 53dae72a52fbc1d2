#pragma once
// What a range of a file or device holds, asked before remapfs takes it for its spare area: a
// first mount on a used disk must not silently overwrite its tail (a GPT backup header, an md
// 1.0 superblock, the end of a filesystem).
//
// Regular files are read only where they have data (SEEK_DATA), so a sparse backing costs
// nothing. A region of more than 256 MiB on a device is sampled: its first and last 64 MiB and
// 1 MiB in every 256 MiB between. Startup only: throws std::runtime_error on a read error.

#include <cstdint>
#include <optional>
#include <string>

namespace remapfs::sys {

// nullopt: [off, off + len) of fd reads as zeros. Otherwise one phrase for a message: "a GPT
// backup header at byte N", "an md RAID superblock (metadata 1.0) at byte N", "data at byte N".
// file_bytes: the whole file's or device's size (where those signatures sit).
std::optional<std::string> describe_contents(int fd, std::uint64_t off, std::uint64_t len, std::uint64_t file_bytes);

}  // namespace remapfs::sys
