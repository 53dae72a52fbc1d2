#include "remapfs/health/second_reader.hpp"

#include "remapfs/sys/thread_name.hpp"

namespace remapfs::health {

SecondReader::SecondReader()
    : thread_([this](std::stop_token st) {
          sys::name_this_thread("rfs-scanner2");
          for (;;) {
              std::function<void()> job;
              {
                  std::unique_lock lock(mutex_);
                  if (!cv_.wait(lock, st, [&] { return job_ != nullptr; })) return;
                  job = std::move(job_);
                  job_ = nullptr;
              }
              job();
              {
                  std::lock_guard lock(mutex_);
                  busy_ = false;
              }
              cv_.notify_all();
          }
      }) {}

SecondReader::~SecondReader() {
    thread_.request_stop();
    thread_.join();
}

void SecondReader::start(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        job_ = std::move(job);
        busy_ = true;
    }
    cv_.notify_all();
}

void SecondReader::wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !busy_; });
}

}  // namespace remapfs::health
