#include "remapfs/health/events.hpp"

namespace remapfs::health {
namespace {
thread_local Source t_source = Source::user;
}

const char* to_string(EventKind k) {
    switch (k) {
    case EventKind::read_error: return "read-error";
    case EventKind::write_error: return "write-error";
    case EventKind::slow_read: return "slow-read";
    case EventKind::pending: return "pending";
    case EventKind::remap: return "remap";
    case EventKind::heal: return "heal";
    }
    return "?";
}

const char* to_string(Source s) {
    switch (s) {
    case Source::user: return "user";
    case Source::scan: return "scan";
    case Source::admin: return "admin";
    }
    return "?";
}

Source current_source() { return t_source; }
ScopedSource::ScopedSource(Source s) : prev_(t_source) { t_source = s; }
ScopedSource::~ScopedSource() { t_source = prev_; }

}  // namespace remapfs::health
