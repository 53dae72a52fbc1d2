#include "fuse/transport/session_loop.hpp"

#include "fuse/transport/worker_buffer.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/sys/io_buffer.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <linux/fuse.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <span>
#include <system_error>
#include <thread>
#include <vector>

namespace remapfs::fuse_op {
namespace {

// A write's data follows the request header and the write's own arguments.
constexpr std::size_t kWriteDataOffset = sizeof(fuse_in_header) + sizeof(fuse_write_in);
static_assert(sizeof(fuse_in_header) + sizeof(fuse_read_in) <= kWriteDataOffset);
// Sent to each worker still blocked in read(2) once the session has ended.
constexpr int kWakeSignal = SIGUSR1;

// One worker's receive buffer: a write's data lands at data(), on a huge page (an IoBuffer: it
// goes to an O_DIRECT backing from there), and the headers before it in the page of ordinary
// memory in front. Requests without data (READ's header and arguments end exactly at data())
// touch only that page; the huge page becomes resident once the worker moves data: a write
// arrives there, a read is answered from there (worker_buffer.hpp). libfuse
// reads with its own buffer size, which before INIT is 256 pages plus one (3.14) and after INIT
// kMaxWrite plus one page; the kernel never writes more than the request it delivers.
class ReceiveBuffer {
public:
    ReceiveBuffer()
        : memory_(std::max(256 * page(), kMaxWrite) + page(), page()) {}

    explicit operator bool() const { return static_cast<bool>(memory_); }
    char* receive_area() const { return reinterpret_cast<char*>(memory_.data()) - kWriteDataOffset; }
    std::span<std::byte> data_area() const { return {memory_.data(), memory_.size()}; }

private:
    static std::size_t page() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

    sys::IoBuffer memory_;
};

struct Session {
    fuse_session* se;
    sem_t finished;             // posted by each worker that leaves
    std::atomic<int> error{0};  // the first fatal error (negative errno)

    void fail(int err) {
        int none = 0;
        error.compare_exchange_strong(none, err);
    }
};

// Serves requests until the session ends; returns the error that ended it, or 0.
int serve(fuse_session* se) {
    ReceiveBuffer buffer;
    if (!buffer) return -ENOMEM;
    WorkerBufferScope data(buffer.data_area());
    fuse_buf fbuf{};
    fbuf.mem = buffer.receive_area();
    while (!fuse_session_exited(se)) {
        const int res = fuse_session_receive_buf(se, &fbuf);
        if (res == -EINTR || res == -EAGAIN) continue;
        if (res <= 0) return res;  // 0: unmounted or ended by a signal
        fuse_session_process_buf(se, &fbuf);
    }
    return 0;
}

void work(Session& s, std::atomic<bool>& done, unsigned index) {
    sys::name_this_thread("rfs-fuse" + std::to_string(index));
    if (const int err = serve(s.se)) s.fail(err);
    fuse_session_exit(s.se);
    done = true;
    ::sem_post(&s.finished);
}

void ignore_signal(int) {}

// Installs a handler without SA_RESTART, so the wake signal makes read(2) return EINTR.
class WakeHandler {
public:
    WakeHandler() {
        struct sigaction sa {};
        sa.sa_handler = ignore_signal;
        ::sigemptyset(&sa.sa_mask);
        ::sigaction(kWakeSignal, &sa, &old_);
    }
    ~WakeHandler() { ::sigaction(kWakeSignal, &old_, nullptr); }
    WakeHandler(const WakeHandler&) = delete;
    WakeHandler& operator=(const WakeHandler&) = delete;

private:
    struct sigaction old_ {};
};

// Workers block the signals that end the session (as libfuse's loop does), so the kernel
// delivers them to the thread waiting in run_session, whose sem_wait they interrupt.
class BlockTerminationSignals {
public:
    BlockTerminationSignals() {
        sigset_t set;
        ::sigemptyset(&set);
        for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) ::sigaddset(&set, sig);
        ::pthread_sigmask(SIG_BLOCK, &set, &old_);
    }
    ~BlockTerminationSignals() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
    BlockTerminationSignals(const BlockTerminationSignals&) = delete;
    BlockTerminationSignals& operator=(const BlockTerminationSignals&) = delete;

private:
    sigset_t old_;
};

}  // namespace

int run_session(fuse_session* se, unsigned threads) {
    WakeHandler wake;
    Session s{se, {}, {}};
    ::sem_init(&s.finished, 0, 0);
    threads = std::max(threads, 1u);
    const auto done = std::make_unique<std::atomic<bool>[]>(threads);
    std::vector<std::thread> workers;
    workers.reserve(threads);
    try {
        BlockTerminationSignals blocked;
        for (unsigned i = 0; i < threads; ++i) workers.emplace_back(work, std::ref(s), std::ref(done[i]), i);
    } catch (const std::system_error& e) {
        log::error("cannot start FUSE worker thread {}: {}", workers.size() + 1, e.what());
        s.fail(-EAGAIN);
        fuse_session_exit(se);
    }

    while (!fuse_session_exited(se)) ::sem_wait(&s.finished);  // EINTR: a signal; look again

    for (std::size_t i = 0; i < workers.size(); ++i) {
        // Resent until it leaves: a signal that lands just before the worker enters read(2)
        // is handled and forgotten, and the worker would sleep on.
        while (!done[i]) {
            ::pthread_kill(workers[i].native_handle(), kWakeSignal);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        workers[i].join();
    }
    ::sem_destroy(&s.finished);
    return s.error;
}

}  // namespace remapfs::fuse_op
