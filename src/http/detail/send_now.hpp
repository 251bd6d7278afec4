// Internal to src/http: the direct write shared by the server's workers and
// the client's callers. Include only from .cpp files.
#pragma once

#include <sys/socket.h>

#include <boost/system/error_code.hpp>
#include <cerrno>
#include <cstddef>
#include <string>

namespace ratchet::http::detail {

// Writes as much of `bytes` to the socket `fd` as it takes now, without
// blocking (and without SIGPIPE); returns how much. A full socket buffer is
// no error: the caller sends the rest by its async path. Any other failure
// sets `ec`. The caller makes sure `fd` is not closed meanwhile.
inline std::size_t send_now(int fd, const std::string& bytes, boost::system::error_code& ec) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        ec = boost::system::error_code(errno, boost::system::system_category());
      }
      break;
    }
  }
  return sent;
}

}  // namespace ratchet::http::detail
