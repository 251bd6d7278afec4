// The endpoint processes' probe: what a function did, as lines in a file the
// test reads. One write(2) per line on an O_APPEND descriptor, so that lines
// from concurrent or killed writers never interleave.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ratchet::testing {

inline void append_line(const std::string& path, const std::string& line) {
  if (path.empty()) return;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();  // a test probe that cannot record must not pass silently
  }
  std::string text = line + "\n";
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::abort();
  close(fd);
}

}  // namespace ratchet::testing
