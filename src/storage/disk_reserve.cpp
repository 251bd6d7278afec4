#include "storage/disk_reserve.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace ratchet::sqlite {

bool DiskReserve::take() {
  if (held_ || bytes_ <= 0) return held_;
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // Allocated, not sparse: the blocks are the file system's to give back.
  bool allocated = posix_fallocate(fd, 0, bytes_) == 0;
  allocated = ::fsync(fd) == 0 && allocated;
  ::close(fd);
  if (!allocated) {
    ::unlink(path_.c_str());
    return false;
  }
  held_ = true;
  return true;
}

bool DiskReserve::release() {
  // Unlinked even when not held: a reserve left by an earlier run is space too.
  bool was_held = held_ || ::access(path_.c_str(), F_OK) == 0;
  ::unlink(path_.c_str());
  held_ = false;
  return was_held;
}

}  // namespace ratchet::sqlite
