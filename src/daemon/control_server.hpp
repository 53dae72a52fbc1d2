#pragma once
// The live control channel: a root-only unix socket at /run/remapfs/<uuid>.sock. One thread
// accepts; kWorkers threads answer, one connection each, so a remap stuck behind a backing
// request that never returns (a disk in D state holds the table's writer mutex) leaves status
// answered. Each connection carries one JSON request line and gets one reply line. A verify
// reads the whole image and may take hours, so it runs on a thread of its own (one at a time).

#include "remapfs/control/control.hpp"
#include "remapfs/instance/instance.hpp"
#include "remapfs/core/unique_fd.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
    static constexpr unsigned kWorkers = 4;
    void serve(std::stop_token st);
    void work(std::stop_token st);
    void handle(UniqueFd conn);
    void start_verify(UniqueFd conn, const control::json& request);

    Instance& in_;
    DaemonInfo info_;
    std::string path_;
    UniqueFd listen_fd_;
    UniqueFd wake_fd_;  // eventfd: tells the thread to stop
    std::jthread thread_;
    std::mutex queue_mutex_;
    std::condition_variable_any queue_cv_;
    std::deque<UniqueFd> queue_;
    unsigned idle_ = 0;  // guarded by queue_mutex_
    std::vector<std::jthread> workers_;
    std::atomic<bool> verifying_{false};
    std::jthread verify_;  // stopped and joined first when the server goes (see the destructor)
};

}  // namespace remapfs::daemon
