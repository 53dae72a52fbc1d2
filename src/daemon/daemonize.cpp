#include "daemon/daemonize.hpp"

#include "remapfs/core/log.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace remapfs::daemon {

Detacher Detacher::fork_and_wait() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        std::perror("remapfs: pipe");
        std::exit(1);
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("remapfs: fork");
        std::exit(1);
    }
    if (pid == 0) {
        ::close(fds[0]);
        ::setsid();
        return Detacher(fds[1]);
    }
    ::close(fds[1]);
    unsigned char status = 1;
    ssize_t n;
    do n = ::read(fds[0], &status, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1) std::_Exit(status);
    // The child died without a verdict: pass on how it ended.
    int ws = 0;
    ::waitpid(pid, &ws, 0);
    std::_Exit(WIFEXITED(ws) && WEXITSTATUS(ws) != 0 ? WEXITSTATUS(ws) : 1);
}

void Detacher::ready() {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) ::close(null);
    }
    log::use_syslog("remapfs");
    unsigned char ok = 0;
    (void)!::write(fd_, &ok, 1);
    ::close(fd_);
    fd_ = -1;
}

void Detacher::failed(int status) {
    unsigned char s = static_cast<unsigned char>(status == 0 ? 1 : status);
    (void)!::write(fd_, &s, 1);
    std::exit(status == 0 ? 1 : status);
}

}  // namespace remapfs::daemon
