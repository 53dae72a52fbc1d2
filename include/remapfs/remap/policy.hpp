#pragma once
// What the remap layer does about failing sectors (the original's auto-remap switch and error
// threshold, plus retries and slow-sector handling). Daemon options map 1:1 onto these fields.

#include <cstdint>

namespace remapfs::remap {

struct Policy {
    bool auto_remap = true;             // write error -> spare slot (off: EIO + pending)
    std::uint32_t read_retries = 3;     // extra attempts after a failed read
    std::uint32_t retry_delay_us = 10'000;  // first backoff; doubles each retry
    // Reads that failed but succeeded on a retry: after this many, the sector is moved to a
    // spare slot while it is still readable (0 = never).
    std::uint32_t error_threshold = 3;
    // A read slower than this counts as slow (0 = off); after slow_count slow reads the sector
    // is moved pre-emptively, data copied first.
    std::uint32_t slow_us = 0;
    std::uint32_t slow_count = 3;
};

}  // namespace remapfs::remap
