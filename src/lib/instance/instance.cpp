#include "remapfs/instance/instance.hpp"

#include "remapfs_config.h"

#include "remapfs/block/backing.hpp"
#include "remapfs/remap/remap_layer.hpp"
#include "remapfs/block/label.hpp"
#include "remapfs/control/control.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/remap/recover.hpp"
#include "remapfs/sys/contents.hpp"
#include "remapfs/sys/storage_id.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace remapfs {
namespace {

using std::runtime_error;
using sys::canonical;
using sys::OpenedFile;

// Removes a database file this open created if the open fails, so bad input changes nothing.
struct NewDbGuard {
    std::string path;
    std::optional<db::Store>* store;
    bool armed = false;
    ~NewDbGuard() {
        if (!armed) return;
        store->reset();
        for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path + suffix).c_str());
    }
};

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
    if (l.sector_size != id.sector_size || l.image_sectors != id.image_sectors || l.spare_slots != id.spare_slots ||
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

}  // namespace

std::string default_db_path(const std::string& backing_path) {
    std::string real = canonical(backing_path);
    struct stat st {};
    if (::stat(real.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
        std::string name = real.substr(1);
        for (char& c : name)
            if (c == '/') c = '-';
        return "/var/lib/remapfs/" + name + ".db";
    }
    return real + ".remapfs.db";
}

std::string db_path_for(const InstanceOptions& o) { return o.db_path ? *o.db_path : default_db_path(o.backing_path); }

std::string control_socket_dir() { return "/run/remapfs"; }
std::string control_socket_path(const std::string& uuid) { return control_socket_dir() + "/" + uuid + ".sock"; }

std::unique_ptr<Instance> Instance::open(const InstanceOptions& o) {
    if (o.sector_size && !SectorSize::valid(*o.sector_size))
        throw runtime_error(fmt::format("sector_size={} is not supported (512 or 4096)", *o.sector_size));

    std::unique_ptr<Instance> in(new Instance());
    in->read_only_ = o.read_only;
    OpenedFile backing = sys::open_storage(o.backing_path, "backing", o.read_only, o.backing_io);
    const bool direct = backing.direct;
    in->direct_ = direct;
    const std::string backing_real = canonical(o.backing_path);

    in->db_path_ = db_path_for(o);
    if (!o.db_path && backing.block) ::mkdir("/var/lib/remapfs", 0700);
    NewDbGuard guard{in->db_path_, &in->store_};
    guard.armed = ::access(in->db_path_.c_str(), F_OK) != 0;
    in->store_.emplace(db::Store::open(in->db_path_, o.create_db, o.read_only));
    std::optional<db::DeviceIdentity> id = in->store_->identity();

    // Which spare, and the layout.
    std::optional<std::string> spare_path = o.spare_path;
    if (id && !spare_path && id->spare_path) spare_path = id->spare_path;
    if (id && spare_path && !id->spare_path)
        throw runtime_error(fmt::format("database {} keeps the spare area at the tail of the backing; spare={} does "
                                        "not match it", in->db_path_, *spare_path));
    std::optional<OpenedFile> spare;
    if (spare_path) {
        spare = sys::open_storage(*spare_path, "spare", o.read_only, direct ? BackingIo::direct : BackingIo::buffered);
        if (canonical(*spare_path) == backing_real) throw runtime_error("spare= must not be the backing itself");
    }

    LayoutRequest req{o.spare_size, o.sector_size, backing.bytes,
                      spare ? std::optional<std::uint64_t>(spare->bytes) : std::nullopt, o.backing_path};
    Layout layout;
    if (id) {
        if (o.sector_size && *o.sector_size != id->sector_size)
            throw runtime_error(fmt::format("database {} was made with sector_size={}, not {}", in->db_path_,
                                            id->sector_size, *o.sector_size));
        if (backing.bytes != id->backing_bytes)
            throw runtime_error(fmt::format("backing {} has {} bytes but database {} was made for one of {} bytes",
                                            o.backing_path, backing.bytes, in->db_path_, id->backing_bytes));
        layout.g = Geometry{SectorSize(id->sector_size), SectorCount{id->image_sectors}, SectorCount{id->spare_slots},
                            id->layout};
        layout.spare_offset = id->spare_offset;
        if (o.spare_size) {
            req.sector_size = id->sector_size;
            req.layout = id->layout;
            if (compute_layout(req).g.spare_slots != layout.g.spare_slots)
                throw runtime_error(fmt::format("spare_size does not match database {} ({} spare slots of {} bytes)",
                                                in->db_path_, id->spare_slots, id->sector_size));
        }
        const std::uint64_t spare_file_bytes = spare ? spare->bytes : backing.bytes;
        if (layout.spare_offset + layout.g.spare_region_bytes().v > spare_file_bytes)
            throw runtime_error(fmt::format("the spare area recorded in {} does not fit its file", in->db_path_));
    } else {
        if (o.read_only)
            throw runtime_error(fmt::format("database {} is not initialised; mount read-write once first", in->db_path_));
        layout = compute_layout(req);
    }
    const std::uint32_t ss = layout.g.sector_size.bytes();
    if (ss < backing.logical_block || (spare && ss < spare->logical_block))
        throw runtime_error(fmt::format("sector_size={} is smaller than the device's logical block size", ss));

    const LabelPlace at{spare ? spare->fd.get() : backing.fd.get(), layout.spare_offset,
                        spare ? spare->bytes : backing.bytes, spare_path ? *spare_path : o.backing_path, spare.has_value()};
    LabelsOnDisk found = read_labels(at.fd, at.offset, layout.g, at.where);
    if (id && id->initialised) {
        check_bound(*id, found, layout.g, at, in->db_path_);
        if (id->backing_path != backing_real)
            log::info("backing {} was recorded as {}; the label matches, using it", backing_real, id->backing_path);
        id->backing_path = backing_real;
    } else {
        if (o.read_only)
            throw runtime_error(fmt::format("database {} is not initialised; mount read-write once first", in->db_path_));
        check_first_use(id, found, layout.g, at, in->db_path_, o.force);
        if (!id) {
            // Bound first, labels second, then marked initialised: a crash in between leaves a
            // database that the next open finishes, never a label without a database.
            db::DeviceIdentity d;
            d.uuid = db::new_uuid();
            d.backing_path = backing_real;
            d.backing_bytes = backing.bytes;
            d.sector_size = ss;
            d.image_sectors = layout.g.image_sectors.v;
            if (spare_path) d.spare_path = canonical(*spare_path);
            d.spare_offset = layout.spare_offset;
            d.spare_slots = layout.g.spare_slots.v;
            d.created = std::time(nullptr);
            d.layout = layout.g.layout;
            d.dirty = true;
            d.initialised = false;
            in->store_->bind(d);
            id = d;
            // Bound: from here on a failure leaves a database the next open finishes, not a
            // label whose database was removed.
            guard.armed = false;
        }
        write_labels(at.fd, at.offset, layout.g, id->uuid, at.separate ? Label::Role::spare : Label::Role::tail,
                     at.where);
        in->store_->set_initialised();
        id->initialised = true;
        found = read_labels(at.fd, at.offset, layout.g, at.where);
        if (!found.spare || found.spare->uuid != id->uuid)
            throw runtime_error(fmt::format("the label just written to {} does not read back", at.where));
        log::info("initialised device {} on {}: {} sectors of {} bytes, {} spare slots", id->uuid, o.backing_path,
                  id->image_sectors, ss, id->spare_slots);
    }
    if (at.separate) check_backing_identity(*in->store_, *id, backing_real, in->db_path_, o.rebind, o.read_only);
    in->identity_ = *id;
    in->geometry_ = layout.g;

    // One pass over the remaps in lba order, with the (few) pending sectors merged in.
    const std::vector<db::PendingRow> pending = in->store_->pending();
    auto p = pending.begin();
    remap::Table::Builder table;
    auto add_pending_below = [&](std::uint64_t lba) {
        for (; p != pending.end() && p->lba.v < lba; ++p)
            if (layout.g.contains(p->lba)) table.add({p->lba, SpareSlot{0}, remap::Entry::State::none, true});
    };
    in->store_->each_remap([&](Lba lba, SpareSlot slot) {
        if (!layout.g.contains(lba) || !layout.g.contains(slot))
            throw runtime_error(fmt::format("database {}: remap of sector {} to slot {} lies outside the device",
                                            in->db_path_, lba.v, slot.v));
        add_pending_below(lba.v);
        const bool is_pending = p != pending.end() && p->lba == lba;
        if (is_pending) ++p;
        table.add({lba, slot, remap::Entry::State::active, is_pending});
    });
    add_pending_below(UINT64_MAX);
    in->tables_.publish(std::move(table).finish(), remap::TableHolder::Grace::skip);
    const bool was_dirty = id->dirty;
    if (!o.read_only) in->store_->set_dirty(true);  // until a clean close says otherwise

    in->backing_fd_ = std::move(backing.fd);
    if (spare) in->spare_fd_ = std::move(spare->fd);
    Clock& clock = o.clock ? *o.clock : SystemClock::instance();
    auto bottom = std::make_unique<block::Backing>(layout.g, in->backing_fd_.get(), in->spare_fd_.get(),
                                                   ByteOffset{layout.spare_offset}, direct);
    in->backing_ = bottom.get();
    std::unique_ptr<block::BlockLayer> phys = std::move(bottom);
    if (o.allow_inject) {
        auto inj = std::make_unique<block::FaultInjector>(std::move(phys), layout.g, clock);
        for (const auto& rule : o.faults) inj->add(rule);
        if (o.hdd_mb_s) inj->set_hdd_model(block::HddModel{static_cast<double>(o.hdd_mb_s)});
        in->injector_ = inj.get();
        phys = std::move(inj);
    }
    const db::AllocatorState alloc = in->store_->allocator();
    auto layer = std::make_unique<remap::RemapLayer>(
        std::move(phys), remap::RemapSetup{layout.g, in->tables_, *in->store_, alloc, o.policy, clock, *found.spare,
                                           found.newest_copy, id->generation, o.read_only});
    in->layer_ = layer.get();
    in->clock_ = &clock;
    in->activity_ = std::make_unique<block::Activity>(clock);
    layer->set_activity(in->activity_.get());
    in->stack_ = std::move(layer);
    guard.armed = false;

    // The last session did not end cleanly: a change may have been cut off half-way.
    if (!o.read_only && was_dirty && layout.g.self_describing()) {
        auto rep = remap::reconcile(in->layer_->spare_meta(), *in->tables_.load(), alloc.next_slot, in->store_->retired_slots(),
                                    id->generation);
        if (!rep || in->layer_->spare_meta().records_lost()) {
            // Left as it is, a header of a change that never committed could pass for one once
            // the label moves on: the device stays marked, and the next open tries again.
            in->layer_->remapper().mark_records_behind();
            log::error("the last session of device {} did not end cleanly, and its slot headers could not all be put "
                       "back in step with the database{}{}; serving goes on, the next mount tries again",
                       id->uuid, rep ? "" : ": ", rep ? "" : errno_name(rep.error()));
        }
        if (rep && (rep->fixed || rep->label_caught_up))
            log::warning("the last session of device {} did not end cleanly: {} of {} slot headers{} put back in step "
                         "with the database", id->uuid, rep->fixed, rep->checked,
                         rep->label_caught_up ? " and the label" : "");
    }
    return in;
}

void Instance::start_services(bool scanner, std::string_view mountpoint) {
    // A read-only mount writes nothing to its database: no history, no scanner.
    if (read_only_) return layer_->remapper().start_worker();
    // Written before anything is served, and not only for the operator: the first write after
    // SQLite opens a database starts its WAL, and that syncs the WAL header (a device cache
    // flush). Here it costs the mount a few milliseconds; left to the scanner's first
    // checkpoint it landed in the middle of user I/O and stalled it (400 ms on the bench VM).
    mount_log_id_ = store_->log_mount_start(std::time(nullptr), ::getpid(), REMAPFS_VERSION, mountpoint);
    history_ = std::make_unique<health::HistoryWriter>(db_path_, *clock_);
    if (scanner) {
        auto persist = [this](const health::ScanConfig& c) { store_->save_scan_config(c); };
        health::ScanConfig cfg;
        health::ScanCheckpoint state;
        health::PassRecord pass;
        cfg = store_->scan_config();
        state = store_->scan_state();
        pass = store_->scan_pass(state.pass);
        scanner_ = std::make_unique<health::Scanner>(*layer_, geometry_, *history_,
                                                     *activity_, *clock_, cfg, state, pass, persist, direct_);
    }
    tee_ = std::make_unique<health::TeeSink>(*history_, scanner_.get());
    layer_->remapper().set_event_sink(tee_.get());
    history_->start();
    layer_->remapper().start_worker();
    if (scanner_) scanner_->start();
}

control::Target Instance::control_target() {
    return {geometry_, identity_, db_path_, read_only_, layer_->remapper(), *stack_, injector_, scanner_.get()};
}

Instance::~Instance() {
    // Stop the producers before the history they write to.
    scanner_.reset();
    if (layer_) {
        layer_->remapper().stop_worker();
        layer_->remapper().set_event_sink(nullptr);
    }
    tee_.reset();
    history_.reset();
    if (!store_ || read_only_ || !layer_) return;
    try {
        if (mount_log_id_) store_->log_mount_stop(*mount_log_id_, std::time(nullptr));
        // Clean only if everything acknowledged is on the device and the spare's own record
        // is in step with the table; otherwise the next open checks the slot headers.
        if (stack_->flush() && !layer_->remapper().records_behind()) store_->set_dirty(false);
    } catch (const std::exception& e) {
        log::warning("cannot record the end of this session in {}: {}", db_path_, e.what());
    }
}

std::unique_ptr<Instance> Instance::open_from_db(const std::string& db_path, bool read_only) {
    db::DeviceIdentity id;
    {
        db::Store s = db::Store::open(db_path, false, ::access(db_path.c_str(), W_OK) != 0);
        auto found = s.identity();
        if (!found) throw runtime_error(fmt::format("database {} has no device yet", db_path));
        id = *found;
    }
    InstanceOptions o;
    o.backing_path = id.backing_path;
    o.db_path = db_path;
    o.spare_path = id.spare_path;
    o.read_only = read_only;
    o.create_db = false;
    return open(o);
}

}  // namespace remapfs
