#pragma once
// State that every request writes, kept once per thread so the request path shares no written
// cache line with other threads: two CPUs writing the same line hand it back and forth on
// every request (perf on 4k random reads: 96 % of a shared atomic's cost was that line's
// load). The rare reader (a writer's grace period, the scanner's idle check) walks every
// thread's copy.
//
// A thread finds its copy through a small thread-local cache keyed by the owner's unique id
// (never its address, which a later owner may reuse); only the first call on a thread takes
// the owner's mutex. Copies live as long as the owner; a thread that exits leaves its copy,
// which the next thread with the same std::thread::id takes over, so T must be at rest
// between uses (counters back to zero, hazard pointers cleared).

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace remapfs {

template <typename T>
class PerThread {
public:
    PerThread() : id_(next_id()) {}
    PerThread(const PerThread&) = delete;
    PerThread& operator=(const PerThread&) = delete;

    // This thread's copy.
    T& local() {
        Cache& c = cache();
        for (const CacheEntry& e : c.entries)
            if (e.owner == id_) return e.slot->value;
        return adopt(c);
    }

    // Every thread's copy, while holding the mutex that registration takes: a thread that
    // registers after this returns was not seen.
    template <typename F>
    void for_each(F&& f) const {
        std::lock_guard lock(mutex_);
        for (const std::unique_ptr<Slot>& s : slots_) f(static_cast<const T&>(s->value));
    }

private:
    struct alignas(64) Slot {  // a cache line (or more) of its own
        std::thread::id thread;
        T value{};
    };
    struct CacheEntry {
        std::uint64_t owner = 0;  // 0: empty
        Slot* slot = nullptr;
    };
    struct Cache {
        std::array<CacheEntry, 8> entries{};
        std::size_t next = 0;  // round-robin eviction: owners are few, and they outlive requests
    };

    static Cache& cache() {
        thread_local Cache c;
        return c;
    }
    static std::uint64_t next_id() {
        static std::atomic<std::uint64_t> ids{0};
        return ids.fetch_add(1, std::memory_order_relaxed) + 1;
    }

    T& adopt(Cache& c) {
        Slot* slot = nullptr;
        {
            std::lock_guard lock(mutex_);
            const std::thread::id me = std::this_thread::get_id();
            for (const std::unique_ptr<Slot>& s : slots_)
                if (s->thread == me) slot = s.get();
            if (!slot) {
                slots_.push_back(std::make_unique<Slot>());
                slot = slots_.back().get();
                slot->thread = me;
            }
        }
        c.entries[c.next++ % c.entries.size()] = {id_, slot};
        return slot->value;
    }

    const std::uint64_t id_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace remapfs
