// The publish step of the examples, and a local HTTP server for it to POST to.
//
// publish() is ordinary code a service already has: it POSTs JSON with
// cpp-httplib. What makes it a good durable function is how it fails: it
// turns the answer into a call status with the SDK's one mapping, so that a
// 5xx raises ratchet::TemporaryError and a refused connection
// ratchet::TcpError, both of which the server retries with backoff; a 4xx
// raises a permanent error, which it does not.
//
// FlakyServer stands in for the far side: it answers 503 to its first
// `failures` POSTs and 200 after, and prints what it receives.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ratchet/ratchet.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace examples {

// POSTs `payload` to `url` (http://host:port/path); the response body.
inline std::string publish(std::string url, nlohmann::json payload) {
  auto scheme_end = url.find("://");
  auto path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  std::string origin = url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);

  httplib::Client client(origin);
  client.set_connection_timeout(5);
  client.set_read_timeout(10);
  httplib::Result answer = client.Post(path, payload.dump(), "application/json");
  if (!answer) {  // no HTTP answer at all: refused, reset, timed out
    throw ratchet::TcpError("POST " + url + ": " + httplib::to_string(answer.error()));
  }
  ratchet::check_http_status(answer->status, "POST " + url);  // 503: TemporaryError
  return answer->body;
}

// A local HTTP server on a free port, in its own thread, until destroyed.
class FlakyServer {
 public:
  explicit FlakyServer(int failures) : failures_(failures) {
    server_.Post("/.*", [this](const httplib::Request& request, httplib::Response& response) {
      int n = ++received_;
      response.status = n <= failures_ ? 503 : 200;
      response.set_content(n <= failures_ ? "try again later" : "accepted", "text/plain");
      std::printf("    local server: POST %s %s -> %d\n", request.path.c_str(),
                  request.body.c_str(), response.status);
      std::fflush(stdout);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ < 0) throw std::runtime_error("cannot bind a local HTTP server on 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FlakyServer() {
    // A stop() that comes before listen_after_bind() runs would be lost.
    for (int i = 0; i < 1000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server_.stop();
    thread_.join();
  }
  FlakyServer(const FlakyServer&) = delete;
  FlakyServer& operator=(const FlakyServer&) = delete;

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int received() const { return received_.load(); }

 private:
  int failures_;
  std::atomic<int> received_{0};
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
};

}  // namespace examples
