#include "remapfs/remap/recover.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace remapfs::remap {
namespace {

using State = SlotHeader::State;
constexpr std::size_t kBatch = 4096;  // header changes per write call

// Collects header changes and writes them in batches (slot order: one pass over the blocks).
class Fixes {
public:
    explicit Fixes(SpareMeta& m) : meta_(m) {}
    void add(SpareSlot s, SlotHeader h) {
        pending_.push_back({s, h});
        ++count_;
    }
    Result<void> maybe_flush() { return pending_.size() >= kBatch ? flush() : ok(); }
    Result<void> flush() {
        auto r = meta_.write(pending_);
        pending_.clear();
        return r;
    }
    std::uint64_t count() const { return count_; }

private:
    SpareMeta& meta_;
    std::vector<SlotChange> pending_;
    std::uint64_t count_ = 0;
};

}  // namespace

Result<ReconcileReport> reconcile(SpareMeta& meta, const Table& table, SpareSlot next_slot,
                                  std::span<const SpareSlot> retired, std::uint64_t generation) {
    ReconcileReport rep;
    if (!meta.enabled()) return rep;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> by_slot;  // (slot, lba), memory ∝ remaps
    by_slot.reserve(table.slots_used());
    for (const Entry& e : table.all())
        if (e.remapped()) by_slot.push_back({e.slot.v, e.lba.v});
    std::sort(by_slot.begin(), by_slot.end());
    auto mapped = by_slot.begin();
    auto ret = retired.begin();
    Fixes fixes(meta);
    Result<void> write_error = ok();
    // Slots past next_slot were never handed out, but a remap that crashed before committing
    // wrote its header on the next one.
    auto r = meta.read(SpareSlot{0}, next_slot.v + 1, [&](SpareSlot s, const std::optional<SlotHeader>& h) {
        ++rep.checked;
        while (mapped != by_slot.end() && mapped->first < s.v) ++mapped;
        while (ret != retired.end() && *ret < s) ++ret;
        SlotHeader want{};
        bool ok_as_is;
        if (mapped != by_slot.end() && mapped->first == s.v) {
            want = {State::mapped, Lba{mapped->second}, generation};
            ok_as_is = h && h->state == State::mapped && h->lba == want.lba && h->generation <= generation;
        } else if (ret != retired.end() && *ret == s) {
            want = {State::retired, Lba{0}, generation};
            ok_as_is = h && h->state == State::retired;
        } else {
            ok_as_is = h && h->state == State::blank;
        }
        if (ok_as_is) return;
        fixes.add(s, want);
        if (write_error) write_error = fixes.maybe_flush();
    });
    if (!r) return Errno{r.error()};
    if (write_error) write_error = fixes.flush();
    if (!write_error) return Errno{write_error.error()};
    rep.fixed = fixes.count();
    meta.records_restored();  // an unreadable block read as all invalid, so all of it was rewritten
    if (meta.generation() < generation) {
        REMAPFS_TRY(meta.commit(generation));
        rep.label_caught_up = true;
    }
    return rep;
}

Result<RebuildReport> rebuild(SpareMeta& meta, const Geometry& g) {
    RebuildReport rep;
    if (!meta.enabled()) return Errno{EOPNOTSUPP};
    const std::uint64_t label_gen = meta.generation();
    struct Best {
        std::uint64_t generation, slot;
    };
    std::unordered_map<std::uint64_t, Best> best;  // lba -> winning header so far
    std::vector<SpareSlot> retired;
    std::vector<std::uint64_t> blank_these;
    auto r = meta.read(SpareSlot{0}, g.spare_slots.v, [&](SpareSlot s, const std::optional<SlotHeader>& h) {
        ++rep.headers_read;
        if (!h) {
            ++rep.unreadable;
            blank_these.push_back(s.v);
            return;
        }
        if (h->state == State::retired) return retired.push_back(s);
        if (h->state != State::mapped) return;
        if (!g.contains(h->lba)) {
            ++rep.out_of_range;
            blank_these.push_back(s.v);
            return;
        }
        if (h->generation > label_gen) {
            ++rep.uncommitted;
            blank_these.push_back(s.v);
            return;
        }
        auto [it, fresh] = best.try_emplace(h->lba.v, Best{h->generation, s.v});
        if (fresh) return;
        ++rep.superseded;
        if (h->generation > it->second.generation) {
            blank_these.push_back(it->second.slot);
            it->second = {h->generation, s.v};
        } else {
            blank_these.push_back(s.v);
        }
    });
    if (!r) return Errno{r.error()};

    db::RebuiltState& st = rep.state;
    for (const auto& [lba, b] : best) st.remaps.push_back({Lba{lba}, SpareSlot{b.slot}});
    std::sort(st.remaps.begin(), st.remaps.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    st.retired = std::move(retired);
    std::vector<SpareSlot> used;
    used.reserve(st.remaps.size() + st.retired.size());
    for (const auto& m : st.remaps) used.push_back(m.second);
    used.insert(used.end(), st.retired.begin(), st.retired.end());
    std::sort(used.begin(), used.end());
    st.next_slot = used.empty() ? SpareSlot{0} : SpareSlot{used.back().v + 1};
    for (std::uint64_t s = 0, k = 0; s < st.next_slot.v; ++s) {
        if (k < used.size() && used[k].v == s) {
            ++k;
            continue;
        }
        st.free_slots.push_back(SpareSlot{s});
    }
    st.generation = label_gen;

    std::sort(blank_these.begin(), blank_these.end());
    Fixes fixes(meta);
    for (std::uint64_t s : blank_these) {
        fixes.add(SpareSlot{s}, {});
        REMAPFS_TRY(fixes.maybe_flush());
    }
    REMAPFS_TRY(fixes.flush());
    return rep;
}

}  // namespace remapfs::remap
