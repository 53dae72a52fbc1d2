#include "remapfs/core/log.hpp"

#include <syslog.h>

#include <atomic>
#include <cstdio>

namespace remapfs::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::atomic<bool> g_syslog{false};

int syslog_priority(Level l) {
    switch (l) {
    case Level::error: return LOG_ERR;
    case Level::warning: return LOG_WARNING;
    case Level::info: return LOG_INFO;
    case Level::debug: return LOG_DEBUG;
    }
    return LOG_INFO;
}
}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

void use_syslog(const char* ident) {
    ::openlog(ident, LOG_PID, LOG_DAEMON);
    g_syslog = true;
}

void write(Level l, std::string_view msg) {
    if (g_syslog) {
        ::syslog(syslog_priority(l), "%.*s", static_cast<int>(msg.size()), msg.data());
        return;
    }
    // One fwrite per line so concurrent threads do not interleave mid-line.
    std::string line = fmt::format("remapfs: {}\n", msg);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace remapfs::log
