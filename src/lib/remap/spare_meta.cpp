#include "remapfs/remap/spare_meta.hpp"

#include "remapfs/sys/io_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace remapfs::remap {

SpareMeta::SpareMeta(block::BlockLayer& physical, const Geometry& g, Label label, unsigned newest_copy)
    : physical_(physical), geometry_(g), label_(std::move(label)), tag_(label_.device_tag()),
      next_copy_(newest_copy ^ 1U) {}

Result<void> SpareMeta::write(std::span<const SlotChange> changes) {
    if (!enabled() || changes.empty()) return ok();
    alignas(4096) std::byte block[kHeaderBlockBytes];
    std::vector<std::size_t> order(changes.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return changes[a].slot < changes[b].slot; });
    for (std::size_t i = 0; i < order.size();) {
        const std::uint64_t b = changes[order[i]].slot.v / kHeadersPerBlock;
        const ByteOffset at = geometry_.header_block_offset(b);
        if (!physical_.pread({block, sizeof block}, at)) {
            // The others' headers in this block are unreadable, so lost already: write ours into
            // a blank block (a write is what reallocates a bad sector) and say that the record
            // lags, so the next open rewrites them from the table.
            std::memset(block, 0, sizeof block);
            lost_ = true;
        }
        for (; i < order.size() && changes[order[i]].slot.v / kHeadersPerBlock == b; ++i) {
            const SlotChange& c = changes[order[i]];
            const SlotHeader::Raw raw = c.header.encode(tag_);
            std::memcpy(block + (c.slot.v % kHeadersPerBlock) * kSlotHeaderBytes, raw.data(), raw.size());
        }
        REMAPFS_TRY(physical_.pwrite_durable({block, sizeof block}, at));
    }
    return ok();
}

Result<void> SpareMeta::commit(std::uint64_t generation) {
    if (!enabled()) return ok();
    Label l = label_;
    l.generation = generation;
    alignas(4096) const auto raw = l.encode();
    const unsigned copy = next_copy_;
    next_copy_ ^= 1U;  // written or not, the other copy is next: a retry does not hit this one again
    REMAPFS_TRY(physical_.pwrite_durable({raw.data(), raw.size()}, geometry_.label_offset(copy)));
    label_ = l;
    return ok();
}

Result<void> SpareMeta::read(SpareSlot first, std::uint64_t count,
                             const std::function<void(SpareSlot, const std::optional<SlotHeader>&)>& f) {
    if (!enabled() || count == 0) return ok();
    constexpr std::uint64_t kChunkBlocks = 256;  // 1 MiB of headers per read
    sys::IoBuffer buf(kChunkBlocks * kHeaderBlockBytes);
    if (!buf) return Errno{ENOMEM};
    const std::uint64_t end = std::min(first.v + count, geometry_.spare_slots.v);
    std::uint64_t slot = first.v;
    while (slot < end) {
        const std::uint64_t b0 = slot / kHeadersPerBlock;
        const std::uint64_t b1 = std::min((end + kHeadersPerBlock - 1) / kHeadersPerBlock, b0 + kChunkBlocks);
        std::vector<bool> readable(b1 - b0, true);
        if (!physical_.pread({buf.data(), (b1 - b0) * kHeaderBlockBytes}, geometry_.header_block_offset(b0))) {
            // A failing disk: the blocks one by one, and what cannot be read is reported as such.
            for (std::uint64_t b = b0; b < b1; ++b)
                readable[b - b0] = bool(physical_.pread(
                    {buf.data() + (b - b0) * kHeaderBlockBytes, kHeaderBlockBytes}, geometry_.header_block_offset(b)));
        }
        for (; slot < end && slot < b1 * kHeadersPerBlock; ++slot) {
            const std::uint64_t b = slot / kHeadersPerBlock;
            f(SpareSlot{slot}, readable[b - b0] ? SlotHeader::decode(buf.data() + (slot - b0 * kHeadersPerBlock) *
                                                                                      kSlotHeaderBytes, tag_)
                                                : std::nullopt);
        }
    }
    return ok();
}

}  // namespace remapfs::remap
