#pragma once
// One handler per file (mergerfs layout), wired in ops_table.cpp. Every handler is noexcept,
// validates its input, calls the block stack and sends exactly one reply.

#include "fuse/context.hpp"

namespace remapfs::fuse_op {

void init(void* userdata, fuse_conn_info* conn);
void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) noexcept;
void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept;
void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept;
void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) noexcept;
void flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept;
void fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept;
void statfs(fuse_req_t req, fuse_ino_t ino) noexcept;
void fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) noexcept;

const fuse_lowlevel_ops& operations();

}  // namespace remapfs::fuse_op
