#pragma once
// The remap table as an open finds it: one pass over the store's remaps in lba order, with the
// (few) pending sectors merged in. Throws std::runtime_error where a row lies outside the device.

#include "remapfs/block/geometry.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/remap/table.hpp"

namespace remapfs::remap {

Table load_table(db::Store& store, const Geometry& g);

}  // namespace remapfs::remap
