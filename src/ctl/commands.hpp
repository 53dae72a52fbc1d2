#pragma once
// What remapctl's commands share. Each command lives in a file of its own (cmd_*.cpp) and is
// listed, with its help, in main.cpp's table.

#include "remapfs/db/store.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace remapctl {

using nlohmann::json;

constexpr int kOk = 0, kFailed = 1, kUsage = 2, kUnreadable = 3;

// Bad usage: exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What a command is given.
struct Invocation {
    std::string command;
    std::string db;                       // the instance's database
    std::optional<std::string> backing;   // --backing as given (recover)
    std::vector<std::string> args;        // the words after the command
    bool as_json = false;
};

int cmd_status(const Invocation& in);
int cmd_list(const Invocation& in);
int cmd_pending(const Invocation& in);
int cmd_verify(const Invocation& in);
int cmd_move(const Invocation& in);  // remap and unremap
int cmd_inject(const Invocation& in);
int cmd_scan(const Invocation& in);
int cmd_recover(const Invocation& in);

// common.cpp
std::uint64_t parse_number(const std::string& s, const char* what);  // UsageError
// The database of the daemon serving mountpoint MNT, asked through each live control socket.
std::string db_from_mount(const std::string& mnt);
// Read-write where we may (so SQLite can tidy its -wal/-shm); for reading anybody's database.
remapfs::db::Store open_store(const std::string& db);
// The daemon serving this device; nullopt: none listens.
std::optional<json> live_call(const remapfs::db::DeviceIdentity& id, const json& req);
remapfs::db::DeviceIdentity read_identity(remapfs::db::Store& s);
void check_reply(const json& r);  // throws the reply's error
// On the live daemon, or offline on an instance opened here.
json run_data_command(const std::string& db, const json& req, bool writes);
std::string fmt_time(std::int64_t t);

}  // namespace remapctl
