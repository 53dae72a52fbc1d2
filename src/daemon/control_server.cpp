#include "daemon/control_server.hpp"

#include "remapfs/control/control.hpp"
#include "remapfs/core/log.hpp"
#include "remapfs/sys/io.hpp"
#include "remapfs/sys/thread_name.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace remapfs::daemon {

namespace {

void send_reply(int conn, const control::json& reply) {
    // A client that went away, or stopped reading (SO_SNDTIMEO), loses its reply; nothing else.
    (void)sys::send_full(conn, reply.dump() + "\n");
}

}  // namespace

ControlServer::ControlServer(Instance& in, DaemonInfo info) : in_(in), info_(std::move(info)) {
    path_ = control_socket_path(in.identity().uuid);
    ::mkdir(control_socket_dir().c_str(), 0700);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path) throw std::runtime_error("control socket path too long");
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    listen_fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listen_fd_.valid()) throw std::runtime_error(fmt::format("socket: {}", std::strerror(errno)));
    // We hold the backing's lock, so a socket left at this path is a dead daemon's.
    ::unlink(path_.c_str());
    mode_t old = ::umask(0177);
    int rc = ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::umask(old);
    if (rc != 0) throw std::runtime_error(fmt::format("cannot create control socket {}: {}", path_, std::strerror(errno)));
    if (::listen(listen_fd_.get(), 16) != 0)
        throw std::runtime_error(fmt::format("listen on {}: {}", path_, std::strerror(errno)));
    wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
}

ControlServer::~ControlServer() {
    if (thread_.joinable()) {
        thread_.request_stop();
        std::uint64_t one = 1;
        (void)!::write(wake_fd_.get(), &one, sizeof one);
        thread_.join();
    }
    for (auto& w : workers_) w.request_stop();
    workers_.clear();  // joins: each finishes the request it has
    // Only now: the serving thread can no longer start one. A verify in progress gets
    // ECANCELED after its current 1 MiB chunk.
    if (verify_.joinable()) {
        verify_.request_stop();
        verify_.join();
    }
    ::unlink(path_.c_str());
}

void ControlServer::start() {
    for (unsigned i = 0; i < kWorkers; ++i)
        workers_.emplace_back([this, i](std::stop_token st) {
            sys::name_this_thread(fmt::format("rfs-control{}", i + 1).c_str());
            work(st);
        });
    thread_ = std::jthread([this](std::stop_token st) {
        sys::name_this_thread("rfs-control");
        serve(st);
    });
}

void ControlServer::work(std::stop_token st) {
    for (;;) {
        UniqueFd conn;
        {
            std::unique_lock lock(queue_mutex_);
            ++idle_;
            const bool got = queue_cv_.wait(lock, st, [&] { return !queue_.empty(); });
            --idle_;
            if (!got) return;
            conn = std::move(queue_.front());
            queue_.pop_front();
        }
        handle(std::move(conn));
    }
}

void ControlServer::serve(std::stop_token st) {
    while (!st.stop_requested()) {
        pollfd p[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            log::error("control socket: poll: {}", std::strerror(errno));
            return;
        }
        if (p[1].revents) return;
        if (!(p[0].revents & POLLIN)) continue;
        UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn.valid()) continue;
        std::lock_guard lock(queue_mutex_);
        if (queue_.size() >= kWorkers && idle_ == 0) {
            // Every worker is stuck (a hung backing): say so rather than queue for ever.
            send_reply(conn.get(), {{"ok", false}, {"errno", EBUSY},
                                    {"error", "the daemon is busy: every control worker waits on the backing"}});
            continue;
        }
        queue_.push_back(std::move(conn));
        queue_cv_.notify_one();
    }
}

void ControlServer::start_verify(UniqueFd conn, const control::json& request) {
    if (verifying_.exchange(true)) {
        send_reply(conn.get(), {{"ok", false}, {"errno", EBUSY}, {"error", "a verify is already running on this mount"}});
        return;
    }
    // Shared, so the reply can still be sent if the thread cannot be started.
    auto client = std::make_shared<UniqueFd>(std::move(conn));
    try {
        // The previous verify has finished (verifying_ was false): joining it is immediate.
        verify_ = std::jthread([this, client, request](std::stop_token st) {
            sys::name_this_thread("rfs-verify");
            send_reply(client->get(), control::execute(in_.control_target(), request, st));
            verifying_ = false;
        });
    } catch (const std::system_error& e) {
        verifying_ = false;
        send_reply(client->get(), {{"ok", false}, {"errno", EAGAIN}, {"error", fmt::format("cannot start the verify: {}", e.what())}});
    }
}

void ControlServer::handle(UniqueFd conn) {
    ucred cred{};
    socklen_t len = sizeof cred;
    control::json reply;
    if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
        reply = {{"ok", false}, {"errno", EPERM}, {"error", "only root may control remapfs"}};
    } else {
        std::string line;
        char buf[4096];
        timeval tv{5, 0};  // a stuck client must not wedge the channel
        ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        while (line.find('\n') == std::string::npos && line.size() < 65536) {
            ssize_t n = ::read(conn.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            line.append(buf, static_cast<std::size_t>(n));
        }
        auto req = control::json::parse(line, nullptr, false);
        if (req.is_discarded() || !req.is_object()) {
            reply = {{"ok", false}, {"errno", EINVAL}, {"error", "malformed request"}};
        } else if (req.value("cmd", "") == "verify") {
            start_verify(std::move(conn), req);
            return;
        } else {
            reply = control::execute(in_.control_target(), req);
            if (req.value("cmd", "") == "status")
                reply["daemon"] = {{"running", true},
                                   {"pid", ::getpid()},
                                   {"mountpoint", info_.mountpoint},
                                   {"image", info_.image_path},
                                   {"read_only", in_.read_only()},
                                   {"backing_direct_io", in_.direct_io()},
                                   {"bounced_bytes", in_.backing().bounced_bytes()},
                                   {"backing_flushes", in_.backing().flushes()}};
        }
    }
    send_reply(conn.get(), reply);
}

}  // namespace remapfs::daemon
