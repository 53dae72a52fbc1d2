#include "remapfs/remap/events.hpp"

namespace remapfs::remap {
namespace {
thread_local Source t_source = Source::user;
}

Source current_source() { return t_source; }
ScopedSource::ScopedSource(Source s) : prev_(t_source) { t_source = s; }
ScopedSource::~ScopedSource() { t_source = prev_; }

}  // namespace remapfs::remap
