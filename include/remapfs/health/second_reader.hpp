#pragma once
// The scanner's second read in flight while the image is idle (ZFS lets a scrub raise its
// outstanding I/O from 1 to 2 only then): one job at a time on a thread of its own.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace remapfs::health {

class SecondReader {
public:
    SecondReader();
    ~SecondReader();
    SecondReader(const SecondReader&) = delete;
    SecondReader& operator=(const SecondReader&) = delete;
    void start(std::function<void()> job);
    void wait();

private:
    std::mutex mutex_;
    std::condition_variable_any cv_;
    std::function<void()> job_;
    bool busy_ = false;
    std::jthread thread_;
};

}  // namespace remapfs::health
