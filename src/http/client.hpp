// http::Client: asynchronous HTTP/1.1 client with keep-alive connection pools.
//
// Contract:
// - send() returns at once (on an idle plaintext pooled connection it first
//   writes the request with a non-blocking send, sparing the I/O thread's
//   wake-up before the bytes go out); the callback runs exactly once, on a client I/O
//   thread, with the Response (any status: a 500 is a Response, not an error)
//   or a Status whose ErrorKind (error_kind()) says what failed. The callback
//   must not block (it holds up other requests) and must not throw. The one
//   exception to "on a client thread": requests still running when the Client
//   is destroyed complete with kShutdown on the destroying thread.
// - Connections are pooled per origin (scheme, host, port): an idle one is
//   reused (most recently used first), else a new one is opened while the
//   origin has fewer than max_connections_per_host, else the request waits for
//   one (the wait counts against its timeout). Idle connections are closed
//   after idle_timeout.
// - RequestOptions::timeout bounds the whole request: waiting for a
//   connection, DNS, connect, TLS, writing and reading the full response.
//   ClientOptions::connect_timeout also bounds DNS + connect + TLS of a new
//   connection.
// - Retry: when a pooled connection turns out to have been closed by the
//   server (EOF or reset before ANY byte of the response arrived), the request
//   is sent again, once, on a new connection. The server may have received and
//   acted on the first copy, so this is only safe for requests the caller can
//   repeat (idempotent, or deduplicated by the server, like Dispatch RunRequests
//   under a lease). No other retry happens here: retry policy is the caller's.
// - The request's Host header is set from the URL (lower-case host, ":port"
//   only when not the scheme's default) unless the caller sets one; so is
//   Content-Length. https verifies the server's certificate and host name
//   against the system CA store unless ClientOptions::verify_peer is false.
// - send_sync() blocks the calling thread: never call it from a callback.
//   Likewise destroy the Client from a thread of your own: the destructor joins
//   the client's threads, and waits for a DNS lookup in progress to return
//   (getaddrinfo cannot be interrupted).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "http/message.hpp"
#include "http/url.hpp"

namespace ratchet::http {

// What went wrong with a request, stable for callers to map onto their own
// statuses (the scheduler: onto Dispatch's DNS_ERROR, TCP_ERROR, ...).
enum class ErrorKind {
  kInvalidRequest,     // bad URL or request; Code kInvalidArgument
  kDns,                // the host name did not resolve; kUnavailable
  kTcp,                // connect refused/failed/timed out, or connection reset or
                       // closed before the response was complete; kUnavailable
  kTls,                // TLS handshake or certificate verification failed; kUnavailable
  kTimeout,            // RequestOptions::timeout passed; kDeadlineExceeded
  kResponseTooLarge,   // the body exceeded response_body_limit; kInternal
  kMalformedResponse,  // the peer did not speak valid HTTP/1.x; kInternal
  kShutdown,           // the Client was destroyed first; kUnavailable
};

// The stable snake_case name of a kind ("dns_error"); errors' messages start
// with it ("dns_error: cannot resolve 'x.invalid': ...").
std::string_view error_kind_name(ErrorKind kind);
// The kind of a failure reported by Client; nullopt for an OK status or one
// that did not come from Client.
std::optional<ErrorKind> error_kind(const Status& status);

struct ClientOptions {
  int io_threads = 1;
  std::size_t max_connections_per_host = 64;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::size_t response_body_limit = 64 << 20;
  std::size_t response_header_limit = 64 << 10;
  bool verify_peer = true;             // false: accept any certificate (tests only)
  std::string ca_file;                 // PEM bundle to trust in addition to the system store
  std::string user_agent = "ratchet";  // sent unless the request has one
};

struct RequestOptions {
  std::chrono::milliseconds timeout{30'000};
};

class Client {
 public:
  using Callback = std::function<void(Result<Response>)>;

  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `request`, whose target is an absolute URL ("http://host:port/path").
  void send(Request request, const RequestOptions& options, Callback done);
  // Sends `request`, whose target is relative, to `url.join(request.target)`.
  void send(const Url& url, Request request, const RequestOptions& options, Callback done);

  // Blocking versions, for callers outside the client's threads.
  Result<Response> send_sync(Request request, const RequestOptions& options = {});
  Result<Response> send_sync(const Url& url, Request request, const RequestOptions& options = {});

  // How many connections were opened since construction; for tests and metrics.
  std::uint64_t connections_opened() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ratchet::http
