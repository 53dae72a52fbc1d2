#include "remapfs/db/store.hpp"

#include "remapfs/db/schema.hpp"
#include "remapfs/core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <sys/stat.h>

namespace remapfs::db {

namespace {
// The free and retired lists are both one column of slot numbers.
std::vector<SpareSlot> slot_column(Connection& conn, const char* sql) {
    std::vector<SpareSlot> v;
    auto u = conn.prepared(sql).use();
    while (u.next()) v.push_back(SpareSlot{static_cast<std::uint64_t>(u.get_int(0))});
    return v;
}
}  // namespace

Store Store::open(const std::string& path, bool create, bool read_only, Owner owner) {
    // The remap table decides where every sector is read from: a database that somebody else
    // can write, or reach through a link, is refused, and a new one is created for its owner
    // alone (SQLite gives its -wal and -shm the database file's mode).
    struct stat st {};
    bool exists = ::lstat(path.c_str(), &st) == 0;
    if (exists && S_ISLNK(st.st_mode))
        throw std::runtime_error(fmt::format("database {} is a symbolic link; give the path of the file itself", path));
    if (!exists && (read_only || !create))
        throw std::runtime_error(fmt::format("database {} does not exist", path));
    if (exists && !S_ISREG(st.st_mode)) throw std::runtime_error(fmt::format("database {} is not a regular file", path));
    if (exists && owner == Owner::checked && st.st_uid != ::geteuid())
        throw std::runtime_error(fmt::format("database {} belongs to uid {}, not to uid {} who opens it", path,
                                             st.st_uid, ::geteuid()));
    if (exists && !read_only && st.st_uid == ::geteuid())  // made by an older remapfs: 0644
        for (const char* suffix : {"", "-wal", "-shm"}) {
            struct stat f {};
            const std::string p = path + suffix;
            if (::lstat(p.c_str(), &f) == 0 && S_ISREG(f.st_mode) && f.st_uid == ::geteuid() && (f.st_mode & 077))
                ::chmod(p.c_str(), f.st_mode & 0700);
        }
    if (!exists) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) throw std::runtime_error(fmt::format("cannot create database {}: {}", path, std::strerror(errno)));
        ::close(fd);
    }

    Connection c(path, read_only ? Connection::Mode::read_only : Connection::Mode::read_write_create);
    if (read_only) {
        int v = check_header(c);
        if (v == 0) throw std::runtime_error(fmt::format("{} is an empty database", path));
        if (v != latest_version())
            throw std::runtime_error(fmt::format("{} has schema version {}; mount it once to upgrade it to {}", path, v,
                                                 latest_version()));
        return Store(std::move(c));
    }
    check_header(c);  // refuse foreign/new files before WAL changes the header
    // Switch to WAL only if needed (Nix local-store): the switch itself writes the header.
    std::string mode;
    {
        Statement& jm = c.prepared("PRAGMA journal_mode");
        auto u = jm.use();
        if (u.next()) mode = u.get_str(0);
    }
    if (mode != "wal") c.exec("PRAGMA journal_mode = WAL");
    c.exec("PRAGMA synchronous = FULL");
    c.exec("PRAGMA foreign_keys = ON");
    migrate(c);
    return Store(std::move(c));
}

std::optional<DeviceIdentity> Store::identity() {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT uuid, backing_path, backing_bytes, sector_size, image_sectors, spare_path, spare_offset, "
                "spare_slots, created, layout, generation, dirty, initialised, backing_id FROM device WHERE id = 1");
    auto u = s.use();
    if (!u.next()) return std::nullopt;
    DeviceIdentity d;
    d.uuid = u.get_str(0);
    d.backing_path = u.get_str(1);
    d.backing_bytes = ByteCount{static_cast<std::uint64_t>(u.get_int(2))};
    d.sector_size = static_cast<std::uint32_t>(u.get_int(3));
    d.image_sectors = SectorCount{static_cast<std::uint64_t>(u.get_int(4))};
    d.spare_path = u.get_opt_str(5);
    d.spare_offset = ByteOffset{static_cast<std::uint64_t>(u.get_int(6))};
    d.spare_slots = SectorCount{static_cast<std::uint64_t>(u.get_int(7))};
    d.created = u.get_int(8);
    d.layout = static_cast<std::uint32_t>(u.get_int(9));
    d.generation = static_cast<std::uint64_t>(u.get_int(10));
    d.dirty = u.get_int(11) != 0;
    d.initialised = u.get_int(12) != 0;
    d.backing_id = u.get_opt_str(13);
    return d;
}

void Store::bind(const DeviceIdentity& d) {
    auto guard = lock();
    Transaction txn(conn_);
    Statement& s = conn_.prepared("INSERT INTO device (id, uuid, backing_path, backing_bytes, sector_size, image_sectors, spare_path, "
                "spare_offset, spare_slots, created, layout, generation, dirty, initialised, backing_id) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.use()(std::string_view(d.uuid))(std::string_view(d.backing_path))(static_cast<std::int64_t>(d.backing_bytes.v))(
        static_cast<std::int64_t>(d.sector_size))(static_cast<std::int64_t>(d.image_sectors.v))(d.spare_path)(
        static_cast<std::int64_t>(d.spare_offset.v))(static_cast<std::int64_t>(d.spare_slots.v))(d.created)(
        static_cast<std::int64_t>(d.layout))(static_cast<std::int64_t>(d.generation))(std::int64_t{d.dirty})(
        std::int64_t{d.initialised})(d.backing_id)
        .exec();
    txn.commit();
}

void Store::set_initialised() {
    auto guard = lock();
    Transaction txn(conn_);
    conn_.exec("UPDATE device SET initialised = 1 WHERE id = 1");
    txn.commit();
}

void Store::set_backing_id(const std::string& id) {
    auto guard = lock();
    Transaction txn(conn_);
    Statement& s = conn_.prepared("UPDATE device SET backing_id = ? WHERE id = 1");
    s.use()(std::string_view(id)).exec();
    txn.commit();
}

void Store::set_dirty(bool dirty) {
    auto guard = lock();
    Transaction txn(conn_);
    conn_.exec(fmt::format("UPDATE device SET dirty = {} WHERE id = 1", dirty ? 1 : 0));
    txn.commit();
}

std::vector<RemapRow> Store::remaps() {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT lba, spare_slot, state, reason, created FROM remap ORDER BY lba");
    std::vector<RemapRow> rows;
    auto u = s.use();
    while (u.next())
        rows.push_back({Lba{static_cast<std::uint64_t>(u.get_int(0))}, SpareSlot{static_cast<std::uint64_t>(u.get_int(1))},
                        u.get_str(2), u.get_str(3), u.get_int(4)});
    return rows;
}

void Store::each_remap(const std::function<void(Lba, SpareSlot)>& f) {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT lba, spare_slot FROM remap ORDER BY lba");
    auto u = s.use();
    while (u.next())
        f(Lba{static_cast<std::uint64_t>(u.get_int(0))}, SpareSlot{static_cast<std::uint64_t>(u.get_int(1))});
}

std::uint64_t Store::remap_count() {
    auto guard = lock();
    return static_cast<std::uint64_t>(conn_.query_int("SELECT count(*) FROM remap"));
}

AllocatorState Store::allocator() {
    auto guard = lock();
    AllocatorState a;
    a.next_slot = SpareSlot{static_cast<std::uint64_t>(conn_.query_int("SELECT next_slot FROM allocator WHERE id = 1"))};
    a.free_slots = slot_column(conn_, "SELECT slot FROM free_slot ORDER BY slot");
    a.retired = static_cast<std::uint64_t>(conn_.query_int("SELECT count(*) FROM retired_slot"));
    return a;
}

std::vector<SpareSlot> Store::retired_slots() {
    auto guard = lock();
    return slot_column(conn_, "SELECT slot FROM retired_slot ORDER BY slot");
}

std::vector<PendingRow> Store::pending() {
    auto guard = lock();
    Statement& s = conn_.prepared("SELECT lba, first_seen, last_seen, errors, last_errno FROM pending ORDER BY lba");
    std::vector<PendingRow> rows;
    auto u = s.use();
    while (u.next())
        rows.push_back({Lba{static_cast<std::uint64_t>(u.get_int(0))}, u.get_int(1), u.get_int(2),
                        static_cast<std::uint64_t>(u.get_int(3)), static_cast<int>(u.get_int(4))});
    return rows;
}

namespace {

std::int64_t i64(std::uint64_t v) { return static_cast<std::int64_t>(v); }

// The slot leaves the allocator: off the free list, or next_slot moves past it.
void take_slot(Connection& c, SpareSlot slot, bool from_free_list) {
    if (from_free_list) {
        Statement& del = c.prepared("DELETE FROM free_slot WHERE slot = ?");
        del.use()(i64(slot.v)).exec();
    } else {
        Statement& adv = c.prepared("UPDATE allocator SET next_slot = max(next_slot, ?) WHERE id = 1");
        adv.use()(i64(slot.v + 1)).exec();
    }
}

void retire(Connection& c, SpareSlot slot, int err) {
    Statement& r = c.prepared("INSERT OR REPLACE INTO retired_slot (slot, retired, last_errno) VALUES (?, ?, ?)");
    r.use()(i64(slot.v))(static_cast<std::int64_t>(std::time(nullptr)))(static_cast<std::int64_t>(err)).exec();
}

void clear_pending(Connection& c, Lba lba) {
    Statement& d = c.prepared("DELETE FROM pending WHERE lba = ?");
    d.use()(i64(lba.v)).exec();
}

void set_generation(Connection& c, std::uint64_t generation) {
    Statement& g = c.prepared("UPDATE device SET generation = ? WHERE id = 1");
    g.use()(i64(generation)).exec();
}

bool lock_contention(int code) {
    const int primary = code & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// Runs body in a transaction. Another connection holding the write lock is waited out for as
// long as it takes (each attempt waits the connection's busy timeout, then says so in the log);
// any other SQLite failure becomes EIO, logged with its code.
template <typename F>
Result<void> in_transaction(Connection& c, const char* what, std::uint64_t n, F&& body) noexcept {
    auto last_said = std::chrono::steady_clock::now() - std::chrono::hours(1);
    for (unsigned waits = 0;; ++waits) {
        try {
            Transaction txn(c);
            body();
            txn.commit();
            if (waits) log::warning("{} {}: committed after waiting for the database lock", what, n);
            return ok();
        } catch (const Error& e) {
            if (!lock_contention(e.code())) {
                log::error("{} {}: {}", what, n, e.what());
                return Errno{EIO};
            }
            // BUSY came after the busy timeout's wait; LOCKED comes at once: pause either way.
            if (const auto now = std::chrono::steady_clock::now(); now - last_said > std::chrono::seconds(5)) {
                log::warning("{} {}: database {} is locked by another connection (a sqlite3 session?); still "
                             "waiting", what, n, c.path());
                last_said = now;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        } catch (const std::exception& e) {
            log::error("{} {}: {}", what, n, e.what());
            return Errno{EIO};
        }
    }
}

}  // namespace

Result<void> Store::commit_remap(Lba lba, SpareSlot slot, bool from_free_list, RemapReason reason,
                                 std::uint64_t generation) noexcept {
    auto guard = lock();
    return in_transaction(conn_, "committing remap of sector", lba.v, [&] {
        Statement& ins = conn_.prepared("INSERT INTO remap (lba, spare_slot, state, reason, created) VALUES (?, ?, 'active', ?, ?)");
        ins.use()(i64(lba.v))(i64(slot.v))(std::string_view(to_string(reason)))(static_cast<std::int64_t>(std::time(nullptr))).exec();
        take_slot(conn_, slot, from_free_list);
        clear_pending(conn_, lba);
        set_generation(conn_, generation);
    });
}

Result<void> Store::commit_unremap(Lba lba, SpareSlot slot, bool retire_slot, std::uint64_t generation) noexcept {
    auto guard = lock();
    return in_transaction(conn_, "committing unremap of sector", lba.v, [&] {
        Statement& del = conn_.prepared("DELETE FROM remap WHERE lba = ? AND spare_slot = ?");
        del.use()(i64(lba.v))(i64(slot.v)).exec();
        if (retire_slot) {
            retire(conn_, slot, EIO);
        } else {
            Statement& fr = conn_.prepared("INSERT OR IGNORE INTO free_slot (slot) VALUES (?)");
            fr.use()(i64(slot.v)).exec();
        }
        clear_pending(conn_, lba);
        set_generation(conn_, generation);
    });
}

Result<void> Store::commit_relocate(Lba lba, SpareSlot old_slot, SpareSlot new_slot, bool from_free_list,
                                    int old_errno, std::uint64_t generation) noexcept {
    auto guard = lock();
    return in_transaction(conn_, "committing relocation of sector", lba.v, [&] {
        Statement& up = conn_.prepared("UPDATE remap SET spare_slot = ? WHERE lba = ? AND spare_slot = ?");
        up.use()(i64(new_slot.v))(i64(lba.v))(i64(old_slot.v)).exec();
        if (sqlite3_changes(conn_.get()) != 1) conn_.fail(SQLITE_CONSTRAINT, "relocating a remap that is not there");
        take_slot(conn_, new_slot, from_free_list);
        retire(conn_, old_slot, old_errno);
        clear_pending(conn_, lba);
        set_generation(conn_, generation);
    });
}

Result<void> Store::commit_retire(SpareSlot slot, bool from_free_list, int err) noexcept {
    auto guard = lock();
    return in_transaction(conn_, "retiring spare slot", slot.v, [&] {
        take_slot(conn_, slot, from_free_list);
        retire(conn_, slot, err);
    });
}

Result<void> Store::commit_pending(Lba lba, int err) noexcept {
    auto guard = lock();
    return in_transaction(conn_, "recording pending sector", lba.v, [&] {
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        Statement& up = conn_.prepared("INSERT INTO pending (lba, first_seen, last_seen, errors, last_errno) VALUES (?, ?, ?, 1, ?) "
                     "ON CONFLICT (lba) DO UPDATE SET last_seen = excluded.last_seen, errors = errors + 1, "
                     "last_errno = excluded.last_errno");
        up.use()(i64(lba.v))(now)(now)(static_cast<std::int64_t>(err)).exec();
    });
}

void Store::commit_remaps_bulk(std::span<const Lba> lbas, RemapReason reason) {
    auto guard = lock();
    Transaction txn(conn_);
    const auto slots = static_cast<std::uint64_t>(conn_.query_int("SELECT spare_slots FROM device WHERE id = 1"));
    auto next = static_cast<std::uint64_t>(conn_.query_int("SELECT next_slot FROM allocator WHERE id = 1"));
    if (lbas.size() > slots - std::min(next, slots))
        throw std::runtime_error(fmt::format("database {}: {} remaps do not fit the {} free spare slots above {}",
                                             path(), lbas.size(), slots - std::min(next, slots), next));
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    Statement& ins = conn_.prepared("INSERT INTO remap (lba, spare_slot, state, reason, created) VALUES (?, ?, 'active', ?, ?)");
    Statement& clr = conn_.prepared("DELETE FROM pending WHERE lba = ?");
    for (Lba lba : lbas) {
        ins.use()(i64(lba.v))(i64(next++))(std::string_view(to_string(reason)))(now).exec();
        clr.use()(i64(lba.v)).exec();
    }
    Statement& adv = conn_.prepared("UPDATE allocator SET next_slot = ? WHERE id = 1");
    adv.use()(i64(next)).exec();
    txn.commit();
}

void Store::replace_remap_state(const RebuiltState& r) {
    auto guard = lock();
    Transaction txn(conn_);
    conn_.exec("DELETE FROM remap; DELETE FROM free_slot; DELETE FROM retired_slot; DELETE FROM pending");
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    Statement& ins = conn_.prepared("INSERT INTO remap (lba, spare_slot, state, reason, created) VALUES (?, ?, 'active', 'recovered', ?)");
    for (const auto& [lba, slot] : r.remaps) ins.use()(i64(lba.v))(i64(slot.v))(now).exec();
    Statement& ret = conn_.prepared("INSERT INTO retired_slot (slot, retired, last_errno) VALUES (?, ?, ?)");
    for (SpareSlot slot : r.retired) ret.use()(i64(slot.v))(now)(std::int64_t{EIO}).exec();
    Statement& fr = conn_.prepared("INSERT INTO free_slot (slot) VALUES (?)");
    for (SpareSlot slot : r.free_slots) fr.use()(i64(slot.v)).exec();
    Statement& adv = conn_.prepared("UPDATE allocator SET next_slot = ? WHERE id = 1");
    adv.use()(i64(r.next_slot.v)).exec();
    set_generation(conn_, r.generation);
    txn.commit();
}


std::string new_uuid() {
    std::array<unsigned char, 16> b{};
    int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::read(fd, b.data(), b.size()) != static_cast<ssize_t>(b.size())) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("cannot read /dev/urandom for a device id");
    }
    ::close(fd);
    b[6] = (b[6] & 0x0f) | 0x40;  // version 4
    b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
    return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                       b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                       b[15]);
}

}  // namespace remapfs::db
