#include "remapfs/sys/contents.hpp"

#include "remapfs/sys/io.hpp"
#include "remapfs/sys/io_buffer.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace remapfs::sys {
namespace {

constexpr std::uint64_t kAlign = 4096;
constexpr std::uint64_t kChunk = 1 << 20;
constexpr std::uint64_t kWholeUpTo = 256ULL << 20;
constexpr std::uint64_t kEnds = 64ULL << 20;
constexpr std::uint64_t kEvery = 256ULL << 20;
constexpr std::uint32_t kMdMagic = 0xa92b4efc;

struct Piece {
    std::uint64_t off, len;
};

// Data extents of [off, end) (SEEK_DATA/SEEK_HOLE); the whole range where those are not known.
std::vector<Piece> data_extents(int fd, std::uint64_t off, std::uint64_t end) {
    std::vector<Piece> out;
    for (std::uint64_t at = off; at < end;) {
        const off_t d = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
        if (d < 0) {
            if (errno == ENXIO) break;  // no data from here on
            out.assign(1, {off, end - off});
            return out;
        }
        if (static_cast<std::uint64_t>(d) >= end) break;
        off_t h = ::lseek(fd, d, SEEK_HOLE);
        const std::uint64_t stop = h < 0 ? end : std::min<std::uint64_t>(static_cast<std::uint64_t>(h), end);
        out.push_back({static_cast<std::uint64_t>(d), stop - static_cast<std::uint64_t>(d)});
        at = stop;
    }
    return out;
}

// The parts of a long piece that are read: all of it up to kWholeUpTo, else both ends and
// samples between.
void sample(const Piece& p, std::vector<Piece>& out) {
    if (p.len <= kWholeUpTo) return out.push_back(p);
    out.push_back({p.off, kEnds});
    for (std::uint64_t at = p.off + kEvery; at + kChunk < p.off + p.len - kEnds; at += kEvery) out.push_back({at, kChunk});
    out.push_back({p.off + p.len - kEnds, kEnds});
}

}  // namespace

std::optional<std::string> describe_contents(int fd, std::uint64_t off, std::uint64_t len, std::uint64_t file_bytes) {
    const std::uint64_t end = std::min(off + len, file_bytes);
    if (off >= end) return std::nullopt;
    IoBuffer buf(kChunk + 2 * kAlign);
    if (!buf) throw std::runtime_error("cannot allocate a buffer to look at the spare area");
    // Reads [a, b) (any alignment; the transfer is widened to kAlign) and returns a pointer to a.
    auto read_at = [&](std::uint64_t a, std::uint64_t b) -> const std::byte* {
        const std::uint64_t lo = a / kAlign * kAlign;
        const std::uint64_t hi = std::min((b + kAlign - 1) / kAlign * kAlign, (file_bytes + kAlign - 1) / kAlign * kAlign);
        std::uint64_t got = hi - lo;
        // The last partial block of a file whose size is not a multiple of kAlign: read what is there.
        if (lo + got > file_bytes && file_bytes % kAlign) {
            std::memset(buf.data(), 0, got);
            got = file_bytes - lo;
            if (::pread(fd, buf.data(), (got + kAlign - 1) / kAlign * kAlign, static_cast<off_t>(lo)) < 0)
                throw std::runtime_error(fmt::format("reading byte {} to look at the spare area: {}", lo, std::strerror(errno)));
            return buf.data() + (a - lo);
        }
        if (auto r = pread_full(fd, buf.data(), ByteCount{got}, ByteOffset{lo}); !r)
            throw std::runtime_error(fmt::format("reading byte {} to look at the spare area: {}", lo, errno_name(r.error())));
        return buf.data() + (a - lo);
    };

    // Signatures that sit at fixed places from the end: GPT's backup header in the last logical
    // block (512 or 4096 bytes), md's 1.0 superblock 8 to 12 KiB before the end.
    for (std::uint64_t lb : {512ULL, 4096ULL}) {
        if (file_bytes < lb || file_bytes - lb < off || file_bytes - lb >= end) continue;
        const std::byte* p = read_at(file_bytes - lb, file_bytes - lb + 8);
        if (std::memcmp(p, "EFI PART", 8) == 0) return fmt::format("a GPT backup header at byte {}", file_bytes - lb);
    }
    if (file_bytes >= 16 * 512) {
        const std::uint64_t md = ((file_bytes / 512 - 16) & ~std::uint64_t{7}) * 512;
        if (md >= off && md + 4 <= end) {
            const std::byte* p = read_at(md, md + 4);
            std::uint32_t magic = 0;
            std::memcpy(&magic, p, 4);
            if (magic == kMdMagic) return fmt::format("an md RAID superblock (metadata 1.0) at byte {}", md);
        }
    }

    std::vector<Piece> pieces;
    for (const Piece& e : data_extents(fd, off, end)) sample(e, pieces);
    for (const Piece& p : pieces) {
        for (std::uint64_t at = p.off; at < p.off + p.len;) {
            const std::uint64_t n = std::min(kChunk, p.off + p.len - at);
            const std::byte* d = read_at(at, at + n);
            const std::byte* nz = std::find_if(d, d + n, [](std::byte b) { return b != std::byte{0}; });
            if (nz != d + n) return fmt::format("data at byte {}", at + static_cast<std::uint64_t>(nz - d));
            at += n;
        }
    }
    return std::nullopt;
}

}  // namespace remapfs::sys
