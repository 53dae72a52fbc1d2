#include <doctest/doctest.h>

#include "remapfs/block/memory_backing.hpp"
#include "remapfs/control/verify.hpp"

#include <cerrno>
#include <stop_token>

using namespace remapfs;

namespace {
// Memory whose sector 300 (of 4096 bytes) cannot be read.
class OneBadSector final : public block::BlockLayer {
public:
    OneBadSector() : BlockLayer(std::make_unique<block::MemoryBacking>(ByteCount{kSectors * 4096})) {}
    Result<void> pread(std::span<std::byte> buf, ByteOffset off) override {
        if (off.v <= kBad * 4096 && kBad * 4096 < off.v + buf.size()) return Errno{EIO};
        return BlockLayer::pread(buf, off);
    }
    static constexpr std::uint64_t kSectors = 1024, kBad = 300;
};
}  // namespace

TEST_CASE("verify names each unreadable sector and stops when asked") {
    OneBadSector image;
    const SectorSize ss{4096};
    VerifyReport all = verify_sectors(image, ss, Lba{0}, SectorCount{OneBadSector::kSectors});
    CHECK(all.checked == OneBadSector::kSectors);
    CHECK_FALSE(all.stopped);
    REQUIRE(all.unreadable.size() == 1);
    CHECK(all.unreadable[0].v == OneBadSector::kBad);

    std::stop_source stop;
    stop.request_stop();
    VerifyReport none = verify_sectors(image, ss, Lba{0}, SectorCount{OneBadSector::kSectors}, stop.get_token());
    CHECK(none.stopped);
    CHECK(none.checked == 0);
    CHECK(none.unreadable.empty());
}
