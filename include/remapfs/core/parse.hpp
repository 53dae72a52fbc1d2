#pragma once
// Parsing of user-supplied values (mount options, remapctl settings, fault rules). Every
// failure is a std::invalid_argument whose message is the one line the user sees.

#include <cstdint>
#include <string>

namespace remapfs {

// A whole number in [lo, hi]; message: "KEY=VALUE is not a whole number from LO to HI".
std::uint64_t parse_uint(const std::string& key, const std::string& value, std::uint64_t lo = 0,
                         std::uint64_t hi = UINT64_MAX);
// Bytes with an optional K, M, G or T (binary): "4096", "64K", "2G".
std::uint64_t parse_size(const std::string& s);
// on/off, 1/0, yes/no, true/false.
bool parse_bool(const std::string& key, const std::string& value);

}  // namespace remapfs
