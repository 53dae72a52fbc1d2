#include "remapfs/core/result.hpp"

#include <cstring>

#include <fmt/format.h>

namespace remapfs {

std::string errno_name(int code) {
    const char* name = strerrorname_np(code);
    return fmt::format("{}: {}", name ? name : "E?", std::strerror(code));
}

}  // namespace remapfs
