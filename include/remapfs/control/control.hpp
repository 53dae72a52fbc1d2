#pragma once
// The control protocol: one JSON object per line over a root-only unix socket. The same
// `execute` serves the daemon (live) and remapctl (offline, on an Instance it opened itself),
// so both paths behave identically.

#include "remapfs/block/fault_injector.hpp"
#include "remapfs/block/geometry.hpp"
#include "remapfs/db/store.hpp"
#include "remapfs/health/scanner.hpp"
#include "remapfs/remap/remapper.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <stop_token>
#include <string>

namespace remapfs::control {

using json = nlohmann::json;

// What a command works on: the parts of an instance, live in the daemon or opened by remapctl.
struct Target {
    const Geometry& geometry;
    const db::DeviceIdentity& identity;
    const std::string& db_path;
    bool read_only;
    remap::Remapper& remapper;
    block::BlockLayer& image;         // the remap layer, byte-addressed
    block::FaultInjector* injector;   // null unless allow_inject
    health::Scanner* scanner;         // null without a scanner
};

// Requests: {"cmd":"status"} {"cmd":"remap","lba":N} {"cmd":"unremap","lba":N}
//           {"cmd":"verify","start":N,"count":N}
//           {"cmd":"inject","action":"add","rule":{...}} / "list" / "clear"  (allow_inject only)
//           {"cmd":"scan","action":"status"|"start"|"stop"|"pause"|"resume"|"set","settings":{k:v}}
// Replies:  {"ok":true, ...} or {"ok":false,"error":"one line","errno":N}
// `stop` ends a verify early (ECANCELED); the other commands take no time to speak of.
json execute(const Target& in, const json& request, std::stop_token stop = {}) noexcept;

// The device part of `status`.
json status_json(const db::DeviceIdentity& id, const std::string& db_path, const remap::SpareUsage& u,
                 std::uint64_t generation);
// The same, from the database alone (no daemon, backing not opened).
remap::SpareUsage usage_from_store(db::Store& s);

// Scanner state as the database has it (no daemon), same shape as the live status.
json scan_status_from_store(db::Store& s, const db::DeviceIdentity& id);
// Applies a scan action to the stored configuration (no daemon). Throws std::invalid_argument.
health::ScanConfig apply_scan_action(health::ScanConfig c, const json& req);
// The health report: device score, worst regions, errors, pending, remaps, scanner totals.
json health_report(db::Store& s, const db::DeviceIdentity& id);

// nullopt: no daemon listens on the socket. Throws std::runtime_error on a broken exchange.
std::optional<json> call(const std::string& socket_path, const json& request);

}  // namespace remapfs::control
