#pragma once
// The buffer a FUSE worker thread receives its requests' data into, whichever transport it
// serves (run_session's /dev/fuse workers, the io_uring workers). It is free while a request
// that carries no data runs, so a read goes straight into it and is replied from there: one
// buffer per worker for both directions, in huge pages (sys/io_buffer.hpp), suited to O_DIRECT.

#include <cstddef>
#include <span>

namespace remapfs::fuse_op {

// Makes `area` the calling thread's worker buffer for the scope's lifetime.
class WorkerBufferScope {
public:
    explicit WorkerBufferScope(std::span<std::byte> area);
    ~WorkerBufferScope();
    WorkerBufferScope(const WorkerBufferScope&) = delete;
    WorkerBufferScope& operator=(const WorkerBufferScope&) = delete;
};

// Inside an op running on a worker: its buffer if it holds `len` bytes, else null.
std::byte* worker_buffer(std::size_t len);

}  // namespace remapfs::fuse_op
