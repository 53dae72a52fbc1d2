#include "remapfs/instance/binding.hpp"

#include "remapfs/block/label.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/sys/contents.hpp"
#include "remapfs/sys/storage_id.hpp"

#include <fmt/format.h>

#include <ctime>
#include <stdexcept>

namespace remapfs {
namespace {

using std::runtime_error;

// Where the device's labels are, for reading and messages.
struct LabelPlace {
    int fd;                    // the file holding the spare label (the backing for a tail spare)
    std::uint64_t offset;
    std::uint64_t file_bytes;
    std::string where;         // its path
    bool separate;             // a spare of its own: the backing carries no label
};

// The labels on disk against the database that claims them. Throws with one line.
void check_bound(const db::DeviceIdentity& id, const LabelsOnDisk& found, const Geometry& g, const LabelPlace& at,
                 const std::string& db_path) {
    if (!found.spare)
        throw runtime_error(fmt::format("{} carries no remapfs label where database {} expects it: the database "
                                        "belongs to another {}", at.where, db_path, at.separate ? "spare" : "backing"));
    const Label& l = *found.spare;
    if (l.uuid != id.uuid)
        throw runtime_error(fmt::format("{} belongs to remapfs device {}, but database {} is for device {}", at.where,
                                        l.uuid, db_path, id.uuid));
    if (l.sector_size != id.sector_size || l.image_sectors != id.image_sectors.v || l.spare_slots != id.spare_slots.v ||
        l.layout != id.layout)
        throw runtime_error(fmt::format("the label on {} disagrees with database {} about the layout", at.where, db_path));
    const Label::Role want = at.separate ? Label::Role::spare : Label::Role::tail;
    if (g.self_describing() && l.role != want)
        throw runtime_error(fmt::format("{} carries the {} label of device {}, not a {} label: were the backing and "
                                        "the spare swapped?", at.where, to_string(l.role), l.uuid, to_string(want)));
    if (g.self_describing() && l.generation > id.generation)
        throw runtime_error(fmt::format(
            "database {} is older than the device: its remap table is at generation {}, the label on {} at {} (a "
            "restored backup or a rolled-back VM?), and it would serve remapped sectors from their old places; "
            "rebuild the table from the device with: remapctl --db {} recover",
            db_path, id.generation, at.where, l.generation, db_path));
}

// With a separate spare the backing carries no label (the image is all of it): the database
// knows it by its identity, and a changed one is another disk unless the operator says not.
void check_backing_identity(db::Store& store, const db::DeviceIdentity& id, const std::string& backing,
                            const std::string& db_path, bool rebind, bool read_only) {
    const sys::StorageId now = sys::StorageId::of(backing);
    if (id.backing_id && !id.backing_id->empty()) {
        const sys::StorageId then = sys::StorageId::parse(*id.backing_id);
        if (!then.same_as(now)) {
            if (!rebind)
                throw runtime_error(fmt::format(
                    "backing {} is not the one database {} was made for: that was {}, this is {}; were two disks "
                    "swapped? (if the backing was copied or moved on purpose, mount once with -o rebind)",
                    backing, db_path, then.text(), now.empty() ? "unknown" : now.text()));
            log::warning("backing {} is now {} (was {}): recorded, as -o rebind says", backing, now.text(), then.text());
        }
    }
    if (!now.has_stable_name() && !id.backing_id)
        log::warning("backing {} has no stable name (no WWN, serial or inode to go by): nothing tells it apart from "
                     "another disk of the same size", backing);
    if (!read_only && id.backing_id != std::optional<std::string>(now.text())) store.set_backing_id(now.text());
}

// A first use may take only a spare area that holds nothing (or, after a crash half-way
// through an earlier first use, this device's own labels).
void check_first_use(const std::optional<db::DeviceIdentity>& id, const LabelsOnDisk& found, const Geometry& g,
                     const LabelPlace& at, const std::string& db_path, bool force) {
    const bool ours = id && found.spare && found.spare->uuid == id->uuid;
    if (found.spare && !ours && !force)
        throw runtime_error(fmt::format(
            "{} already belongs to remapfs device {} whose database is not {}: give its database with -o db=, "
            "rebuild one from the device with remapctl recover, or give -o force to start over (its remaps are lost)",
            at.where, found.spare->uuid, db_path));
    if (ours || force) return;
    if (auto what = sys::describe_contents(at.fd, at.offset, g.spare_region_bytes().v, at.file_bytes))
        throw runtime_error(fmt::format("{} holds {} in the {} bytes from byte {} where remapfs would put its spare "
                                        "area; give -o force to overwrite it", at.where, *what,
                                        g.spare_region_bytes().v, at.offset));
}

// The layout the database records, checked against what the files and options say now.
Layout recorded_layout(const BindRequest& r, const db::DeviceIdentity& id) {
    if (r.sector_size && *r.sector_size != id.sector_size)
        throw runtime_error(fmt::format("database {} was made with sector_size={}, not {}", r.db_path, id.sector_size,
                                        *r.sector_size));
    if (r.backing.bytes != id.backing_bytes.v)
        throw runtime_error(fmt::format("backing {} has {} bytes but database {} was made for one of {} bytes",
                                        r.backing_path, r.backing.bytes, r.db_path, id.backing_bytes.v));
    Layout layout;
    layout.g = id.geometry();
    layout.spare_offset = id.spare_offset.v;
    if (r.spare_size) {
        LayoutRequest req{r.spare_size, id.sector_size, r.backing.bytes,
                          r.spare ? std::optional<std::uint64_t>(r.spare->bytes) : std::nullopt, r.backing_path, id.layout};
        if (compute_layout(req).g.spare_slots != layout.g.spare_slots)
            throw runtime_error(fmt::format("spare_size does not match database {} ({} spare slots of {} bytes)",
                                            r.db_path, id.spare_slots.v, id.sector_size));
    }
    const std::uint64_t spare_file_bytes = r.spare ? r.spare->bytes : r.backing.bytes;
    if (layout.spare_offset + layout.g.spare_region_bytes().v > spare_file_bytes)
        throw runtime_error(fmt::format("the spare area recorded in {} does not fit its file", r.db_path));
    return layout;
}

}  // namespace

Bound bind_device(const BindRequest& r, db::Store& store, const std::function<void()>& on_bound) {
    std::optional<db::DeviceIdentity> id = store.identity();
    if (!id && r.read_only)
        throw runtime_error(fmt::format("database {} is not initialised; mount read-write once first", r.db_path));
    Bound b;
    b.layout = id ? recorded_layout(r, *id)
                  : compute_layout({r.spare_size, r.sector_size, r.backing.bytes,
                                    r.spare ? std::optional<std::uint64_t>(r.spare->bytes) : std::nullopt, r.backing_path});
    const Geometry& g = b.layout.g;
    const std::uint32_t ss = g.sector_size.bytes();
    if (ss < r.backing.logical_block || (r.spare && ss < r.spare->logical_block))
        throw runtime_error(fmt::format("sector_size={} is smaller than the device's logical block size", ss));

    const LabelPlace at{r.spare ? r.spare->fd.get() : r.backing.fd.get(), b.layout.spare_offset,
                        r.spare ? r.spare->bytes : r.backing.bytes, r.spare_path.value_or(r.backing_path),
                        r.spare != nullptr};
    b.labels = read_labels(at.fd, at.offset, g, at.where);
    if (id && id->initialised) {
        check_bound(*id, b.labels, g, at, r.db_path);
        if (id->backing_path != r.backing_real)
            log::info("backing {} was recorded as {}; the label matches, using it", r.backing_real, id->backing_path);
        id->backing_path = r.backing_real;
    } else {
        if (r.read_only)
            throw runtime_error(fmt::format("database {} is not initialised; mount read-write once first", r.db_path));
        check_first_use(id, b.labels, g, at, r.db_path, r.force);
        if (!id) {
            db::DeviceIdentity d;
            d.uuid = db::new_uuid();
            d.backing_path = r.backing_real;
            d.backing_bytes = ByteCount{r.backing.bytes};
            d.sector_size = ss;
            d.image_sectors = g.image_sectors;
            if (r.spare_path) d.spare_path = sys::canonical(*r.spare_path);
            d.spare_offset = ByteOffset{b.layout.spare_offset};
            d.spare_slots = g.spare_slots;
            d.created = std::time(nullptr);
            d.layout = g.layout;
            d.dirty = true;
            d.initialised = false;
            store.bind(d);
            id = d;
            on_bound();
        }
        write_labels(at.fd, at.offset, g, id->uuid, at.separate ? Label::Role::spare : Label::Role::tail, at.where);
        store.set_initialised();
        id->initialised = true;
        b.labels = read_labels(at.fd, at.offset, g, at.where);
        if (!b.labels.spare || b.labels.spare->uuid != id->uuid)
            throw runtime_error(fmt::format("the label just written to {} does not read back", at.where));
        log::info("initialised device {} on {}: {} sectors of {} bytes, {} spare slots", id->uuid, r.backing_path,
                  id->image_sectors.v, ss, id->spare_slots.v);
    }
    if (at.separate) check_backing_identity(store, *id, r.backing_real, r.db_path, r.rebind, r.read_only);
    b.was_dirty = id->dirty;
    b.identity = *id;
    return b;
}

}  // namespace remapfs
