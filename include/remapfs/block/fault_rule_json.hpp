#pragma once
// Fault rules as JSON: -o inject_file=, remapctl inject, the control socket. Its own file, so
// nlohmann/json stays out of the headers every FUSE op includes.

#include "remapfs/block/fault_injector.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace remapfs::block {

// {"sectors":"100-110","target":"image","op":"write","errno":"EIO","latency_ms":5,
//  "probability":0.5,"after_ops":1000,"at":1700000000}. Throws std::invalid_argument.
FaultRule fault_rule_from_json(const nlohmann::json& j);
nlohmann::json to_json(const FaultRule& rule);
// A list of rules from a JSON file: an array of rule objects. Throws std::runtime_error.
std::vector<FaultRule> load_fault_rules(const std::string& path);

}  // namespace remapfs::block
