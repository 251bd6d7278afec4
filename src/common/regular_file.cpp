#include "common/regular_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ratchet {
namespace {

const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

Status not_regular(const std::string& path, mode_t mode) {
  return failed_precondition(path + " is " + kind_of(mode) + ", not a regular file");
}

}  // namespace

Result<int> open_regular_file(const std::string& path, int flags, mode_t mode) {
  // Looked at before the open, so that a device is not opened at all; the
  // fstat below is what holds against a swap between the two.
  struct stat info {};
  if (lstat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
    return not_regular(path, info.st_mode);
  }
  int fd = open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
  if (fd < 0) {
    int error = errno;
    if (lstat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
      return not_regular(path, info.st_mode);
    }
    return Status(error == ENOENT ? Code::kNotFound : Code::kUnavailable,
                  path + ": " + std::strerror(error));
  }
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    close(fd);
    return not_regular(path, info.st_mode);
  }
  // Non-blocking means nothing to a regular file, but the descriptor may
  // become a command's stdout, which should see the flags it expects.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace ratchet
