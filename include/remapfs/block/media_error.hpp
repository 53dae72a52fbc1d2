#pragma once
// Which errors from below mean that the medium failed at that place, and which mean that the
// host refused the request: a full or read-only host filesystem under a file backing, a quota,
// a misaligned buffer, no memory, a path that went away. Only media errors remap a sector,
// retire a spare slot or make a sector pending. Host errors go back to the caller as they are:
// otherwise one full host filesystem under a sparse backing retires every spare slot, and
// readable sectors are recorded as unreadable. The kernel's block layer reports a medium error
// as ENODATA, a failed integrity check as EILSEQ, any other device error as EIO; EBADMSG and
// EUCLEAN are what checksumming filesystems and flash layers say for data they cannot trust.
// The fault injector raises whatever errno a rule names: EIO by default, ENOSPC to play a full
// host filesystem.

#include <cerrno>

namespace remapfs::block {

constexpr bool is_media_error(int err) {
    return err == EIO || err == ENODATA || err == EILSEQ || err == EBADMSG || err == EUCLEAN;
}

}  // namespace remapfs::block
