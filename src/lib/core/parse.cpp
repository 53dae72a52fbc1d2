#include "remapfs/core/parse.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
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

std::uint64_t parse_size(const std::string& s) {
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])))
        throw std::invalid_argument(fmt::format("'{}' is not a size (bytes, or a number with K, M, G or T)", s));
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    std::string unit(end);
    std::uint64_t mult = 1;
    if (unit == "") mult = 1;
    else if (unit == "K" || unit == "k" || unit == "KiB") mult = 1ULL << 10;
    else if (unit == "M" || unit == "MiB") mult = 1ULL << 20;
    else if (unit == "G" || unit == "GiB") mult = 1ULL << 30;
    else if (unit == "T" || unit == "TiB") mult = 1ULL << 40;
    else throw std::invalid_argument(fmt::format("'{}' is not a size (bytes, or a number with K, M, G or T)", s));
    if (errno == ERANGE || v > UINT64_MAX / mult) throw std::invalid_argument(fmt::format("size '{}' is too large", s));
    return v * mult;
}

}  // namespace remapfs
