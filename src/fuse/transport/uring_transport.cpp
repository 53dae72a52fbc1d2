#include "fuse/transport/uring_transport.hpp"

#include "fuse/transport/worker_buffer.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/core/result.hpp"
#include "remapfs/sys/io_buffer.hpp"
#include "remapfs/core/unique_fd.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace remapfs::fuse_op {
namespace {

// The kernel's FUSE-over-io_uring ABI (include/uapi/linux/fuse.h, protocol 7.42). This
// machine's headers predate it.
namespace abi {
constexpr std::uint64_t kOverIoUring = std::uint64_t{1} << 41;  // INIT flag, in flags2
constexpr std::uint32_t kCmdRegister = 1;                        // register a buffer, fetch a request
constexpr std::uint32_t kCmdCommitAndFetch = 2;                  // answer it, fetch the next

struct EntInOut {
    std::uint64_t flags;
    std::uint64_t commit_id;  // quoted back in the commit
    std::uint32_t payload_sz;
    std::uint32_t padding;
    std::uint64_t reserved;
};
struct ReqHeader {
    char in_out[128];  // fuse_in_header on the way in, fuse_out_header on the way out
    char op_in[128];   // the op's fixed arguments (the first in-arg)
    EntInOut ent;
};
struct CmdReq {  // in the SQE's 80-byte command area
    std::uint64_t flags;
    std::uint64_t commit_id;
    std::uint16_t qid;
    std::uint8_t padding[6];
};
static_assert(sizeof(ReqHeader) == 288);
static_assert(sizeof(CmdReq) <= 80);
}  // namespace abi

constexpr std::uint64_t kStopTag = ~std::uint64_t{0};  // user_data of the stop poll
// A worker's share of the arena: the ring's request header at its start, and before the payload
// the room /dev/fuse's layout needs (fuse_in_header and the op's arguments, see serve_request).
constexpr std::size_t kHeadroom = 4096;
static_assert(sizeof(abi::ReqHeader) + sizeof(fuse_in_header) + sizeof(abi::ReqHeader::op_in) <= kHeadroom);

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

class RingWorker;
thread_local RingWorker* t_worker = nullptr;  // set while a ring worker runs an op

}  // namespace

struct UringTransport::Impl {
    fuse_session* se;
    int fuse_fd;
    unsigned workers_per_cpu;
    UniqueFd stop_fd;
    std::atomic<std::uint64_t> init_unique{0};  // the INIT that offered the ring, 0 if none
    std::size_t payload_size = 0;               // from our INIT reply
    std::atomic<std::uint64_t> served{0};
    // Every worker's headroom and payload, back to back in huge pages: a write's data arrives
    // here and goes to an O_DIRECT backing from here, as do reads, so a 1 MiB transfer spans at
    // most two physically contiguous pieces (sys/io_buffer.hpp). Resident as workers first
    // serve requests, 2 MiB at a time.
    sys::IoBuffer arena;
    std::size_t stride = 0;  // one worker's share of the arena
    std::mutex mutex;
    std::vector<std::thread> workers;
    bool started = false;

    void patch_init_reply(const iovec& arg);
    void start_workers();
    void worker_main(unsigned qid, std::size_t index);
};

namespace {

UringTransport::Impl* g_transport = nullptr;

// One registered request buffer on its own ring. A worker runs one request at a time, like a
// /dev/fuse worker: ops block on the backing, and more workers per CPU keep more in flight.
class RingWorker {
public:
    RingWorker(UringTransport::Impl& t, unsigned qid, std::byte* region)
        : t_(t),
          qid_(qid),
          cap_(t.payload_size),
          h_(reinterpret_cast<abi::ReqHeader*>(region)),
          payload_(region + kHeadroom) {
        io_uring_params p{};
        p.flags = IORING_SETUP_SQE128;
        if (int r = io_uring_queue_init_params(2, &ring_, &p); r < 0)
            throw std::runtime_error("io_uring_queue_init: " + errno_name(-r));
        if (int r = io_uring_register_files(&ring_, &t.fuse_fd, 1); r < 0) {
            io_uring_queue_exit(&ring_);
            throw std::runtime_error("io_uring_register_files: " + errno_name(-r));
        }
        iov_[0] = {h_, sizeof(abi::ReqHeader)};
        iov_[1] = {payload_, cap_};
    }
    ~RingWorker() { io_uring_queue_exit(&ring_); }
    RingWorker(const RingWorker&) = delete;
    RingWorker& operator=(const RingWorker&) = delete;

    // Serves until stopped or the connection goes; returns 0 or the negative errno that ended it.
    int run() {
        // A read goes into the payload area the reply is sent from: fuse_reply_buf then costs no copy.
        WorkerBufferScope data({payload_, cap_});
        prepare(abi::kCmdRegister);
        io_uring_sqe* poll = io_uring_get_sqe(&ring_);
        if (!poll) std::abort();
        std::memset(poll, 0, 2 * sizeof(io_uring_sqe));
        io_uring_prep_poll_add(poll, t_.stop_fd.get(), POLLIN);
        io_uring_sqe_set_data64(poll, kStopTag);
        for (;;) {
            const int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR) return r;
            bool stop = false;
            int error = 0;
            unsigned seen = 0, head;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                ++seen;
                if (cqe->user_data == kStopTag) {
                    stop = true;
                } else if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
                    // Before the kernel has processed INIT's reply it is not ready for buffers.
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    prepare(last_cmd_);
                } else if (cqe->res < 0) {
                    stop = true;
                    error = cqe->res;
                } else {
                    serve_request();
                    prepare(abi::kCmdCommitAndFetch);
                }
            }
            io_uring_cq_advance(&ring_, seen);
            if (stop) {
                io_uring_submit(&ring_);  // an answer prepared in this batch still goes out
                return error;
            }
        }
    }

    bool owns(std::uint64_t unique) const { return unique == unique_ && !replied_; }

    // libfuse's reply to our request: into the ring buffers instead of /dev/fuse.
    ssize_t take_reply(const iovec* iov, int count) {
        const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
        std::size_t len = 0;
        for (int i = 1; i < count; ++i) {
            if (len + iov[i].iov_len > cap_) {
                log::error("io_uring: a reply of more than {} bytes does not fit the ring buffer", cap_);
                reply_error(EIO);
                return static_cast<ssize_t>(sizeof(fuse_out_header));  // answered, with EIO
            }
            // A read built its reply in place (worker_buffer); other ops reply from their own buffers.
            if (iov[i].iov_base != payload_ + len) std::memmove(payload_ + len, iov[i].iov_base, iov[i].iov_len);
            len += iov[i].iov_len;
        }
        const fuse_out_header o{static_cast<std::uint32_t>(sizeof(fuse_out_header) + len), out->error, out->unique};
        std::memcpy(h_->in_out, &o, sizeof o);
        h_->ent.payload_sz = static_cast<std::uint32_t>(len);
        replied_ = true;
        return static_cast<ssize_t>(o.len);
    }

private:
    void prepare(std::uint32_t cmd) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (!sqe) std::abort();  // one command and one poll on a ring of two: never full
        std::memset(sqe, 0, 2 * sizeof(io_uring_sqe));  // SQE128: the command area is the second half
        sqe->opcode = IORING_OP_URING_CMD;
        sqe->flags = IOSQE_FIXED_FILE;
        sqe->fd = 0;
        sqe->cmd_op = cmd;
        if (cmd == abi::kCmdRegister) {
            sqe->addr = reinterpret_cast<std::uintptr_t>(iov_);
            sqe->len = 2;
        }
        auto* req = reinterpret_cast<abi::CmdReq*>(sqe->cmd);
        req->qid = static_cast<std::uint16_t>(qid_);
        req->commit_id = cmd == abi::kCmdCommitAndFetch ? commit_id_ : 0;
        io_uring_sqe_set_data64(sqe, 0);
        last_cmd_ = cmd;
    }

    void reply_error(int err) {
        const fuse_out_header o{sizeof(fuse_out_header), -err, unique_};
        std::memcpy(h_->in_out, &o, sizeof o);
        h_->ent.payload_sz = 0;
        replied_ = true;
    }

    void serve_request() {
        fuse_in_header in;
        std::memcpy(&in, h_->in_out, sizeof in);
        commit_id_ = h_->ent.commit_id;
        unique_ = in.unique;
        replied_ = false;
        const std::size_t payload_len = h_->ent.payload_sz;
        // The op's own arguments are the request less its header and payload.
        if (in.len < sizeof in + payload_len || in.len - sizeof in - payload_len > sizeof h_->op_in ||
            payload_len > cap_) {
            log::error("io_uring: malformed request (opcode {}, length {}, payload {})", in.opcode, in.len, payload_len);
            return reply_error(EIO);
        }
        const std::size_t op_len = in.len - sizeof in - payload_len;
        // Laid out as /dev/fuse would deliver it, in the headroom right before the payload, so
        // libfuse parses it as usual and a write's data is used where the kernel put it.
        std::byte* start = payload_ - op_len - sizeof in;
        std::memcpy(start, &in, sizeof in);
        std::memcpy(start + sizeof in, h_->op_in, op_len);
        fuse_buf buf{};
        buf.mem = start;
        buf.size = in.len;
        t_worker = this;
        fuse_session_process_buf(t_.se, &buf);
        t_worker = nullptr;
        t_.served.fetch_add(1, std::memory_order_relaxed);
        // FORGET-like ops need no answer, but those never come by the ring.
        if (!replied_) {
            log::error("io_uring: opcode {} returned without a reply", in.opcode);
            reply_error(EIO);
        }
    }

    UringTransport::Impl& t_;
    unsigned qid_;
    std::size_t cap_;
    abi::ReqHeader* h_;
    std::byte* payload_;
    io_uring ring_{};
    iovec iov_[2];
    std::uint64_t commit_id_ = 0, unique_ = 0;
    bool replied_ = true;
    std::uint32_t last_cmd_ = abi::kCmdRegister;
};

// libfuse's custom I/O: reads from /dev/fuse as before, noting an INIT that offers the ring;
// replies go to the ring when they answer a ring request, else to /dev/fuse.
ssize_t transport_read(int fd, void* buf, size_t len, void*) {
    const ssize_t n = ::read(fd, buf, len);
    if (!g_transport) return n;
    constexpr std::size_t kInitLen = sizeof(fuse_in_header) + offsetof(fuse_init_in, flags2) + sizeof(std::uint32_t);
    if (n >= static_cast<ssize_t>(kInitLen)) {
        const auto* in = static_cast<const fuse_in_header*>(buf);
        if (in->opcode == FUSE_INIT) {
            fuse_init_in arg;
            std::memcpy(&arg, static_cast<const char*>(buf) + sizeof *in, kInitLen - sizeof *in);
            const bool offered = (arg.flags & FUSE_INIT_EXT) && ((std::uint64_t{arg.flags2} << 32) & abi::kOverIoUring);
            if (offered) g_transport->init_unique = in->unique;
            else
                log::info("io_uring: not offered by the kernel (needs Linux 6.14+ and "
                          "/sys/module/fuse/parameters/enable_uring = 1); using /dev/fuse");
        }
    }
    return n;
}

ssize_t transport_writev(int fd, iovec* iov, int count, void*) {
    const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
    if (RingWorker* w = t_worker; w && w->owns(out->unique)) return w->take_reply(iov, count);
    const bool init_reply = g_transport && out->unique != 0 && out->unique == g_transport->init_unique.load() && out->error == 0;
    if (init_reply && count >= 2) g_transport->patch_init_reply(iov[1]);
    const ssize_t n = ::writev(fd, iov, count);
    if (init_reply && n >= 0 && g_transport->payload_size) g_transport->start_workers();
    return n;
}

}  // namespace

void UringTransport::Impl::patch_init_reply(const iovec& arg) {
    if (arg.iov_len < offsetof(fuse_init_out, flags2) + sizeof(std::uint32_t)) return;
    auto* o = static_cast<fuse_init_out*>(arg.iov_base);
    if (!(o->flags & FUSE_INIT_EXT)) return;
    o->flags2 |= static_cast<std::uint32_t>(abi::kOverIoUring >> 32);
    // The kernel refuses buffers smaller than the largest request or reply it may send.
    const std::size_t pages = (o->flags & FUSE_MAX_PAGES) ? std::size_t{o->max_pages} * page_size() : 0;
    payload_size = std::max({std::size_t{8192}, std::size_t{o->max_write}, pages});
}

void UringTransport::Impl::start_workers() {
    std::lock_guard lock(mutex);
    if (started) return;
    started = true;
    // The kernel keeps one queue per possible CPU and uses the ring only once every queue has
    // a buffer registered.
    const unsigned queues = static_cast<unsigned>(std::max(1, ::get_nprocs_conf()));
    stride = kHeadroom + (payload_size + page_size() - 1) / page_size() * page_size();
    arena = sys::IoBuffer(stride * queues * workers_per_cpu);
    if (!arena) {
        log::error("io_uring: cannot map {} MiB of request buffers", stride * queues * workers_per_cpu >> 20);
        return;
    }
    try {
        for (unsigned q = 0; q < queues; ++q)
            for (unsigned i = 0; i < workers_per_cpu; ++i)
                workers.emplace_back([this, q, n = workers.size()] { worker_main(q, n); });
    } catch (const std::system_error& e) {
        log::error("io_uring: cannot start a ring worker: {}", e.what());
    }
    log::info("io_uring: {} queue(s) x {} worker(s), {} KiB buffers", queues, workers_per_cpu, payload_size / 1024);
}

void UringTransport::Impl::worker_main(unsigned qid, std::size_t index) {
    sys::name_this_thread("rfs-ring" + std::to_string(qid) + "/" + std::to_string(index % workers_per_cpu));
    // Not pinned to the queue's CPU (libfuse pins): a job issuing from one CPU then had all
    // its requests served there, 4k QD16 through a direct-io loop 0.68x (bench/README.md).
    try {
        RingWorker w(*this, qid, arena.data() + index * stride);
        if (const int r = w.run(); r < 0 && r != -ENOTCONN && r != -ENODEV && r != -ECANCELED)
            log::error("io_uring: ring worker for CPU {} stopped: {}", qid, errno_name(-r));
    } catch (const std::exception& e) {
        log::error("io_uring: ring worker for CPU {}: {}", qid, e.what());
    }
}

UringTransport::UringTransport(fuse_session* se, unsigned workers_per_cpu)
    : impl_(std::make_unique<Impl>()) {
    if (g_transport) throw std::logic_error("one io_uring transport per process");
    impl_->se = se;
    impl_->fuse_fd = fuse_session_fd(se);
    impl_->workers_per_cpu = std::max(workers_per_cpu, 1u);
    impl_->stop_fd = UniqueFd(::eventfd(0, EFD_CLOEXEC));
    if (!impl_->stop_fd.valid()) throw std::runtime_error("io_uring: eventfd: " + errno_name(errno));
    static const fuse_custom_io io{transport_writev, transport_read, nullptr, nullptr};
    g_transport = impl_.get();
    if (fuse_session_custom_io(se, &io, impl_->fuse_fd) != 0) {
        g_transport = nullptr;
        throw std::runtime_error("io_uring: libfuse refused the custom I/O");
    }
}

UringTransport::~UringTransport() {
    const std::uint64_t one = 1;
    (void)!::write(impl_->stop_fd.get(), &one, sizeof one);
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(impl_->mutex);
        impl_->started = true;  // a late INIT reply starts nothing now
        workers.swap(impl_->workers);
    }
    for (auto& w : workers) w.join();
    if (impl_->served) log::info("io_uring: served {} requests", impl_->served.load());
    g_transport = nullptr;
}

std::uint64_t UringTransport::requests_served() const { return impl_->served.load(std::memory_order_relaxed); }

}  // namespace remapfs::fuse_op
