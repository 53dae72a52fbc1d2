#pragma once
// ScanStatus as JSON (remapctl scan --json, the control socket): its own file, so nlohmann/json
// stays out of the headers the data path includes.

#include "remapfs/health/scan_status.hpp"

#include <nlohmann/json.hpp>

namespace remapfs::health {

nlohmann::json to_json(const ScanStatus& s);

}  // namespace remapfs::health
