#pragma once
// Detach early, report late: fork before opening anything (so no thread, SQLite connection or
// lock crosses a fork), let the child open the backing, the database and the mount, and keep
// the parent waiting on a pipe. The parent exits with the child's verdict, so `mount` and the
// shell see the true status and the child's error messages on their own stderr.

namespace remapfs::daemon {

class Detacher {
public:
    // In the parent this never returns. In the child, returns the handle.
    static Detacher fork_and_wait();

    // Everything is up: release the parent with status 0, drop the terminal.
    void ready();
    // Startup failed: the parent exits with `status`; so do we.
    [[noreturn]] void failed(int status);

private:
    explicit Detacher(int fd) : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace remapfs::daemon
