#pragma once
// Logging with compile-time checked format strings. Goes to stderr until the daemon detaches,
// then to syslog. Health facts go to SQLite, not here.

#include <fmt/format.h>

#include <string_view>

namespace remapfs::log {

enum class Level { error, warning, info, debug };

void set_level(Level l);
Level level();
void use_syslog(const char* ident);  // after daemonizing
void write(Level l, std::string_view msg);

template <typename... A>
void error(fmt::format_string<A...> f, A&&... a) { write(Level::error, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void warning(fmt::format_string<A...> f, A&&... a) {
    if (level() >= Level::warning) write(Level::warning, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) {
    if (level() >= Level::info) write(Level::info, fmt::format(f, std::forward<A>(a)...));
}
template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) {
    if (level() >= Level::debug) write(Level::debug, fmt::format(f, std::forward<A>(a)...));
}

}  // namespace remapfs::log
