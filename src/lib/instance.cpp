#include "remapfs/instance.hpp"

#include "remapfs_config.h"

#include "remapfs/block/backing.hpp"
#include "remapfs/block/remap_layer.hpp"
#include "remapfs/label.hpp"
#include "remapfs/log.hpp"
#include "remapfs/sys/io.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace remapfs {
namespace {

using std::runtime_error;

constexpr std::uint64_t kMiB = 1024 * 1024;

std::string canonical(const std::string& p) {
    char buf[PATH_MAX];
    if (!::realpath(p.c_str(), buf)) throw runtime_error(fmt::format("{}: {}", p, std::strerror(errno)));
    return buf;
}

struct OpenedFile {
    UniqueFd fd;
    std::uint64_t bytes = 0;
    bool block = false;
    std::uint32_t logical_block = 512;
};

// what: "backing" / "spare", for messages.
OpenedFile open_storage(const std::string& path, const char* what, bool read_only, BackingIo io, bool& direct) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw runtime_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        throw runtime_error(fmt::format("{} {} is not a regular file or block device", what, path));
    OpenedFile f;
    f.block = S_ISBLK(st.st_mode);
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (f.block ? O_EXCL : 0);
    int fd = -1;
    if (io != BackingIo::buffered) {
        fd = ::open(path.c_str(), flags | O_DIRECT);
        if (fd < 0 && errno == EINVAL && io == BackingIo::automatic) {
            log::info("{} {}: O_DIRECT not supported here, using buffered I/O", what, path);
        } else if (fd < 0) {
            throw runtime_error(fmt::format("cannot open {} {}: {}", what, path, std::strerror(errno)));
        }
    }
    if (fd < 0) fd = ::open(path.c_str(), flags);
    if (fd < 0) throw runtime_error(fmt::format("cannot open {} {}: {}", what, path, std::strerror(errno)));
    direct = (::fcntl(fd, F_GETFL) & O_DIRECT) != 0;
    f.fd = UniqueFd(fd);
    // One owner at a time: a second daemon or an offline remapctl would race the remap table.
    if (::flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0)
        throw runtime_error(fmt::format("{} {} is in use by another remapfs instance", what, path));
    if (f.block) {
        if (::ioctl(fd, BLKGETSIZE64, &f.bytes) != 0)
            throw runtime_error(fmt::format("{} {}: cannot read its size: {}", what, path, std::strerror(errno)));
        int lbs = 512;
        if (::ioctl(fd, BLKSSZGET, &lbs) == 0) f.logical_block = static_cast<std::uint32_t>(lbs);
    } else {
        f.bytes = static_cast<std::uint64_t>(st.st_size);
    }
    return f;
}

std::uint64_t spare_bytes_for(const SpareSize& s, std::uint64_t backing_bytes) {
    if (s.percent > 0) return static_cast<std::uint64_t>(std::ceil(static_cast<double>(backing_bytes) * s.percent / 100.0));
    return s.bytes;
}

struct Layout {
    Geometry g;
    std::uint64_t spare_offset = 0;  // of the label, in the spare's file
};

Layout compute_layout(const InstanceOptions& o, const OpenedFile& backing, const OpenedFile* spare) {
    Layout l;
    const std::uint32_t ss = o.sector_size.value_or(4096);
    l.g.sector_size = SectorSize(ss);
    if (spare) {
        std::uint64_t want = o.spare_size ? spare_bytes_for(*o.spare_size, backing.bytes) : spare->bytes;
        if (want > spare->bytes)
            throw runtime_error(fmt::format("spare_size {} is larger than the spare ({} bytes)", want, spare->bytes));
        l.g.image_sectors = SectorCount{backing.bytes / ss};
        l.spare_offset = 0;
        if (want < kLabelBytes.v + ss)
            throw runtime_error(fmt::format("spare ({} bytes) is too small: it needs {} bytes for the label plus at "
                                            "least one {}-byte slot", want, kLabelBytes.v, ss));
        l.g.spare_slots = SectorCount{(want - kLabelBytes.v) / ss};
    } else {
        std::uint64_t want = o.spare_size ? spare_bytes_for(*o.spare_size, backing.bytes)
                                          : std::max<std::uint64_t>(kMiB, backing.bytes / 100);
        if (want < kLabelBytes.v + ss)
            throw runtime_error(fmt::format("spare_size {} is too small: it needs {} bytes for the label plus at least "
                                            "one {}-byte slot", want, kLabelBytes.v, ss));
        if (want + ss > backing.bytes)
            throw runtime_error(fmt::format("backing {} ({} bytes) is too small for a spare area of {} bytes",
                                            o.backing_path, backing.bytes, want));
        std::uint64_t image = (backing.bytes - want) / ss * ss;
        l.g.image_sectors = SectorCount{image / ss};
        l.spare_offset = image;
        l.g.spare_slots = SectorCount{(backing.bytes - image - kLabelBytes.v) / ss};
    }
    if (l.g.image_sectors.v == 0) throw runtime_error(fmt::format("backing {} is too small", o.backing_path));
    return l;
}

std::array<std::byte, 4096> read_label_block(int fd, std::uint64_t offset, const std::string& where) {
    alignas(4096) std::array<std::byte, 4096> raw{};
    if (auto r = sys::pread_full(fd, raw.data(), ByteCount{raw.size()}, ByteOffset{offset}); !r)
        throw runtime_error(fmt::format("cannot read the spare label of {}: {}", where, errno_name(r.error())));
    return raw;
}

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

std::uint64_t parse_size(const std::string& s) {
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])))
        throw std::invalid_argument(fmt::format("'{}' is not a size (bytes, or a number with K, M, G or T)", s));
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    std::string unit(end);
    std::uint64_t mult = 1;
    if (unit == "" ) mult = 1;
    else if (unit == "K" || unit == "k" || unit == "KiB") mult = 1ULL << 10;
    else if (unit == "M" || unit == "MiB") mult = 1ULL << 20;
    else if (unit == "G" || unit == "GiB") mult = 1ULL << 30;
    else if (unit == "T" || unit == "TiB") mult = 1ULL << 40;
    else throw std::invalid_argument(fmt::format("'{}' is not a size (bytes, or a number with K, M, G or T)", s));
    if (errno == ERANGE || v > UINT64_MAX / mult) throw std::invalid_argument(fmt::format("size '{}' is too large", s));
    return v * mult;
}

SpareSize parse_spare_size(const std::string& s) {
    if (!s.empty() && s.back() == '%') {
        std::string num = s.substr(0, s.size() - 1);
        char* end = nullptr;
        double p = std::strtod(num.c_str(), &end);
        if (num.empty() || *end != '\0' || !(p > 0) || p > 50)
            throw std::invalid_argument(fmt::format("spare_size '{}': a percentage must be above 0 and at most 50", s));
        return {0, p};
    }
    std::uint64_t b = parse_size(s);
    if (b == 0) throw std::invalid_argument("spare_size must not be 0");
    return {b, 0};
}

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
    bool direct = false;
    OpenedFile backing = open_storage(o.backing_path, "backing", o.read_only, o.backing_io, direct);
    in->direct_ = direct;
    const std::string backing_real = canonical(o.backing_path);

    in->db_path_ = db_path_for(o);
    if (!o.db_path && backing.block) ::mkdir("/var/lib/remapfs", 0700);
    NewDbGuard guard{in->db_path_, &in->store_};
    guard.armed = ::access(in->db_path_.c_str(), F_OK) != 0;
    in->store_.emplace(db::Store::open(in->db_path_, o.create_db, o.read_only));
    auto id = in->store_->identity();

    // Which spare, and the layout.
    std::optional<std::string> spare_path = o.spare_path;
    if (id && !spare_path && id->spare_path) spare_path = id->spare_path;
    if (id && spare_path && !id->spare_path)
        throw runtime_error(fmt::format("database {} keeps the spare area at the tail of the backing; spare={} does "
                                        "not match it", in->db_path_, *spare_path));
    std::optional<OpenedFile> spare;
    bool spare_direct = false;
    if (spare_path) {
        spare = open_storage(*spare_path, "spare", o.read_only, direct ? BackingIo::direct : BackingIo::buffered,
                             spare_direct);
        if (canonical(*spare_path) == backing_real) throw runtime_error("spare= must not be the backing itself");
    }

    Layout layout;
    if (id) {
        if (o.sector_size && *o.sector_size != id->sector_size)
            throw runtime_error(fmt::format("database {} was made with sector_size={}, not {}", in->db_path_,
                                            id->sector_size, *o.sector_size));
        if (backing.bytes != id->backing_bytes)
            throw runtime_error(fmt::format("backing {} has {} bytes but database {} was made for one of {} bytes",
                                            o.backing_path, backing.bytes, in->db_path_, id->backing_bytes));
        layout.g = Geometry{SectorSize(id->sector_size), SectorCount{id->image_sectors}, SectorCount{id->spare_slots}};
        layout.spare_offset = id->spare_offset;
        if (o.spare_size) {
            InstanceOptions probe = o;
            probe.sector_size = id->sector_size;
            Layout asked = compute_layout(probe, backing, spare ? &*spare : nullptr);
            if (asked.g.spare_slots != layout.g.spare_slots)
                throw runtime_error(fmt::format("spare_size does not match database {} ({} spare slots of {} bytes)",
                                                in->db_path_, id->spare_slots, id->sector_size));
        }
        std::uint64_t spare_file_bytes = spare ? spare->bytes : backing.bytes;
        if (layout.spare_offset + layout.g.spare_region_bytes().v > spare_file_bytes)
            throw runtime_error(fmt::format("the spare area recorded in {} does not fit its file", in->db_path_));
    } else {
        if (o.read_only)
            throw runtime_error(fmt::format("database {} is not initialised; mount read-write once first", in->db_path_));
        layout = compute_layout(o, backing, spare ? &*spare : nullptr);
    }
    const std::uint32_t ss = layout.g.sector_size.bytes();
    if (ss < backing.logical_block || (spare && ss < spare->logical_block))
        throw runtime_error(fmt::format("sector_size={} is smaller than the device's logical block size", ss));

    const int label_fd = spare ? spare->fd.get() : backing.fd.get();
    const std::string label_where = spare_path ? *spare_path : o.backing_path;
    auto label = Label::decode(read_label_block(label_fd, layout.spare_offset, label_where));
    if (id) {
        if (!label)
            throw runtime_error(fmt::format("{} carries no remapfs label where database {} expects it: the database "
                                            "belongs to another backing", label_where, in->db_path_));
        if (label->uuid != id->uuid)
            throw runtime_error(fmt::format("{} belongs to remapfs device {}, but database {} is for device {}",
                                            label_where, label->uuid, in->db_path_, id->uuid));
        if (label->sector_size != id->sector_size || label->image_sectors != id->image_sectors ||
            label->spare_slots != id->spare_slots)
            throw runtime_error(fmt::format("the label on {} disagrees with database {} about the layout",
                                            label_where, in->db_path_));
        in->identity_ = *id;
        if (in->identity_.backing_path != backing_real)
            log::info("backing {} was recorded as {}; the label matches, using it", backing_real, id->backing_path);
        in->identity_.backing_path = backing_real;
    } else {
        if (label)
            throw runtime_error(fmt::format("{} already belongs to remapfs device {} whose database is not {}; "
                                            "give its database with -o db=", label_where, label->uuid, in->db_path_));
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
        Label fresh{d.uuid, ss, d.image_sectors, d.spare_slots};
        alignas(4096) auto raw = fresh.encode();
        if (auto r = sys::pwrite_full(label_fd, raw.data(), ByteCount{raw.size()}, ByteOffset{d.spare_offset}); !r)
            throw runtime_error(fmt::format("cannot write the spare label to {}: {}", label_where, errno_name(r.error())));
        if (auto r = sys::fdatasync(label_fd); !r)
            throw runtime_error(fmt::format("cannot sync {}: {}", label_where, errno_name(r.error())));
        in->store_->bind(d);
        in->identity_ = d;
        log::info("initialised device {} on {}: {} sectors of {} bytes, {} spare slots", d.uuid, o.backing_path,
                  d.image_sectors, ss, d.spare_slots);
    }
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
    in->physical_ = phys.get();
    in->remapper_ = std::make_unique<remap::Remapper>(*in->store_, in->tables_, *in->physical_, layout.g,
                                                      in->store_->allocator(), o.policy, clock);
    auto layer = std::make_unique<block::RemapLayer>(std::move(phys), layout.g, in->tables_, *in->remapper_, clock,
                                                     o.read_only);
    in->clock_ = &clock;
    in->activity_ = std::make_unique<health::Activity>(clock);
    layer->set_activity(in->activity_.get());
    in->stack_ = std::move(layer);
    guard.armed = false;
    return in;
}

void Instance::start_services(bool scanner, std::string_view mountpoint) {
    // A read-only mount writes nothing to its database: no history, no scanner.
    if (read_only_) return remapper_->start_worker();
    // Written before anything is served, and not only for the operator: the first write after
    // SQLite opens a database starts its WAL, and that syncs the WAL header (a device cache
    // flush). Here it costs the mount a few milliseconds; left to the scanner's first
    // checkpoint it landed in the middle of user I/O and stalled it (400 ms on the bench VM).
    {
        std::lock_guard lock(tables_.writer_mutex());
        mount_log_id_ = store_->log_mount_start(std::time(nullptr), ::getpid(), REMAPFS_VERSION, mountpoint);
    }
    history_ = std::make_unique<health::HistoryWriter>(db_path_, *clock_);
    if (scanner) {
        auto persist = [this](const health::ScanConfig& c) {
            std::lock_guard lock(tables_.writer_mutex());  // the store's connection is the writers'
            store_->save_scan_config(c);
        };
        health::ScanConfig cfg;
        health::ScanCheckpoint state;
        health::PassRecord pass;
        {
            std::lock_guard lock(tables_.writer_mutex());
            cfg = store_->scan_config();
            state = store_->scan_state();
            pass = store_->scan_pass(state.pass);
        }
        scanner_ = std::make_unique<health::Scanner>(static_cast<block::RemapLayer&>(*stack_), geometry_, *history_,
                                                     *activity_, *clock_, cfg, state, pass, persist, direct_);
    }
    tee_ = std::make_unique<health::TeeSink>(*history_, scanner_.get());
    remapper_->set_event_sink(tee_.get());
    history_->start();
    remapper_->start_worker();
    if (scanner_) scanner_->start();
}

Instance::~Instance() {
    // Stop the producers before the history they write to.
    scanner_.reset();
    if (remapper_) {
        remapper_->stop_worker();
        remapper_->set_event_sink(nullptr);
    }
    tee_.reset();
    history_.reset();
    if (mount_log_id_) {
        std::lock_guard lock(tables_.writer_mutex());
        try {
            store_->log_mount_stop(*mount_log_id_, std::time(nullptr));
        } catch (const std::exception& e) {
            log::warning("cannot record the end of this mount in {}: {}", db_path_, e.what());
        }
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
