#include "remapfs/instance/instance.hpp"

#include "remapfs_config.h"

#include "remapfs/control/control.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/instance/binding.hpp"
#include "remapfs/remap/recover.hpp"
#include "remapfs/remap/table_load.hpp"

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
    // Storage: the backing, the database, and the spare the database (or the options) name.
    OpenedFile backing = sys::open_storage(o.backing_path, "backing", o.read_only, o.backing_io);
    in->direct_ = backing.direct;
    const std::string backing_real = canonical(o.backing_path);
    in->db_path_ = db_path_for(o);
    if (!o.db_path && backing.block) ::mkdir("/var/lib/remapfs", 0700);
    NewDbGuard guard{in->db_path_, &in->store_};
    guard.armed = ::access(in->db_path_.c_str(), F_OK) != 0;
    in->store_.emplace(db::Store::open(in->db_path_, o.create_db, o.read_only));
    const std::optional<db::DeviceIdentity> known = in->store_->identity();
    std::optional<std::string> spare_path = o.spare_path;
    if (known && !spare_path && known->spare_path) spare_path = known->spare_path;
    if (known && spare_path && !known->spare_path)
        throw runtime_error(fmt::format("database {} keeps the spare area at the tail of the backing; spare={} does "
                                        "not match it", in->db_path_, *spare_path));
    std::optional<OpenedFile> spare;
    if (spare_path) {
        spare = sys::open_storage(*spare_path, "spare", o.read_only,
                                  backing.direct ? BackingIo::direct : BackingIo::buffered);
        if (canonical(*spare_path) == backing_real) throw runtime_error("spare= must not be the backing itself");
    }

    // Which device this is, checked (binding.hpp).
    const Bound bound = bind_device({o.backing_path, backing_real, backing, spare ? &*spare : nullptr, spare_path,
                                     o.spare_size, o.sector_size, in->db_path_, o.read_only, o.force, o.rebind},
                                    *in->store_, [&] { guard.armed = false; });
    in->identity_ = bound.identity;
    in->geometry_ = bound.layout.g;
    in->tables_.publish(remap::load_table(*in->store_, in->geometry_), remap::TableHolder::Grace::skip);
    if (!o.read_only) in->store_->set_dirty(true);  // until a clean close says otherwise

    // The block stack (stack.hpp).
    in->backing_fd_ = std::move(backing.fd);
    if (spare) in->spare_fd_ = std::move(spare->fd);
    Clock& clock = o.clock ? *o.clock : SystemClock::instance();
    in->clock_ = &clock;
    const db::AllocatorState alloc = in->store_->allocator();
    in->stack_ = build_stack({in->backing_fd_.get(), in->spare_fd_.get(), ByteOffset{bound.layout.spare_offset},
                              in->direct_, o.allow_inject, o.faults, o.hdd_mb_s,
                              remap::RemapSetup{in->geometry_, in->tables_, *in->store_, alloc, o.policy, clock,
                                                *bound.labels.spare, bound.labels.newest_copy,
                                                bound.identity.generation, o.read_only}});
    in->activity_ = std::make_unique<block::Activity>(clock);
    in->stack_.remap->set_activity(in->activity_.get());
    guard.armed = false;
    if (!o.read_only && bound.was_dirty && in->geometry_.self_describing())
        in->reconcile_after_crash(alloc.next_slot);
    return in;
}

void Instance::reconcile_after_crash(SpareSlot next_slot) {
    // The last session did not end cleanly: a change may have been cut off half-way.
    remap::SpareMeta& meta = stack_.remap->spare_meta();
    auto rep = remap::reconcile(meta, *tables_.load(), next_slot, store_->retired_slots(), identity_.generation);
    if (!rep || meta.records_lost()) {
        // Left as it is, a header of a change that never committed could pass for one once the
        // label moves on: the device stays marked, and the next open tries again.
        stack_.remap->remapper().mark_records_behind();
        log::error("the last session of device {} did not end cleanly, and its slot headers could not all be put back "
                   "in step with the database{}{}; serving goes on, the next mount tries again",
                   identity_.uuid, rep ? "" : ": ", rep ? "" : errno_name(rep.error()));
    }
    if (rep && (rep->fixed || rep->label_caught_up))
        log::warning("the last session of device {} did not end cleanly: {} of {} slot headers{} put back in step with "
                     "the database", identity_.uuid, rep->fixed, rep->checked, rep->label_caught_up ? " and the label" : "");
}

control::Target Instance::control_target() {
    return {geometry_, identity_, db_path_, read_only_, stack_.remap->remapper(), *stack_.top, stack_.injector, scanner_.get()};
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
