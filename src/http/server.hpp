// http::Server: an HTTP/1.1 server for Ratchet's API and for SDK endpoints.
//
// Contract:
// - Server::start binds host:port (port 0 picks a free port: see port()) and
//   serves on `io_threads` I/O threads until stop() or destruction.
// - Each request is read in full (body de-chunked, at most `body_limit` bytes)
//   and handed to the Handler together with a Responder. Requests on one
//   connection are handled one at a time, in order (keep-alive; no parallel
//   pipelining). The Handler runs on an I/O thread: it must not block. To
//   answer later, keep the Responder (it is copyable) and call send() from any
//   thread. start_blocking() runs a synchronous handler on its own pool of
//   `worker_threads` threads instead, for user code that may block; a worker
//   writes the response itself (non-blocking) when it can, and leaves the rest
//   to the I/O thread.
// - Exactly one response per request: the first send() wins, later ones are
//   ignored, and when the last copy of a Responder is destroyed unsent the
//   client gets 500. send() after stop() is a harmless no-op.
// - Protocol errors never reach the Handler, and no bytes a client sends can
//   make the server throw: malformed HTTP (bad request line, bad chunked
//   encoding, a Transfer-Encoding that does not end in chunked) is answered
//   400, header and trailer sections over `header_limit` together 431, a body
//   over `body_limit` `body_too_large` (413 by default) without handing it on;
//   then the connection is closed (parser.hpp has the details), once the rest
//   of a declared body up to 4 x body_limit is read and discarded, so that a
//   client that sends its whole body before it reads, as most do, sees the
//   answer rather than a reset. A connection idle between requests
//   for `idle_timeout`, or slower than `header_timeout` to send a request's
//   header (from its first byte, however it is spread out), or than
//   `io_timeout` to send its body or read the response, is closed.
// - At most `max_connections` connections are served at once. When one more
//   arrives, the connection that has waited longest without a request past
//   its header (an idle keep-alive one, or one still sending a header) is
//   closed to make room; when every connection is busy with a request, the
//   new one is answered 503 with Retry-After and closed. Idle or slow clients
//   therefore cannot lock a well-behaved one out.
// - `header_check`, when set, sees each request's header before any of its
//   body is read, and may refuse it (say, a wrong API key: 401): the refusal
//   is sent with `Connection: close` and the body is never read.
// - Responder::start(head) answers with a streamed body instead (server-sent
//   events): it sends the head at once (chunked for HTTP/1.1; no
//   Content-Length) and returns a Stream whose write() sends the body piece
//   by piece, from any thread, until close() (or the last copy of the Stream
//   is dropped); the connection closes after it. A streaming connection is
//   busy: it counts against max_connections and is never closed to make
//   room. Each write must reach the client within `io_timeout`, and a client
//   more than `stream_buffer_limit` bytes behind is cut off (write() says
//   false), so a slow reader cannot make the server buffer without bound.
//   The server watches the socket meanwhile: a client that goes away ends
//   its stream. stop() ends every stream at once (they never end by
//   themselves).
// - stop(grace) stops accepting, closes idle connections, lets requests already
//   handed to the Handler be answered until the grace period ends, then closes
//   everything. It waits for running blocking handlers to return (user code
//   cannot be interrupted); queued ones that have not started are answered 500.
//   Call stop() (and destroy the Server) from a thread of your own, never from
//   a handler: it joins the server's threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.hpp"
#include "http/message.hpp"

namespace ratchet::http {

struct ServerOptions {
  std::string host = "127.0.0.1";  // an IP address or a name to resolve
  std::uint16_t port = 0;          // 0: any free port
  int io_threads = 1;
  int worker_threads = 4;  // only for Server::start_blocking
  std::size_t body_limit = 16'000'000;
  // The answer to a body over body_limit (unset: 413 with a line of text).
  std::function<Response()> body_too_large;
  std::size_t header_limit = 64 * 1024;  // header and trailer sections together
  std::size_t max_connections = 512;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds io_timeout{60'000};
  // How far a streamed response's client may fall behind (bytes queued).
  std::size_t stream_buffer_limit = 1 << 20;
  // Runs on an I/O thread once a request's header has arrived (the Request's
  // body is still empty). A Response refuses the request; nullopt reads on.
  // It must not block; an exception from it is answered 500.
  std::function<std::optional<Response>(const Request&)> header_check;
  // Tests only: runs on the worker that writes a response directly, while it
  // holds the connection's guard against a close, just before its send, so
  // that a test can close the connection at that point. Unset: nothing runs.
  std::function<void()> before_direct_send;
};

// The body of a streamed response; see the contract above. Cheap to copy;
// any thread. The stream ends when the last copy is destroyed.
class Stream {
 public:
  class State;  // defined by the server

  Stream() = default;  // an ended stream
  explicit Stream(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // Queues `data` as the next piece of the body (empty data is ignored).
  // False when it will never be sent: the stream ended (close(), the client
  // went away, the server stopped), or the client fell too far behind, which
  // ends the stream.
  bool write(std::string data) const;
  // Ends the body once what was written is sent.
  void close() const;
  bool open() const;

 private:
  std::shared_ptr<State> state_;
};

// The way to answer one request; see the contract above. Cheap to copy.
class Responder {
 public:
  class State;  // defined by the server

  Responder() = default;  // an empty Responder: send() does nothing
  explicit Responder(std::shared_ptr<State> state) : state_(std::move(state)) {}

  // Sends `response` unless a response was already sent. Any thread.
  void send(Response response) const;
  // Sends `head`'s status and headers (its body is ignored) and returns the
  // stream of the body, unless a response was already sent (then, or when
  // the client is gone, the Stream returned is ended). Counts as the
  // request's one response. Any thread.
  Stream start(Response head) const;
  // The same; then `written` runs once: when the response has been written to the
  // socket, or as soon as it is clear that it will not be (a response was already
  // sent, the connection failed or closed, the server stopped). `next_request`
  // runs if the client then sends another request on the connection (it has read
  // this response), and never otherwise. They run on an I/O thread or in this
  // call, and must not block.
  void send(Response response, std::function<void()> written,
            std::function<void()> next_request = {}) const;

 private:
  std::shared_ptr<State> state_;
};

class Server {
 public:
  using Handler = std::function<void(Request, Responder)>;
  using BlockingHandler = std::function<Response(const Request&)>;

  // Binds and starts serving. Fails with kUnavailable when the address cannot
  // be bound (in use, not local) and kInvalidArgument for bad options.
  static Result<std::unique_ptr<Server>> start(ServerOptions options, Handler handler);
  // Like start(), but runs `handler` on `options.worker_threads` threads; an
  // exception escaping it is answered 500.
  static Result<std::unique_ptr<Server>> start_blocking(ServerOptions options,
                                                        BlockingHandler handler);

  ~Server();  // stop() with no grace period
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (the chosen one when ServerOptions::port was 0).
  std::uint16_t port() const;
  // How many connections were accepted since start; for tests and metrics.
  std::uint64_t connections_accepted() const;
  // Graceful shutdown; see the contract above. Idempotent; blocks until done.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ratchet::http
