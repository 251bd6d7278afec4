// Test-only helpers: blocking POSIX sockets, to talk to http::Server with
// exact bytes (garbage, bad chunking) and to play a misbehaving HTTP server
// for http::Client. Every socket gets a 5 s receive timeout so that a broken
// test fails instead of hanging.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace ratchet::http::testing {

inline void set_receive_timeout(int fd) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

inline sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A connected socket, or -1.
inline int connect_to(std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  set_receive_timeout(fd);
  return fd;
}

inline bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Everything until EOF, an error or the timeout.
inline std::string read_until_close(int fd) {
  std::string out;
  char chunk[4096];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return out;
    out.append(chunk, static_cast<std::size_t>(n));
  }
}

// True when the peer closes the connection (EOF or reset), after discarding
// whatever it sends first; false when the 5 s receive timeout passes first.
inline bool closed_by_peer(int fd) {
  char chunk[4096];
  for (;;) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
}

// Sends `bytes` on a new connection to `port`; everything the server answers
// until it closes ("" when the connection is refused).
inline std::string exchange(std::uint16_t port, const std::string& bytes) {
  int fd = connect_to(port);
  if (fd < 0) return "";
  write_all(fd, bytes);
  std::string answer = read_until_close(fd);
  close(fd);
  return answer;
}

// One HTTP message with a Content-Length body (or none): head and body.
inline std::string read_message(int fd) {
  std::string out;
  char c;
  while (out.find("\r\n\r\n") == std::string::npos) {
    if (recv(fd, &c, 1, 0) != 1) return out;
    out.push_back(c);
  }
  std::size_t length = 0;
  std::size_t at = out.find("Content-Length: ");
  if (at == std::string::npos) at = out.find("content-length: ");
  if (at != std::string::npos) length = std::stoul(out.substr(at + 16));
  std::string body(length, '\0');
  std::size_t got = 0;
  while (got < length) {
    ssize_t n = recv(fd, body.data() + got, length - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  return out + body.substr(0, got);
}

// The status code of a raw response ("HTTP/1.1 413 ..." -> 413), or 0.
inline int status_of(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

// A listening socket on 127.0.0.1, any port; accept() blocks.
class RawListener {
 public:
  RawListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(0);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 64);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~RawListener() { close(fd_); }

  std::uint16_t port() const { return port_; }
  int fd() const { return fd_; }
  int accept_one() {
    int fd = accept(fd_, nullptr, nullptr);
    if (fd >= 0) set_receive_timeout(fd);
    return fd;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A port with nothing listening: bound (so nobody else takes it), not listening.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = loopback(0);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A peer that answers every request on every connection with the same bytes,
// then closes: a hostile HTTP server for clients, on 127.0.0.1, any port. Or
// with the bytes `reply` makes of each request's (header and body).
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::string reply)
      : ScriptedPeer([reply = std::move(reply)](const std::string&) { return reply; }) {}
  explicit ScriptedPeer(std::function<std::string(const std::string& request)> reply)
      : reply_(std::move(reply)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedPeer() {
    stopping_ = true;
    shutdown(listener_.fd(), SHUT_RDWR);  // wakes the accept()
    thread_.join();
  }
  std::uint16_t port() const { return listener_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int connections() const { return connections_.load(); }

 private:
  void serve() {
    while (!stopping_) {
      int fd = listener_.accept_one();
      if (fd < 0) continue;
      ++connections_;
      write_all(fd, reply_(read_message(fd)));
      close(fd);
    }
  }

  std::function<std::string(const std::string&)> reply_;
  RawListener listener_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace ratchet::http::testing
