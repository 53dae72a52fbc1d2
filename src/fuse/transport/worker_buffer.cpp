#include "fuse/transport/worker_buffer.hpp"

namespace remapfs::fuse_op {
namespace {

thread_local std::span<std::byte> t_area;

}  // namespace

WorkerBufferScope::WorkerBufferScope(std::span<std::byte> area) { t_area = area; }
WorkerBufferScope::~WorkerBufferScope() { t_area = {}; }

std::byte* worker_buffer(std::size_t len) { return len <= t_area.size() ? t_area.data() : nullptr; }

}  // namespace remapfs::fuse_op
