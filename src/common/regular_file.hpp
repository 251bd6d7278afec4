// Opening a file that must be a regular file: a job's log, orchesjob's logs.
//
// Such a path lives in a directory other people (or mistakes) may have
// touched, and open(2) on what is there instead can hang: a FIFO blocks until
// a writer (or reader) comes, a device may block or act on the open. So the
// path is looked at first (lstat), opened without following a symbolic link
// and without blocking, and checked again on the descriptor (fstat): what is
// returned is a regular file, in blocking mode.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.hpp"

namespace ratchet {

// open(2) of `path` with `flags` (O_CLOEXEC, O_NOFOLLOW and O_NONBLOCK added)
// and `mode`. kNotFound when nothing is there; kFailedPrecondition when it is
// not a regular file ("... is a FIFO, not a regular file"); kUnavailable for
// any other failure. Messages start with the path.
Result<int> open_regular_file(const std::string& path, int flags, mode_t mode = 0600);

}  // namespace ratchet
