#pragma once
// Shared test scaffolding: temp directories, a remap stack on an in-memory backing.

#include "remapfs/block/fault_rule_json.hpp"
#include "remapfs/block/memory_backing.hpp"
#include "remapfs/core/clock.hpp"
#include "remapfs/remap/remap_layer.hpp"
#include "remapfs/db/schema.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/remap/remapper.hpp"
#include "remapfs/remap/spare_meta.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace test {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "remapfs-unit-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// A sparse file of `size` bytes (made anew).
inline void make_file(const std::string& p, std::uint64_t size) {
    int fd = ::open(p.c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
    ::close(fd);
}

// len bytes at off through a layer; the read must succeed.
inline std::vector<std::byte> read(remapfs::block::BlockLayer& l, std::uint64_t off, std::size_t len) {
    std::vector<std::byte> v(len);
    REQUIRE(l.pread(v, remapfs::ByteOffset{off}));
    return v;
}

inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    std::mt19937 rng(seed);
    for (auto& b : v) b = static_cast<std::byte>(rng());
    return v;
}

// Calls `before_write` (when set) ahead of every write that passes: a test can take the
// device's state at the moment a given write is issued (a power cut just before it).
class Tap final : public remapfs::block::BlockLayer {
public:
    using BlockLayer::BlockLayer;
    std::function<void(remapfs::ByteOffset)> before_write;
    remapfs::Result<void> pwrite(std::span<const std::byte> b, remapfs::ByteOffset off) override {
        if (before_write) before_write(off);
        return next_->pwrite(b, off);
    }
    remapfs::Result<void> pwrite_durable(std::span<const std::byte> b, remapfs::ByteOffset off) override {
        if (before_write) before_write(off);
        return next_->pwrite_durable(b, off);
    }
    void pwrite_runs(std::span<remapfs::block::IoRun> runs) override {
        if (before_write)
            for (const auto& r : runs) before_write(r.off);
        next_->pwrite_runs(runs);
    }
};

// Image of `sectors` sectors + spare of `slots` slots on a MemoryBacking under a FaultInjector,
// with a store on disk and a fake clock (retry backoff and injected latency cost no time).
struct MemStack {
    TempDir dir;
    remapfs::FakeClock clock;
    remapfs::Geometry g;
    remapfs::block::MemoryBacking* mem = nullptr;
    Tap* tap = nullptr;
    remapfs::block::FaultInjector* faults = nullptr;
    remapfs::remap::TableHolder tables;
    std::optional<remapfs::db::Store> store;
    remapfs::remap::SpareMeta* meta = nullptr;    // the layer's
    remapfs::remap::Remapper* remapper = nullptr;  // the layer's
    std::unique_ptr<remapfs::remap::RemapLayer> layer;

    MemStack(std::uint32_t sector_size, std::uint64_t sectors, std::uint64_t slots,
             remapfs::remap::Policy policy = {}) {
        g = remapfs::Geometry{remapfs::SectorSize(sector_size), remapfs::SectorCount{sectors},
                              remapfs::SectorCount{slots}};
        auto m = std::make_unique<remapfs::block::MemoryBacking>(g.physical_bytes());
        mem = m.get();
        auto t = std::make_unique<Tap>(std::move(m));
        tap = t.get();
        auto f = std::make_unique<remapfs::block::FaultInjector>(std::move(t), g, clock);
        faults = f.get();
        store.emplace(remapfs::db::Store::open(dir.file("t.db"), true, false));
        layer = std::make_unique<remapfs::remap::RemapLayer>(
            std::move(f), remapfs::remap::RemapSetup{g, tables, *store, store->allocator(), policy, clock,
                                                     remapfs::Label{"0123456789abcdef", sector_size, sectors, slots,
                                                                    g.layout},
                                                     1, 0, false});
        meta = &layer->spare_meta();
        remapper = &layer->remapper();
    }
    // Rule helper: {"sectors": "A-B", "op": ..., ...}
    void inject(const nlohmann::json& j) { faults->add(remapfs::block::fault_rule_from_json(j)); }
    std::vector<std::byte> slot_bytes(remapfs::SpareSlot s) const {
        return mem->raw(g.slot_offset(s), g.sector_size.count());
    }
    std::vector<std::byte> data_bytes(remapfs::Lba l) const {
        return mem->raw(g.data_offset(l), g.sector_size.count());
    }
};

}  // namespace test
