// What remapctl's commands share: finding the instance, the live daemon or the database, and printing.

#include "ctl/commands.hpp"
#include "remapfs/control/control.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs/core/parse.hpp"
#include "remapfs/sys/mountinfo.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <ctime>
#include <filesystem>

namespace remapctl {

std::uint64_t parse_number(const std::string& s, const char* what) {
    try {
        return remapfs::parse_uint(what, s);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
}

// The database of the daemon serving mountpoint MNT. The mount carries no attributes
// (src/fuse/ops_table.cpp says why), so each live control socket is asked for its mountpoint;
// the device number names a mount whatever path reaches it.
std::string db_from_mount(const std::string& mnt) {
    struct stat want {};
    if (::stat(mnt.c_str(), &want) != 0) throw std::runtime_error(fmt::format("{}: {}", mnt, std::strerror(errno)));
    const std::string dev = fmt::format("{}:{}", major(want.st_dev), minor(want.st_dev));
    bool remapfs_mount = false;
    for (const auto& m : remapfs::sys::read_mountinfo())
        if (m.device == dev) remapfs_mount = m.fs_type == "fuse.remapfs";
    if (!remapfs_mount || !S_ISDIR(want.st_mode))
        throw std::runtime_error(fmt::format("{} is not a remapfs mount", mnt));
    std::error_code ec;
    std::string unreachable;  // e.g. not root: the sockets are root-only
    for (const auto& entry : std::filesystem::directory_iterator(remapfs::control_socket_dir(), ec)) {
        if (entry.path().extension() != ".sock") continue;
        std::optional<json> r;
        try {
            r = remapfs::control::call(entry.path().string(), {{"cmd", "status"}});
        } catch (const std::runtime_error& e) {
            unreachable = e.what();  // or a daemon that is going away
            continue;
        }
        if (!r || !r->value("ok", false)) continue;
        const std::string point = r->value(json::json_pointer("/daemon/mountpoint"), std::string());
        struct stat st {};
        if (!point.empty() && ::stat(point.c_str(), &st) == 0 && st.st_dev == want.st_dev)
            return r->value("db", std::string());
    }
    throw std::runtime_error(fmt::format("no remapfs daemon answering in {} serves {}{}", remapfs::control_socket_dir(), mnt,
                                         unreachable.empty() ? "" : " (" + unreachable + ")"));
}

// Read-write when we may: a read-only SQLite connection to a WAL database cannot clean up the
// -wal/-shm files it creates, a read-write one removes them when it closes. Nothing is written
// unless a command changes something (a database from an older remapfs is upgraded).
remapfs::db::Store open_store(const std::string& db) {
    // Reading is allowed on anybody's database (root looking at a user's); what changes a
    // device opens it through an Instance, which checks the owner.
    return remapfs::db::Store::open(db, false, ::access(db.c_str(), W_OK) != 0, remapfs::db::Store::Owner::any);
}

// Status of the daemon serving this database, if any.
std::optional<json> live_call(const remapfs::db::DeviceIdentity& id, const json& req) {
    return remapfs::control::call(remapfs::control_socket_path(id.uuid), req);
}

remapfs::db::DeviceIdentity read_identity(remapfs::db::Store& s) {
    auto id = s.identity();
    if (!id) throw std::runtime_error(fmt::format("database {} has no device yet (mount it once)", s.path()));
    return *id;
}

void check_reply(const json& r) {
    if (!r.value("ok", false)) throw std::runtime_error(r.value("error", std::string("the request failed")));
}

// Runs a data command on the live daemon, or offline on an instance opened here.
json run_data_command(const std::string& db, const json& req, bool writes) {
    remapfs::db::DeviceIdentity id;
    {
        auto s = open_store(db);
        id = read_identity(s);
    }
    if (auto r = live_call(id, req)) return *r;
    auto in = remapfs::Instance::open_from_db(db, !writes);
    return remapfs::control::execute(in->control_target(), req);
}

std::string fmt_time(std::int64_t t) {
    char buf[64];
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

}  // namespace remapctl
