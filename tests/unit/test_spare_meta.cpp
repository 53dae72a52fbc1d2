// The spare area's own record: slot headers and label generations written with every change,
// the table rebuilt from them, and a crash's leftovers put right.
#include <doctest/doctest.h>

#include "fixtures.hpp"
#include "remapfs/remap/recover.hpp"

#include <map>

using namespace remapfs;

namespace {

std::map<std::uint64_t, SlotHeader> headers(test::MemStack& s) {
    std::map<std::uint64_t, SlotHeader> m;
    REQUIRE(s.meta->read(SpareSlot{0}, s.g.spare_slots.v, [&](SpareSlot slot, const std::optional<SlotHeader>& h) {
        REQUIRE(h);
        if (h->state != SlotHeader::State::blank) m[slot.v] = *h;
    }));
    return m;
}

std::uint64_t label_generation(test::MemStack& s, unsigned copy) {
    std::array<std::byte, 4096> raw{};
    auto v = s.mem->raw(s.g.label_offset(copy), kLabelBytes);
    std::copy(v.begin(), v.end(), raw.begin());
    auto l = Label::decode(raw);
    return l ? l->generation : 0;
}

void put_header(test::MemStack& s, SpareSlot slot, SlotHeader h) {
    REQUIRE(s.meta->write(std::array{remap::SlotChange{slot, h}}));
}

using State = SlotHeader::State;

}  // namespace

TEST_CASE("every change writes its slot headers and then the label's generation") {
    test::MemStack s(4096, 64, 8);
    auto d = test::pattern(4096, 1);
    REQUIRE(s.layer->pwrite(d, ByteOffset{5 * 4096}));
    REQUIRE(s.remapper->remap(Lba{5}, db::RemapReason::manual));
    auto h = headers(s);
    REQUIRE(h.size() == 1);
    CHECK(h[0] == SlotHeader{State::mapped, Lba{5}, 1});
    CHECK(s.remapper->generation() == 1);
    CHECK(s.meta->generation() == 1);
    CHECK(std::max(label_generation(s, 0), label_generation(s, 1)) == 1);

    REQUIRE(s.remapper->unremap(Lba{5}));
    CHECK(headers(s).empty());
    CHECK(s.meta->generation() == 2);
    // Both copies are written in turn: the older one each time.
    CHECK(std::set{label_generation(s, 0), label_generation(s, 1)} == std::set<std::uint64_t>{1, 2});

    // A slot that fails a write is marked retired; its successor mapped.
    s.inject({{"sectors", "9"}, {"op", "write"}});
    s.inject({{"sectors", "0"}, {"target", "spare"}, {"op", "write"}});
    REQUIRE(s.layer->pwrite(d, ByteOffset{9 * 4096}));
    h = headers(s);
    CHECK(h[0].state == State::retired);
    CHECK(h[1] == SlotHeader{State::mapped, Lba{9}, 3});
}

TEST_CASE("the table is rebuilt from the slot headers alone") {
    test::MemStack s(4096, 256, 32);
    auto d = test::pattern(4096, 2);
    for (std::uint64_t l : {3ull, 10ull, 11ull, 40ull, 200ull}) {
        REQUIRE(s.layer->pwrite(d, ByteOffset{l * 4096}));
        REQUIRE(s.remapper->remap(Lba{l}, db::RemapReason::manual));
    }
    REQUIRE(s.remapper->unremap(Lba{11}));  // slot 2 freed
    // A remapped sector whose slot fails moves: its old slot is retired.
    s.inject({{"sectors", "3"}, {"target", "spare"}, {"op", "write"}});
    REQUIRE(s.layer->pwrite(d, ByteOffset{40 * 4096}));
    s.faults->clear();

    auto rep = remap::rebuild(*s.meta, s.g);
    REQUIRE(rep);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> want, got;
    for (const auto& r : s.store->remaps()) want.push_back({r.lba.v, r.slot.v});
    for (const auto& [lba, slot] : rep->state.remaps) got.push_back({lba.v, slot.v});
    CHECK(got == want);
    CHECK(rep->state.retired == s.store->retired_slots());
    CHECK(rep->state.generation == s.remapper->generation());
    CHECK(rep->state.next_slot == s.store->allocator().next_slot);
    CHECK(rep->state.free_slots == s.store->allocator().free_slots);
    CHECK(rep->uncommitted == 0);
    CHECK(rep->superseded == 0);
}

TEST_CASE("a header of a change that never committed is ignored and blanked; a newer one wins") {
    test::MemStack s(4096, 64, 16);
    auto d = test::pattern(4096, 3);
    REQUIRE(s.layer->pwrite(d, ByteOffset{7 * 4096}));
    REQUIRE(s.remapper->remap(Lba{7}, db::RemapReason::manual));  // slot 0, generation 1
    const std::uint64_t g = s.meta->generation();
    put_header(s, SpareSlot{1}, {State::mapped, Lba{8}, g + 1});  // crashed before its commit
    put_header(s, SpareSlot{2}, {State::mapped, Lba{7}, g - 1});  // an older home of sector 7
    put_header(s, SpareSlot{3}, {State::mapped, Lba{999}, g});    // outside the image
    auto rep = remap::rebuild(*s.meta, s.g);
    REQUIRE(rep);
    REQUIRE(rep->state.remaps.size() == 1);
    CHECK(rep->state.remaps[0] == std::pair{Lba{7}, SpareSlot{0}});
    CHECK(rep->uncommitted == 1);
    CHECK(rep->superseded == 1);
    CHECK(rep->out_of_range == 1);
    auto h = headers(s);
    CHECK(h.size() == 1);  // the leftovers can never win later
    CHECK(rep->state.next_slot == SpareSlot{1});
}

TEST_CASE("after an unclean session the headers are put in step with the table") {
    test::MemStack s(4096, 64, 16);
    auto d = test::pattern(4096, 4);
    for (std::uint64_t l : {1ull, 2ull, 3ull}) {
        REQUIRE(s.layer->pwrite(d, ByteOffset{l * 4096}));
        REQUIRE(s.remapper->remap(Lba{l}, db::RemapReason::manual));
    }
    const std::uint64_t g = s.remapper->generation();
    put_header(s, SpareSlot{3}, {State::mapped, Lba{50}, g + 1});  // the next slot: a remap cut off
    put_header(s, SpareSlot{1}, {});                               // an unremap's blank, not committed
    auto rep = remap::reconcile(*s.meta, *s.tables.load(), s.store->allocator().next_slot, s.store->retired_slots(), g);
    REQUIRE(rep);
    CHECK(rep->checked == 4);
    CHECK(rep->fixed == 2);
    auto h = headers(s);
    CHECK(h.size() == 3);
    CHECK(h[1] == SlotHeader{State::mapped, Lba{2}, g});
    CHECK_FALSE(h.count(3));
    // Nothing to do the second time.
    rep = remap::reconcile(*s.meta, *s.tables.load(), s.store->allocator().next_slot, s.store->retired_slots(), g);
    REQUIRE(rep);
    CHECK(rep->fixed == 0);
}

TEST_CASE("a relocation cut off before its label keeps the old slot as the sector's home") {
    // The power goes after the relocation's commit, just before the label moves: the new slot's
    // header is above the label (uncommitted for a rebuild), so the old slot must still claim
    // the sector, or a rebuild sends it to its failed place and loses every acknowledged write.
    test::MemStack s(4096, 64, 16);
    REQUIRE(s.layer->pwrite(test::pattern(4096, 10), ByteOffset{5 * 4096}));
    REQUIRE(s.remapper->remap(Lba{5}, db::RemapReason::manual));  // slot 0, generation 1
    const auto acked = test::pattern(4096, 11);
    REQUIRE(s.layer->pwrite(acked, ByteOffset{5 * 4096}));  // lives in slot 0
    std::vector<std::byte> at_cut;
    s.tap->before_write = [&](ByteOffset off) {
        if (at_cut.empty() && (off == s.g.label_offset(0) || off == s.g.label_offset(1)))
            at_cut = s.mem->raw(ByteOffset{0}, s.g.physical_bytes());
    };
    s.inject({{"sectors", "0"}, {"target", "spare"}, {"op", "write"}});
    REQUIRE(s.layer->pwrite(test::pattern(4096, 12), ByteOffset{5 * 4096}));  // relocated to slot 1
    s.faults->clear();
    REQUIRE(!at_cut.empty());
    block::MemoryBacking after(s.g.physical_bytes());  // the device as the power cut left it
    REQUIRE(after.pwrite(at_cut, ByteOffset{0}));
    remap::SpareMeta fresh(after, s.g, Label{"0123456789abcdef", 4096, 64, 16, s.g.layout, Label::Role::tail, 1}, 0);
    auto rep = remap::rebuild(fresh, s.g);
    REQUIRE(rep);
    REQUIRE(rep->state.remaps.size() == 1);
    CHECK(rep->state.remaps[0] == std::pair{Lba{5}, SpareSlot{0}});
    CHECK(after.raw(s.g.slot_offset(SpareSlot{0}), s.g.sector_size.count()) == acked);
}

TEST_CASE("a remap's header that no reconcile removed cannot pass for committed later") {
    // The reviewer's case: a remap cut off before its commit leaves {30, g+1} on the next slot.
    // Unreconciled, the next change's g+1 would make it look committed. Reconcile removes it,
    // and when it cannot, the device stays marked and the generation never comes back.
    test::MemStack s(4096, 64, 16);
    auto d = test::pattern(4096, 20);
    REQUIRE(s.layer->pwrite(d, ByteOffset{1 * 4096}));
    REQUIRE(s.remapper->remap(Lba{1}, db::RemapReason::manual));  // slot 0, generation 1
    REQUIRE(s.layer->pwrite(d, ByteOffset{2 * 4096}));
    REQUIRE(s.remapper->remap(Lba{2}, db::RemapReason::manual));  // slot 1, generation 2
    REQUIRE(s.remapper->unremap(Lba{2}));          // slot 1 freed, generation 3
    const std::uint64_t g = s.remapper->generation();
    put_header(s, SpareSlot{2}, {State::mapped, Lba{30}, g + 1});
    auto rec = remap::reconcile(*s.meta, *s.tables.load(), s.store->allocator().next_slot, s.store->retired_slots(), g);
    REQUIRE(rec);
    CHECK(rec->fixed == 1);
    REQUIRE(s.layer->pwrite(d, ByteOffset{5 * 4096}));
    REQUIRE(s.remapper->remap(Lba{5}, db::RemapReason::manual));
    auto rep = remap::rebuild(*s.meta, s.g);
    REQUIRE(rep);
    CHECK(rep->state.remaps.size() == 2);  // 1 and 5 only
}

TEST_CASE("an unreadable header block is written anew and the record marked behind until reconciled") {
    test::MemStack s(4096, 64, 300);
    auto d = test::pattern(4096, 30);
    for (std::uint64_t l : {1ull, 2ull}) {
        REQUIRE(s.layer->pwrite(d, ByteOffset{l * 4096}));
        REQUIRE(s.remapper->remap(Lba{l}, db::RemapReason::manual));
    }
    const std::uint64_t block0 = s.g.header_block_offset(0).v / 4096;
    s.inject({{"sectors", std::to_string(block0)}, {"op", "read"}});
    REQUIRE(s.layer->pwrite(d, ByteOffset{3 * 4096}));
    REQUIRE(s.remapper->remap(Lba{3}, db::RemapReason::manual));
    CHECK(s.remapper->records_behind());  // slots 0 and 1 lost their headers with the block
    s.faults->clear();
    CHECK(headers(s).size() == 1);
    s.inject({{"sectors", std::to_string(block0)}, {"op", "read"}, {"after_ops", 0}, {"probability", 1.0}});
    auto rec = remap::reconcile(*s.meta, *s.tables.load(), s.store->allocator().next_slot, s.store->retired_slots(),
                                s.remapper->generation());
    REQUIRE(rec);
    s.faults->clear();
    CHECK_FALSE(s.meta->records_lost());
    CHECK(headers(s).size() == 3);
}

TEST_CASE("a label copy that fails is skipped: the other one takes the generation") {
    test::MemStack s(4096, 64, 16);
    const std::uint64_t copy_b = s.g.label_offset(1).v / 4096;  // the first one written (MemStack says A is newest)
    s.inject({{"sectors", std::to_string(copy_b)}, {"op", "write"}});
    REQUIRE(s.layer->pwrite(test::pattern(4096, 40), ByteOffset{4 * 4096}));
    REQUIRE(s.remapper->remap(Lba{4}, db::RemapReason::manual));
    CHECK(s.meta->generation() == 1);
    CHECK(label_generation(s, 0) == 1);
    CHECK_FALSE(s.remapper->records_behind());
}
