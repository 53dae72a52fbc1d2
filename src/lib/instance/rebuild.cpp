#include "remapfs/instance/rebuild.hpp"

#include "remapfs/block/backing.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/remap/spare_meta.hpp"
#include "remapfs/sys/storage_id.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <ctime>
#include <stdexcept>

namespace remapfs {
namespace {

using std::runtime_error;

struct Found {
    Layout layout;
    LabelsOnDisk labels;
};

// The device's label where the database, or the options as the device was mounted, put it.
Found find_device(const std::optional<db::DeviceIdentity>& id, const RebuildOptions& o, const sys::OpenedFile& backing,
                  const std::optional<sys::OpenedFile>& spare, const std::string& spare_where) {
    const int spare_fd = spare ? spare->fd.get() : backing.fd.get();
    Found f;
    if (id) {
        f.layout.g = id->geometry();
        f.layout.spare_offset = id->spare_offset.v;
        f.labels = read_labels(spare_fd, f.layout.spare_offset, f.layout.g, spare_where);
        return f;
    }
    // No database to say where: as a first mount with these options would have put it. A tail
    // spare's label moves with the sector size's rounding, so both are tried unless given.
    std::vector<std::uint32_t> sizes = o.sector_size ? std::vector<std::uint32_t>{*o.sector_size}
                                                     : std::vector<std::uint32_t>{4096, 512};
    for (std::uint32_t ss : sizes) {
        LayoutRequest req{o.spare_size, ss, backing.bytes,
                          spare ? std::optional<std::uint64_t>(spare->bytes) : std::nullopt, *o.backing_path};
        f.layout = compute_layout(req);
        f.labels = read_labels(spare_fd, f.layout.spare_offset, f.layout.g, spare_where);
        if (f.labels.spare) {
            // The label knows the geometry for sure.
            const Label& l = *f.labels.spare;
            f.layout.g = Geometry{SectorSize(l.sector_size), SectorCount{l.image_sectors}, SectorCount{l.spare_slots},
                                  l.layout};
            return f;
        }
    }
    throw runtime_error(fmt::format("no remapfs label on {} where a first mount with these options puts it; give "
                                    "--spare-size and --sector-size as the device was mounted", spare_where));
}

}  // namespace

RebuildResult rebuild_database(const RebuildOptions& o) {
    RebuildResult res;
    const bool db_exists = ::access(o.db_path.c_str(), F_OK) == 0;
    std::optional<db::Store> store;
    std::optional<db::DeviceIdentity> id;
    if (db_exists) {
        store.emplace(db::Store::open(o.db_path, false, false));
        id = store->identity();
    }
    const std::optional<std::string> backing_path = o.backing_path ? o.backing_path
                                                    : id ? std::optional<std::string>(id->backing_path)
                                                         : std::nullopt;
    if (!backing_path)
        throw runtime_error(fmt::format("database {} {}: give the backing too (remapctl --db {} --backing PATH recover)",
                                        o.db_path, db_exists ? "has no device" : "does not exist", o.db_path));
    const std::optional<std::string> spare_path = o.spare_path ? o.spare_path : id ? id->spare_path : std::nullopt;
    sys::OpenedFile backing = sys::open_storage(*backing_path, "backing", false, o.backing_io);
    std::optional<sys::OpenedFile> spare;
    if (spare_path)
        spare = sys::open_storage(*spare_path, "spare", false, backing.direct ? sys::BackingIo::direct : sys::BackingIo::buffered);
    const std::string spare_where = spare_path ? *spare_path : *backing_path;

    Found dev = find_device(id, o, backing, spare, spare_where);
    if (!dev.labels.spare)
        throw runtime_error(fmt::format("{} carries no remapfs label where database {} says it is", spare_where, o.db_path));
    const Label& label = *dev.labels.spare;
    if (id && label.uuid != id->uuid)
        throw runtime_error(fmt::format("{} belongs to remapfs device {}, but database {} is for device {}", spare_where,
                                        label.uuid, o.db_path, id->uuid));
    if (id && id->initialised && id->generation >= label.generation && !o.force)
        throw runtime_error(fmt::format(
            "database {} is not older than the device (generation {}, the label's {}): it is the one to trust; mount "
            "it and the mount puts the device's own record in step (--force rebuilds from the device anyway)",
            o.db_path, id->generation, label.generation));
    if (!dev.layout.g.self_describing())
        throw runtime_error(fmt::format("device {} was made by remapfs 0.1 (layout 1): its spare area keeps no slot "
                                        "headers, so its table cannot be rebuilt from it", label.uuid));
    // A separate spare's backing carries no label; the database's record of it is all there is.
    const sys::StorageId backing_id = sys::StorageId::of(*backing_path);
    if (spare && id && id->backing_id && !sys::StorageId::parse(*id->backing_id).same_as(backing_id))
        throw runtime_error(fmt::format("backing {} is not the one database {} was made for (that was {}, this is {})",
                                        *backing_path, o.db_path, *id->backing_id, backing_id.text()));

    block::Backing bottom(dev.layout.g, backing.fd.get(), spare ? spare->fd.get() : -1,
                          ByteOffset{dev.layout.spare_offset}, backing.direct);
    remap::SpareMeta meta(bottom, dev.layout.g, label, dev.labels.newest_copy);
    auto rep = remap::rebuild(meta, dev.layout.g);
    if (!rep) throw runtime_error(fmt::format("reading the slot headers of {}: {}", spare_where, errno_name(rep.error())));

    res.uuid = label.uuid;
    res.generation = label.generation;
    res.report = std::move(*rep);
    if (!store) {
        store.emplace(db::Store::open(o.db_path, true, false));
        res.created_db = true;
    }
    if (!id) {
        db::DeviceIdentity d;
        d.uuid = label.uuid;
        d.backing_path = sys::canonical(*backing_path);
        d.backing_bytes = ByteCount{backing.bytes};
        d.sector_size = label.sector_size;
        d.image_sectors = SectorCount{label.image_sectors};
        if (spare_path) d.spare_path = sys::canonical(*spare_path);
        d.spare_offset = ByteOffset{dev.layout.spare_offset};
        d.spare_slots = SectorCount{label.spare_slots};
        d.created = std::time(nullptr);
        d.layout = label.layout;
        d.generation = label.generation;
        if (spare) d.backing_id = backing_id.text();
        store->bind(d);
    } else {
        res.remaps_before = store->remap_count();
        res.generation_before = id->generation;
        if (!id->initialised) store->set_initialised();  // a first mount cut off after its labels
    }
    store->replace_remap_state(res.report.state);
    store->set_dirty(false);  // the headers say what the table says now
    return res;
}

}  // namespace remapfs
