#include "remapfs/remap/table_load.hpp"

#include <fmt/format.h>

#include <climits>
#include <stdexcept>

namespace remapfs::remap {

Table load_table(db::Store& store, const Geometry& g) {
    const std::vector<db::PendingRow> pending = store.pending();
    auto p = pending.begin();
    Table::Builder table;
    auto add_pending_below = [&](std::uint64_t lba) {
        for (; p != pending.end() && p->lba.v < lba; ++p)
            if (g.contains(p->lba)) table.add({p->lba, SpareSlot{0}, Entry::State::none, true});
    };
    store.each_remap([&](Lba lba, SpareSlot slot) {
        if (!g.contains(lba) || !g.contains(slot))
            throw std::runtime_error(fmt::format("database {}: remap of sector {} to slot {} lies outside the device",
                                                 store.path(), lba.v, slot.v));
        add_pending_below(lba.v);
        const bool is_pending = p != pending.end() && p->lba == lba;
        if (is_pending) ++p;
        table.add({lba, slot, Entry::State::active, is_pending});
    });
    add_pending_below(UINT64_MAX);
    return std::move(table).finish();
}

}  // namespace remapfs::remap
