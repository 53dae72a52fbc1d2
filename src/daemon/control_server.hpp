#pragma once
// The live control channel: a root-only unix socket at /run/remapfs/<uuid>.sock served by one
// thread. Each connection carries one JSON request line and gets one reply line. A verify reads
// the whole image and may take hours, so it runs on a thread of its own (one at a time) and
// status, remap and scan stay answered meanwhile.

#include "remapfs/control.hpp"
#include "remapfs/instance.hpp"
#include "remapfs/unique_fd.hpp"

#include <atomic>
#include <string>
#include <thread>

namespace remapfs::daemon {

struct DaemonInfo {
    std::string mountpoint;
    std::string image_path;
};

class ControlServer {
public:
    ControlServer(Instance& in, DaemonInfo info);  // binds; throws std::runtime_error
    ~ControlServer();                              // stops the thread, removes the socket
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    void start();
    const std::string& path() const { return path_; }

private:
    void serve(std::stop_token st);
    void handle(UniqueFd conn);
    void start_verify(UniqueFd conn, const control::json& request);

    Instance& in_;
    DaemonInfo info_;
    std::string path_;
    UniqueFd listen_fd_;
    UniqueFd wake_fd_;  // eventfd: tells the thread to stop
    std::jthread thread_;
    std::atomic<bool> verifying_{false};
    std::jthread verify_;  // stopped and joined first when the server goes (see the destructor)
};

}  // namespace remapfs::daemon
