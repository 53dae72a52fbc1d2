#include "remapfs/control/verify.hpp"

#include "remapfs/sys/io_buffer.hpp"

#include <algorithm>
#include <new>

namespace remapfs {

VerifyReport verify_sectors(block::BlockLayer& image, SectorSize ss, Lba start, SectorCount count,
                            std::stop_token stop) {
    VerifyReport rep{start, count, 0, {}};
    const std::uint64_t chunk = std::max<std::uint64_t>(1, (1u << 20) / ss.bytes());
    sys::IoBuffer buf(chunk * ss.bytes());
    if (!buf) throw std::bad_alloc();  // the caller answers with the error, as for the vector below
    for (std::uint64_t i = 0; i < count.v; i += chunk) {
        if (stop.stop_requested()) {
            rep.stopped = true;
            break;
        }
        const std::uint64_t n = std::min(chunk, count.v - i);
        const Lba first = start + SectorCount{i};
        if (image.pread({buf.data(), ss.bytes(SectorCount{n}).v}, ss.offset(first))) {
            rep.checked += n;
            continue;
        }
        for (std::uint64_t k = 0; k < n; ++k) {
            const Lba l = first + SectorCount{k};
            if (!image.pread({buf.data(), ss.bytes()}, ss.offset(l))) rep.unreadable.push_back(l);
            ++rep.checked;
        }
    }
    return rep;
}

}  // namespace remapfs
