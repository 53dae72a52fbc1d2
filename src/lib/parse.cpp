#include "remapfs/parse.hpp"

#include <fmt/format.h>

#include <charconv>
#include <stdexcept>

namespace remapfs {

std::uint64_t parse_uint(const std::string& key, const std::string& value, std::uint64_t lo, std::uint64_t hi) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < lo || v > hi) {
        if (hi == UINT64_MAX)
            throw std::invalid_argument(fmt::format("{} '{}' is not a non-negative whole number", key, value));
        throw std::invalid_argument(fmt::format("{}={} is not a whole number from {} to {}", key, value, lo, hi));
    }
    return v;
}

bool parse_bool(const std::string& key, const std::string& value) {
    if (value == "on" || value == "1" || value == "yes" || value == "true") return true;
    if (value == "off" || value == "0" || value == "no" || value == "false") return false;
    throw std::invalid_argument(fmt::format("{}={} is not on or off", key, value));
}

}  // namespace remapfs
