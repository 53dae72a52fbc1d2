#pragma once
// What remapctl's commands share, for the commands that live in files of their own.

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace remapctl {

constexpr int kOk = 0, kFailed = 1, kUsage = 2, kUnreadable = 3;

// Bad usage: exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// remapctl [--db PATH] [--backing PATH] recover [--spare PATH] [--spare-size SIZE]
//          [--sector-size N] [--backing-io auto|direct|buffered] [--force] [--json]
int cmd_recover(const std::string& db, const std::optional<std::string>& backing, const std::vector<std::string>& args,
                bool as_json);

}  // namespace remapctl
