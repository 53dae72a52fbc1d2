// The Backing's batched transfers (all runs of a request in flight at once, Linux AIO) on real
// files, with and without O_DIRECT, aligned and unaligned buffers, image and spare file mixed.
#include "fixtures.hpp"

#include "remapfs/block/backing.hpp"
#include "remapfs/sys/io.hpp"
#include "remapfs/sys/io_buffer.hpp"
#include "remapfs/core/unique_fd.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

using namespace remapfs;

namespace {

struct Files {
    test::TempDir dir;
    Geometry g{SectorSize{4096}, SectorCount{256}, SectorCount{16}};
    UniqueFd data, spare;
    bool direct;

    explicit Files(bool want_direct) {
        const int flags = O_RDWR | O_CREAT | (want_direct ? O_DIRECT : 0);
        data = UniqueFd(::open(dir.file("data").c_str(), flags, 0600));
        spare = UniqueFd(::open(dir.file("spare").c_str(), flags, 0600));
        // Some temp filesystems (tmpfs) refuse O_DIRECT: then test buffered only.
        direct = want_direct && data.get() >= 0;
        if (data.get() < 0) {
            data = UniqueFd(::open(dir.file("data").c_str(), O_RDWR | O_CREAT, 0600));
            spare = UniqueFd(::open(dir.file("spare").c_str(), O_RDWR | O_CREAT, 0600));
        }
        REQUIRE(data.get() >= 0);
        REQUIRE(spare.get() >= 0);
        REQUIRE(::ftruncate(data.get(), static_cast<off_t>(g.image_bytes().v)) == 0);
        REQUIRE(::ftruncate(spare.get(), static_cast<off_t>(g.spare_region_bytes().v)) == 0);
    }
};

// Runs over a 16-sector request: sectors 0-4 in place, 5 on slot `a`, 6-9 in place, 10 on slot
// `b`, 11 and 12 on slots 12 and 13, 13-15 in place: what the remap layer sends for a request
// with four remapped sectors. With b == a + 1 the two lone slots are one vectored transfer; the
// pair 11-12 is contiguous on both sides and always one plain transfer.
std::vector<block::IoRun> runs_for(const Geometry& g, std::byte* buf, Lba first, std::uint64_t a = 3,
                                   std::uint64_t b = 7) {
    const std::uint32_t ss = g.sector_size.bytes();
    auto in_place = [&](std::uint64_t idx, std::uint64_t n) {
        return block::IoRun{buf + idx * ss, ByteCount{n * ss}, g.data_offset(first + SectorCount{idx}), ok()};
    };
    auto on_slot = [&](std::uint64_t idx, std::uint64_t slot) {
        return block::IoRun{buf + idx * ss, ByteCount{ss}, g.slot_offset(SpareSlot{slot}), ok()};
    };
    return {in_place(0, 5), on_slot(5, a),       in_place(6, 4),     on_slot(10, b),
            on_slot(11, 12),  on_slot(12, 13), in_place(13, 3)};
}

void round_trip(bool want_direct, std::size_t misalign, std::uint64_t a, std::uint64_t b) {
    Files f(want_direct);
    block::Backing bk(f.g, f.data.get(), f.spare.get(), ByteOffset{0}, f.direct);
    const std::size_t len = 16 * 4096;
    auto src = test::pattern(len, 7);
    // Buffers at a page boundary + misalign: FUSE hands writes over 80 bytes into its buffer.
    std::byte* wbuf = static_cast<std::byte*>(std::aligned_alloc(4096, len + 4096));
    std::byte* rbuf = static_cast<std::byte*>(std::aligned_alloc(4096, len + 4096));
    std::memcpy(wbuf + misalign, src.data(), len);

    auto w = runs_for(f.g, wbuf + misalign, Lba{40}, a, b);
    bk.pwrite_runs(w);
    for (const auto& r : w) CHECK(bool(r.result));
    // Only unaligned buffers are copied, and every byte of them once.
    const std::uint64_t copied = f.direct && misalign ? len : 0;
    CHECK(bk.bounced_bytes() == copied);

    std::memset(rbuf, 0, len + 4096);
    auto rd = runs_for(f.g, rbuf + misalign, Lba{40}, a, b);
    bk.pread_runs(rd);
    for (const auto& r : rd) CHECK(bool(r.result));
    CHECK(bk.bounced_bytes() == 2 * copied);
    CHECK(std::memcmp(rbuf + misalign, src.data(), len) == 0);

    // Each piece landed where its run said: sector 5 of the request is slot `a` of the spare.
    std::vector<std::byte> one(4096);
    auto holds = [&](ByteOffset where, std::size_t sector) {
        REQUIRE(bool(bk.pread({one.data(), one.size()}, where)));
        return std::memcmp(one.data(), src.data() + sector * 4096, 4096) == 0;
    };
    CHECK(holds(f.g.slot_offset(SpareSlot{a}), 5));
    CHECK(holds(f.g.slot_offset(SpareSlot{b}), 10));
    CHECK(holds(f.g.slot_offset(SpareSlot{13}), 12));
    CHECK(holds(f.g.data_offset(Lba{40 + 6}), 6));
    CHECK(holds(f.g.data_offset(Lba{40 + 13}), 13));
    std::free(wbuf);
    std::free(rbuf);
}

}  // namespace

TEST_CASE("batched runs round-trip through the backing files") {
    SUBCASE("O_DIRECT, aligned buffers") { round_trip(true, 0, 3, 7); }
    SUBCASE("O_DIRECT, unaligned buffers (bounced)") { round_trip(true, 80, 3, 7); }
    SUBCASE("buffered") { round_trip(false, 80, 3, 7); }
    // Slots 3 and 4 follow each other in the spare but not in the request: one preadv/pwritev.
    SUBCASE("adjacent slots, O_DIRECT, aligned buffers (vectored)") { round_trip(true, 0, 3, 4); }
    SUBCASE("adjacent slots, O_DIRECT, unaligned buffers (bounced together)") { round_trip(true, 80, 3, 4); }
    SUBCASE("adjacent slots, buffered (vectored)") { round_trip(false, 80, 3, 4); }
    // Listed out of order: the spare side of b comes before a's.
    SUBCASE("adjacent slots in reverse order") { round_trip(true, 0, 4, 3); }
}

namespace {

// One 4k read per place (a data sector or a spare slot, each into its own piece of one buffer),
// all in one batch, with the spare file cut short by a slot: whatever touches slot 15 reads past
// its end (EIO). Says which reads succeeded.
struct Place {
    bool on_slot;
    std::uint64_t n;  // LBA or slot
};
std::vector<bool> read_with_last_slot_missing(const std::vector<Place>& places) {
    Files f(true);
    block::Backing b(f.g, f.data.get(), f.spare.get(), ByteOffset{0}, f.direct);
    REQUIRE(::ftruncate(f.spare.get(), static_cast<off_t>(f.g.spare_region_bytes().v - 4096)) == 0);
    std::byte* buf = static_cast<std::byte*>(std::aligned_alloc(4096, places.size() * 4096));
    std::vector<block::IoRun> runs;
    for (std::size_t i = 0; i < places.size(); ++i) {
        const Place& p = places[i];
        runs.push_back({buf + i * 4096, ByteCount{4096},
                        p.on_slot ? f.g.slot_offset(SpareSlot{p.n}) : f.g.data_offset(Lba{p.n}), ok()});
    }
    b.pread_runs(runs);
    std::free(buf);
    std::vector<bool> ok_runs;
    for (const auto& r : runs) ok_runs.push_back(bool(r.result));
    return ok_runs;
}

}  // namespace

TEST_CASE("a failing run reports its own error and leaves the others done") {
    CHECK(read_with_last_slot_missing({{false, 1}, {true, 15}, {false, 2}}) == std::vector<bool>{true, false, true});
}

TEST_CASE("runs merged into one transfer share its failure; the others still succeed") {
    // Slots 14 and 15 are adjacent, so they go as one transfer, which runs past the spare's end.
    CHECK(read_with_last_slot_missing({{true, 14}, {false, 9}, {true, 15}, {true, 1}}) ==
          std::vector<bool>{false, true, false, true});
}

// The memory O_DIRECT transfers go through: huge-page aligned and sized, so that a 1 MiB
// transfer is one physically contiguous piece where THP is on.
TEST_CASE("IoBuffer: huge-page aligned, madvised for THP, grows on reserve, moves") {
    constexpr std::size_t kHuge = sys::IoBuffer::kHugePage;
    sys::IoBuffer empty;
    CHECK_FALSE(empty);
    CHECK(empty.size() == 0);

    sys::IoBuffer b((1u << 20) + 8192);
    REQUIRE(b);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % kHuge == 0);
    CHECK(b.size() == kHuge);
    std::memset(b.data(), 0x5a, b.size());  // all of it is ours

    // The mapping is exactly the buffer (the over-mapped head and tail were given back), and the
    // kernel may back it with huge pages unless THP is off on this machine.
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool found = false, eligible = false;
    const auto at = reinterpret_cast<std::uintptr_t>(b.data());
    while (std::getline(smaps, line)) {
        std::uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
            if (found) break;  // the next mapping
            found = lo <= at && at < hi;
            if (found) CHECK(hi - at >= b.size());
        } else if (found && line.rfind("THPeligible:", 0) == 0) {
            eligible = line.find('1') != std::string::npos;
        }
    }
    CHECK(found);
    std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string mode;
    std::getline(thp, mode);
    if (!mode.empty() && mode.find("[never]") == std::string::npos) CHECK(eligible);

    std::byte* p = b.data();
    CHECK(b.reserve(4096) == p);  // big enough already: kept
    CHECK(b.reserve(3 * kHuge - 1) != nullptr);
    CHECK(b.size() == 3 * kHuge);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % kHuge == 0);

    sys::IoBuffer moved(std::move(b));
    CHECK_FALSE(b);
    CHECK(moved.size() == 3 * kHuge);
    b = std::move(moved);
    CHECK(b.size() == 3 * kHuge);
    CHECK_FALSE(moved);
}

// Small buffers stay in ordinary pages, and headroom before a huge buffer is ordinary memory
// that a small request can use without making the huge page behind it resident.
TEST_CASE("IoBuffer: small buffers in pages, headroom outside the huge pages") {
    constexpr std::size_t kHuge = sys::IoBuffer::kHugePage;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));

    sys::IoBuffer small(4096);
    REQUIRE(small);
    CHECK(small.size() == 4096);
    CHECK(reinterpret_cast<std::uintptr_t>(small.data()) % page == 0);
    CHECK(small.reserve(sys::IoBuffer::kHugeFrom - 1) != nullptr);
    CHECK(small.size() == sys::IoBuffer::kHugeFrom);  // whole pages, not a huge page
    CHECK(small.reserve(sys::IoBuffer::kHugeFrom) != nullptr);
    CHECK(small.size() == sys::IoBuffer::kHugeFrom);  // already big enough
    CHECK(small.reserve(sys::IoBuffer::kHugeFrom + 1) != nullptr);
    CHECK(small.size() == kHuge);
    CHECK(reinterpret_cast<std::uintptr_t>(small.data()) % kHuge == 0);

    sys::IoBuffer b(1u << 20, 100);
    REQUIRE(b);
    CHECK(b.headroom() == page);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % kHuge == 0);
    // Touching only the headroom makes no huge page resident.
    std::memset(b.data() - b.headroom(), 0x11, b.headroom());
    auto resident = [](const void* at) {
        unsigned char vec = 0;
        return ::mincore(const_cast<void*>(at), 1, &vec) == 0 && (vec & 1);
    };
    CHECK_FALSE(resident(b.data()));
    b.data()[0] = std::byte{1};
    CHECK(resident(b.data()));
    std::memset(b.data(), 0x22, b.size());

    sys::IoBuffer moved(std::move(b));
    CHECK(moved.headroom() == page);
    CHECK(b.headroom() == 0);
    CHECK(static_cast<unsigned char>(moved.data()[-1]) == 0x11);

    sys::IoBuffer small_head(512, 80);
    REQUIRE(small_head);
    CHECK(small_head.headroom() == page);
    CHECK(small_head.size() == page);
    std::memset(small_head.data() - small_head.headroom(), 0x33, small_head.headroom() + small_head.size());
}

TEST_CASE("IoBuffer: O_DIRECT reads and writes go through it") {
    Files f(true);
    // Where this temp filesystem refuses O_DIRECT the files are buffered: the data must still match.
    sys::IoBuffer b(1u << 20);
    REQUIRE(b);
    for (std::size_t i = 0; i < (1u << 20); ++i) b.data()[i] = std::byte(i * 7);
    REQUIRE(sys::pwrite_full(f.data.get(), b.data(), ByteCount{1u << 20}, ByteOffset{0}));
    sys::IoBuffer r(1u << 20);
    REQUIRE(sys::pread_full(f.data.get(), r.data(), ByteCount{1u << 20}, ByteOffset{0}));
    CHECK(std::memcmp(b.data(), r.data(), 1u << 20) == 0);
}
