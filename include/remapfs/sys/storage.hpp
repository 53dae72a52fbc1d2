#pragma once
// Opening the files a device lives on: the backing and a separate spare, regular files or
// block devices. Startup only: throws std::runtime_error with a one-line message.
//
// O_DIRECT is required unless buffered I/O is asked for by name. Through the page cache a
// failing write is acknowledged at once and surfaces later as one EIO from fdatasync that
// names no sector, so nothing can be remapped and the caller was told its write was saved.

#include "remapfs/core/unique_fd.hpp"

#include <cstdint>
#include <string>

namespace remapfs::sys {

enum class BackingIo { automatic, direct, buffered };

struct OpenedFile {
    UniqueFd fd;
    std::uint64_t bytes = 0;
    bool block = false;
    bool direct = false;
    std::uint32_t logical_block = 512;
};

// what: "backing" / "spare", for messages. Takes the file's lock (exclusive, shared when
// read-only): one owner at a time, or two would race the remap table.
OpenedFile open_storage(const std::string& path, const char* what, bool read_only, BackingIo io);

// realpath(3), or a runtime_error naming the path.
std::string canonical(const std::string& path);

}  // namespace remapfs::sys
