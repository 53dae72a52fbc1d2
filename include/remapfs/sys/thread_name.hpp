#pragma once
// Every thread the daemon starts carries a name (top -H, ps -L, perf report --sort comm, gdb),
// so an operator can tell a ring worker stuck on the backing from the scanner or the SQLite
// writer without reading stacks.

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <string>

namespace remapfs::sys {

// Linux keeps at most 15 characters; a longer name is cut, never refused.
inline void name_this_thread(std::string name) {
    name.resize(std::min<std::size_t>(name.size(), 15));
    (void)::pthread_setname_np(::pthread_self(), name.c_str());
}

}  // namespace remapfs::sys
