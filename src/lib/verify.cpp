#include "remapfs/verify.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace remapfs {

VerifyReport verify_sectors(block::BlockLayer& image, SectorSize ss, Lba start, SectorCount count,
                            std::stop_token stop) {
    VerifyReport rep{start, count, 0, {}};
    const std::uint64_t chunk = std::max<std::uint64_t>(1, (1u << 20) / ss.bytes());
    std::unique_ptr<std::byte, decltype(&std::free)> buf(
        static_cast<std::byte*>(std::aligned_alloc(4096, chunk * ss.bytes())), &std::free);
    for (std::uint64_t i = 0; i < count.v; i += chunk) {
        if (stop.stop_requested()) {
            rep.stopped = true;
            break;
        }
        const std::uint64_t n = std::min(chunk, count.v - i);
        const Lba first = start + SectorCount{i};
        if (image.pread({buf.get(), ss.bytes(SectorCount{n}).v}, ss.offset(first))) {
            rep.checked += n;
            continue;
        }
        for (std::uint64_t k = 0; k < n; ++k) {
            const Lba l = first + SectorCount{k};
            if (!image.pread({buf.get(), ss.bytes()}, ss.offset(l))) rep.unreadable.push_back(l);
            ++rep.checked;
        }
    }
    return rep;
}

}  // namespace remapfs
