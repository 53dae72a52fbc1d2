#pragma once
// The spare area's own record of what it holds (layout 2; label.hpp has the formats), written
// through the physical layer by the Remapper with every change of the table:
//
//   new remap of L to S:   S's data, S's header {mapped L g}, both durable  -> commit g
//   unremap / relocation:  commit g -> the old slot's header blank (or retired)
//   after every commit:    the label's older copy gets generation g, durable -> publish, reply
//
// So every mapped header with a generation at most the label's was committed with its data
// durable, a header above it belongs to a change that never committed, and a header that a
// crash left out of step with the database is put right at the next open (reconcile).
//
// Layout 1 devices have no room for any of it: everything here is then a no-op.

#include "remapfs/block/layer.hpp"
#include "remapfs/geometry.hpp"
#include "remapfs/label.hpp"

#include <functional>
#include <optional>
#include <span>

namespace remapfs::remap {

struct SlotChange {
    SpareSlot slot;
    SlotHeader header;
};

class SpareMeta {
public:
    // label: the device's label as found at open, with the newest generation of its copies;
    // newest_copy: the copy (0 or 1) that holds it, so the other one is written next.
    SpareMeta(block::BlockLayer& physical, const Geometry& g, Label label, unsigned newest_copy);

    bool enabled() const { return geometry_.self_describing(); }
    std::uint64_t generation() const { return label_.generation; }
    std::uint64_t device_tag() const { return tag_; }
    const Label& label() const { return label_; }

    // Writes the headers (slots sharing a header block cost one read and one write), durable
    // when it returns. Callers hold the table's writer mutex: nothing else writes headers.
    Result<void> write(std::span<const SlotChange> changes);
    // The label with `generation`, to the older copy, durable.
    Result<void> commit(std::uint64_t generation);
    // Calls f for each slot of [first, first + count) in order with its header, or nullopt
    // where the header is neither blank nor this device's (torn, foreign). Reads 1 MiB at a
    // time. Stops at the first read error.
    Result<void> read(SpareSlot first, std::uint64_t count,
                      const std::function<void(SpareSlot, const std::optional<SlotHeader>&)>& f);

private:
    block::BlockLayer& physical_;
    Geometry geometry_;
    Label label_;
    std::uint64_t tag_;
    unsigned next_copy_;
};

}  // namespace remapfs::remap
