#pragma once
// The spare area's own record of what it holds (layout 2; label.hpp has the formats), written
// through the physical layer by the Remapper with every change of the table:
//
//   new remap of L to S:   S's data, S's header {mapped L g}, both durable   -> commit g
//   unremap of L from S:   L's data home, S's header blank (or retired)     -> commit g
//   relocation S -> T:     T's data, T's header {mapped L g}                -> commit g
//   after every commit:    the label's older copy gets generation g, durable -> publish, reply
//   then, for relocation:  S's header retired
//
// So a mapped header with a generation at most the label's was committed with its data
// durable, and a header above it belongs to a change that never committed or was never
// acknowledged. Until the label has g, a relocated sector's old slot still claims it (the
// acknowledged data is there); an unremapped sector's data is home before its slot lets go.
// A header that a crash left out of step with the database is put right at the next open
// (reconcile).
//
// Layout 1 devices have no room for any of it: everything here is then a no-op.

#include "remapfs/block/layer.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/block/label.hpp"

#include <atomic>
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
    // A header block was unreadable and written anew: other slots' headers in it are gone
    // until the next open rewrites them from the table.
    bool records_lost() const { return lost_.load(); }
    void records_restored() { lost_ = false; }  // reconcile wrote every header from the table
    const Label& label() const { return label_; }

    // Writes the headers (slots sharing a header block cost one read and one write), durable
    // when it returns. Callers hold the table's writer mutex: nothing else writes headers. A
    // block that cannot be read is written anew with just these headers (records_lost()).
    Result<void> write(std::span<const SlotChange> changes);
    // The label with `generation`, to the older copy, durable. After a failure the next call
    // writes the other copy.
    Result<void> commit(std::uint64_t generation);
    // Calls f for each slot of [first, first + count) in order with its header, or nullopt
    // where the header is neither blank nor this device's (torn, foreign) or its block cannot
    // be read. Reads 1 MiB at a time, block by block where that fails.
    Result<void> read(SpareSlot first, std::uint64_t count,
                      const std::function<void(SpareSlot, const std::optional<SlotHeader>&)>& f);

private:
    block::BlockLayer& physical_;
    Geometry geometry_;
    Label label_;
    std::uint64_t tag_;
    unsigned next_copy_;
    std::atomic<bool> lost_{false};
};

}  // namespace remapfs::remap
