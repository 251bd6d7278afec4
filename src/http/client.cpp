// http::Client on Boost.Beast. Each Connection lives on one io_context (one
// thread) and runs one Exchange (request + response) at a time. The pools
// (idle connections, count of open ones, requests waiting for a connection)
// sit behind one mutex in Client::Impl, held only for bookkeeping, never
// across I/O or callbacks. The one I/O off a connection's thread is the
// direct write of a request on a reused connection (Connection::start_reused).
#include "http/client.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "http/detail/io_pool.hpp"
#include "http/detail/send_now.hpp"
#include "http/parser.hpp"

namespace ratchet::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct KindInfo {
  ErrorKind kind;
  std::string_view name;
  Code code;
};

constexpr KindInfo kKinds[] = {
    {ErrorKind::kInvalidRequest, "invalid_request", Code::kInvalidArgument},
    {ErrorKind::kDns, "dns_error", Code::kUnavailable},
    {ErrorKind::kTcp, "tcp_error", Code::kUnavailable},
    {ErrorKind::kTls, "tls_error", Code::kUnavailable},
    {ErrorKind::kTimeout, "timeout", Code::kDeadlineExceeded},
    {ErrorKind::kResponseTooLarge, "response_too_large", Code::kInternal},
    {ErrorKind::kMalformedResponse, "malformed_response", Code::kInternal},
    {ErrorKind::kShutdown, "client_shutdown", Code::kUnavailable},
};

const KindInfo& info(ErrorKind kind) {
  for (const KindInfo& entry : kKinds) {
    if (entry.kind == kind) return entry;
  }
  return kKinds[0];
}

Status client_error(ErrorKind kind, std::string_view detail) {
  const KindInfo& entry = info(kind);
  std::string message(entry.name);
  message.append(": ").append(detail);
  return Status(entry.code, std::move(message));
}

std::string millis(std::chrono::milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// One request and its callback, from send() to the callback.
struct Exchange {
  Url url;
  std::string origin;  // the pool's key
  std::string method;
  std::string target;  // origin-form, for messages
  std::string bytes;   // the serialized request
  std::chrono::milliseconds timeout{};
  Clock::time_point deadline;
  Client::Callback done;
  bool retried = false;
  // Armed only while waiting for a free connection; destroying it cancels it.
  std::unique_ptr<asio::steady_timer> queue_timer;

  ~Exchange() {
    if (done)
      complete(client_error(ErrorKind::kShutdown,
                            "the HTTP client was destroyed before " + describe() + " completed"));
  }

  std::string describe() const { return method + " " + origin + target; }

  void complete(Result<Response> result) {
    Client::Callback callback = std::move(done);
    done = nullptr;
    try {
      if (callback) callback(std::move(result));
    } catch (...) {
      // The contract forbids throwing; an I/O thread must survive a caller's bug.
    }
  }
};

bool is_ip_address(const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// The peer closed or reset the connection (as a stale keep-alive one does).
bool is_connection_closed(beast::error_code ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted ||
         ec == ssl::error::stream_truncated;
}

}  // namespace

class Connection;

struct HostPool {
  std::vector<std::shared_ptr<Connection>> idle;  // most recently used last
  std::size_t open = 0;  // connecting, busy or idle: what the per-host limit counts
  std::deque<std::shared_ptr<Exchange>> waiting;
};

struct Client::Impl {
  explicit Impl(ClientOptions opts);

  void submit(std::shared_ptr<Exchange> exchange);
  // Reports `error` from a client thread, like any other failure.
  void fail_soon(Callback done, Status error);
  void release(std::shared_ptr<Connection> connection);
  void discard(const std::string& origin);
  void retry_on_new_connection(std::shared_ptr<Exchange> exchange);
  void shutdown();

  // The TLS context, made on first use: loading the system CA store takes ~20 ms.
  ssl::context& tls_context();

  ClientOptions options;
  std::atomic<std::uint64_t> opened{0};

  std::once_flag tls_once;
  std::optional<ssl::context> tls;

  std::mutex mutex;  // guards what follows, up to `io`
  bool shutting_down = false;
  std::unordered_map<std::string, HostPool> pools;

  detail::IoPool io;  // after the state its handlers touch: destroyed first
  asio::steady_timer sweeper;

 private:
  std::shared_ptr<Connection> new_connection(const Exchange& exchange);
  std::shared_ptr<Connection> take_idle(HostPool& pool, Clock::time_point now,
                                        std::vector<std::shared_ptr<Connection>>& expired);
  std::shared_ptr<Exchange> take_waiting(HostPool& pool);
  void wait_for_connection(HostPool& pool, std::shared_ptr<Exchange> exchange);
  void on_wait_timeout(const std::weak_ptr<Exchange>& weak);
  void schedule_sweep();
  void sweep();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, Client::Impl& client, const Exchange& first)
      : client_(client),
        host_(first.url.host),
        port_(first.url.port),
        origin_(first.origin),
        resolver_(io),
        resolve_timer_(io) {
    if (first.url.is_https()) {
      secure_.emplace(io, client.tls_context());
    } else {
      plain_.emplace(io);
    }
  }

  // Runs `exchange` on this connection's thread. Any thread.
  void start(std::shared_ptr<Exchange> exchange) {
    asio::dispatch(lowest().get_executor(), [self = shared_from_this(), exchange]() mutable {
      self->begin(std::move(exchange));
    });
  }

  // Runs `exchange` on this idle, connected connection, which the caller took
  // from the pool (nothing else uses it). Any thread. A plaintext one gets the
  // request's bytes from the calling thread at once, without blocking: the
  // connection's thread, woken after they are out, sends what is left and
  // reads the response. TLS keeps the plain path (its stream is the thread's).
  void start_reused(std::shared_ptr<Exchange> exchange) {
    if (secure_) return start(std::move(exchange));
    beast::error_code ec;
    std::size_t sent = send_now(exchange->bytes, ec);
    asio::post(lowest().get_executor(), [self = shared_from_this(), exchange, sent, ec]() mutable {
      self->exchange_ = std::move(exchange);
      if (ec) return self->on_io_error(ec);  // a stale connection is retried there
      self->write_request(sent);
    });
  }

  // Closes the socket. This connection's thread only (see close_soon).
  void close() {
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard lock(fd_mutex_);  // no direct write after this: the fd may be reused
      fd_closed_ = true;
    }
    resolver_.cancel();
    resolve_timer_.cancel();
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  static void close_soon(std::shared_ptr<Connection> connection) {
    auto executor = connection->lowest().get_executor();
    asio::post(executor, [connection = std::move(connection)] { connection->close(); });
  }

  const std::string& origin() const { return origin_; }
  Clock::time_point idle_since;  // guarded by Client::Impl::mutex

 private:
  void begin(std::shared_ptr<Exchange> exchange);
  void resolve();
  void on_resolved(beast::error_code ec, const tcp::resolver::results_type& results);
  void connect(const std::vector<tcp::endpoint>& endpoints);
  void on_connected(beast::error_code ec);
  void on_handshake(beast::error_code ec);
  std::size_t send_now(const std::string& bytes, beast::error_code& ec);
  void write_request(std::size_t already_sent = 0);
  void read_response();
  void new_parser();
  void parse();
  void read_more();
  void on_io_error(beast::error_code ec);
  void on_parse_error();
  void succeed();
  void fail(ErrorKind kind, std::string_view detail);
  void fail_connecting(beast::error_code ec, ErrorKind kind, std::string_view what);

  beast::tcp_stream& lowest() { return secure_ ? beast::get_lowest_layer(*secure_) : *plain_; }
  template <typename Fn>
  void with_stream(Fn&& fn) {
    if (secure_) {
      fn(*secure_);
    } else {
      fn(*plain_);
    }
  }
  std::string where() const { return host_ + ":" + std::to_string(port_); }

  Client::Impl& client_;
  std::string host_;
  std::uint16_t port_;
  std::string origin_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
  std::optional<ResponseParser> parser_;
  std::shared_ptr<Exchange> exchange_;
  Clock::time_point connect_deadline_;
  bool connected_ = false;
  bool closed_ = false;
  std::uint64_t completed_ = 0;  // > 0: this is a reused keep-alive connection
  std::mutex fd_mutex_;          // a direct write and close() exclude each other
  bool fd_closed_ = false;       // guarded by fd_mutex_
};

void Connection::begin(std::shared_ptr<Exchange> exchange) {
  exchange_ = std::move(exchange);
  if (connected_) return write_request();
  connect_deadline_ = std::min(exchange_->deadline, Clock::now() + client_.options.connect_timeout);
  resolve();
}

void Connection::resolve() {
  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(host_, ec);
  if (!ec) return connect({tcp::endpoint(address, port_)});
  // getaddrinfo cannot be interrupted: enforce the deadline with a timer and
  // ignore the resolver's late answer.
  resolve_timer_.expires_at(connect_deadline_);
  resolve_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
    if (wait_ec || self->closed_) return;
    self->fail_connecting(beast::error::timeout, ErrorKind::kDns, "resolving " + self->host_);
  });
  resolver_.async_resolve(host_, std::to_string(port_), tcp::resolver::numeric_service,
                          [self = shared_from_this()](beast::error_code resolve_ec,
                                                      tcp::resolver::results_type results) {
                            self->on_resolved(resolve_ec, results);
                          });
}

void Connection::on_resolved(beast::error_code ec, const tcp::resolver::results_type& results) {
  if (closed_) return;
  resolve_timer_.cancel();
  if (ec || results.empty()) {
    return fail(ErrorKind::kDns, "cannot resolve host '" + host_ +
                                     "': " + (ec ? ec.message() : std::string("no addresses")));
  }
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  connect(endpoints);
}

void Connection::connect(const std::vector<tcp::endpoint>& endpoints) {
  client_.opened.fetch_add(1, std::memory_order_relaxed);
  lowest().expires_at(connect_deadline_);
  lowest().async_connect(endpoints,
                         [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
                           self->on_connected(ec);
                         });
}

void Connection::on_connected(beast::error_code ec) {
  if (closed_) return;
  if (ec) return fail_connecting(ec, ErrorKind::kTcp, "connecting to " + where());
  beast::error_code ignored;
  lowest().socket().set_option(tcp::no_delay(true), ignored);
  if (!secure_) {
    connected_ = true;
    return write_request();
  }
  if (!is_ip_address(host_)) SSL_set_tlsext_host_name(secure_->native_handle(), host_.c_str());
  if (client_.options.verify_peer) {
    beast::error_code verify_ec;  // the overload without it throws, on an I/O thread
    secure_->set_verify_callback(ssl::host_name_verification(host_), verify_ec);
    if (verify_ec) return fail_connecting(verify_ec, ErrorKind::kTls, "TLS set-up for " + where());
  }
  secure_->async_handshake(
      ssl::stream_base::client,
      [self = shared_from_this()](beast::error_code hs_ec) { self->on_handshake(hs_ec); });
}

void Connection::on_handshake(beast::error_code ec) {
  if (closed_) return;
  if (ec) return fail_connecting(ec, ErrorKind::kTls, "TLS handshake with " + where());
  connected_ = true;
  write_request();
}

// A failure before the request was sent. A timeout is the request's when its
// own deadline was the binding one, else the connect timeout's (reported as
// `kind`: a host that does not answer is a DNS/TCP/TLS problem).
void Connection::fail_connecting(beast::error_code ec, ErrorKind kind, std::string_view what) {
  std::string detail(what);
  if (ec == beast::error::timeout) {
    bool request_deadline = connect_deadline_ >= exchange_->deadline;
    detail += request_deadline
                  ? " took longer than the request timeout of " + millis(exchange_->timeout)
                  : " timed out after " + millis(client_.options.connect_timeout);
    return fail(request_deadline ? ErrorKind::kTimeout : kind, detail);
  }
  fail(kind, detail + " failed: " + ec.message());
}

// As much of `bytes` as the socket takes now, without blocking; any thread.
std::size_t Connection::send_now(const std::string& bytes, beast::error_code& ec) {
  std::lock_guard lock(fd_mutex_);
  if (fd_closed_) return 0;  // the connection's thread finds out as today
  return detail::send_now(plain_->socket().native_handle(), bytes, ec);
}

void Connection::write_request(std::size_t already_sent) {
  lowest().expires_at(exchange_->deadline);
  if (already_sent == exchange_->bytes.size()) return read_response();
  with_stream([&](auto& stream) {
    asio::async_write(stream, asio::buffer(exchange_->bytes) + already_sent,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (self->closed_) return;
                        if (ec) return self->on_io_error(ec);
                        self->read_response();
                      });
  });
}

void Connection::read_response() {
  new_parser();
  parse();
}

void Connection::new_parser() {
  parser_.emplace(
      ParseLimits{client_.options.response_header_limit, client_.options.response_body_limit});
  if (exchange_->method == "HEAD") parser_->expect_no_body();
}

// Parses what is buffered, and reads more until the final response is complete.
void Connection::parse() {
  for (;;) {
    auto data = buffer_.data();
    ParseStep step =
        parser_->put(std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.consume(step.consumed);
    if (step.error != ParseError::kNone) return on_parse_error();
    if (!parser_->done()) return read_more();
    int status = parser_->response().status;
    if (status >= 200 || status == 101) return succeed();
    new_parser();  // an interim response (100 Continue, 103 Early Hints): the final one follows
  }
}

void Connection::read_more() {
  with_stream([&](auto& stream) {
    stream.async_read_some(buffer_.prepare(16 * 1024),
                           [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                             if (self->closed_) return;
                             self->buffer_.commit(n);
                             // A response without a length ends where the connection does.
                             if (ec == asio::error::eof && self->parser_->got_some()) {
                               if (self->parser_->put_eof() != ParseError::kNone)
                                 return self->on_parse_error();
                               return self->succeed();
                             }
                             if (ec) return self->on_io_error(ec);
                             self->parse();
                           });
  });
}

void Connection::on_parse_error() {
  std::string from = " from " + where() + ": " + parser_->error_message();
  if (parser_->error() == ParseError::kBodyTooLarge) {
    return fail(ErrorKind::kResponseTooLarge, "the response" + from);
  }
  fail(ErrorKind::kMalformedResponse, "malformed HTTP response" + from);
}

void Connection::succeed() {
  // Bytes after the response are no response to anything: such a peer gets
  // no second request on this connection.
  bool reusable = parser_->reusable() && buffer_.size() == 0;
  Response response = parser_->take_response();
  parser_.reset();
  ++completed_;
  std::shared_ptr<Exchange> exchange = std::move(exchange_);
  if (reusable) {
    client_.release(shared_from_this());  // may start the next request at once
  } else {
    close();
    client_.discard(origin_);
  }
  exchange->complete(std::move(response));
}

void Connection::on_io_error(beast::error_code ec) {
  bool nothing_received = buffer_.size() == 0 && (!parser_ || !parser_->got_some());
  if (completed_ > 0 && nothing_received && !exchange_->retried && is_connection_closed(ec)) {
    // A stale keep-alive connection: the server closed it while it was idle.
    exchange_->retried = true;
    close();
    client_.retry_on_new_connection(std::move(exchange_));
    return;
  }
  std::string from = " from " + where();
  if (ec == beast::error::timeout) {
    return fail(ErrorKind::kTimeout,
                "no complete response" + from + " within " + millis(exchange_->timeout));
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    return fail(ErrorKind::kTls, "TLS error" + from + ": " + ec.message());
  }
  fail(ErrorKind::kTcp,
       "connection to " + where() + " failed before the response was complete: " + ec.message());
}

void Connection::fail(ErrorKind kind, std::string_view detail) {
  std::shared_ptr<Exchange> exchange = std::move(exchange_);
  close();
  client_.discard(origin_);
  exchange->complete(client_error(kind, detail));
}

Client::Impl::Impl(ClientOptions opts)
    : options(std::move(opts)), io(options.io_threads), sweeper(io.at(0)) {
  options.max_connections_per_host = std::max<std::size_t>(options.max_connections_per_host, 1);
  schedule_sweep();
  io.start("ratchet-http-c");
}

ssl::context& Client::Impl::tls_context() {
  std::call_once(tls_once, [this] {
    tls.emplace(ssl::context::tls_client);
    beast::error_code ec;  // a missing store or file shows up as failed verification
    tls->set_default_verify_paths(ec);
    if (!options.ca_file.empty()) tls->load_verify_file(options.ca_file, ec);
    tls->set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none, ec);
  });
  return *tls;
}

std::shared_ptr<Connection> Client::Impl::new_connection(const Exchange& exchange) {
  return std::make_shared<Connection>(io.next(), *this, exchange);
}

// An idle connection of `pool`, dropping (into `expired`) any idle too long.
std::shared_ptr<Connection> Client::Impl::take_idle(
    HostPool& pool, Clock::time_point now, std::vector<std::shared_ptr<Connection>>& expired) {
  while (!pool.idle.empty()) {
    std::shared_ptr<Connection> connection = std::move(pool.idle.back());
    pool.idle.pop_back();
    if (now - connection->idle_since < options.idle_timeout) return connection;
    --pool.open;
    expired.push_back(std::move(connection));
  }
  return nullptr;
}

std::shared_ptr<Exchange> Client::Impl::take_waiting(HostPool& pool) {
  if (pool.waiting.empty()) return nullptr;
  std::shared_ptr<Exchange> exchange = std::move(pool.waiting.front());
  pool.waiting.pop_front();
  return exchange;
}

void Client::Impl::submit(std::shared_ptr<Exchange> exchange) {
  std::shared_ptr<Connection> connection;
  std::vector<std::shared_ptr<Connection>> expired;
  {
    std::lock_guard lock(mutex);
    if (shutting_down) return;  // `exchange` reports kShutdown, after the unlock
    HostPool& pool = pools[exchange->origin];
    connection = take_idle(pool, Clock::now(), expired);
    if (!connection) {
      if (pool.open >= options.max_connections_per_host) {
        wait_for_connection(pool, std::move(exchange));
      } else {
        ++pool.open;
      }
    }
  }
  for (auto& stale : expired) Connection::close_soon(std::move(stale));
  if (!exchange) return;  // waiting for a connection
  if (connection) return connection->start_reused(std::move(exchange));
  new_connection(*exchange)->start(std::move(exchange));
}

void Client::Impl::wait_for_connection(HostPool& pool, std::shared_ptr<Exchange> exchange) {
  exchange->queue_timer = std::make_unique<asio::steady_timer>(io.next(), exchange->deadline);
  exchange->queue_timer->async_wait(
      [this, weak = std::weak_ptr<Exchange>(exchange)](beast::error_code ec) {
        if (!ec) on_wait_timeout(weak);
      });
  pool.waiting.push_back(std::move(exchange));
}

void Client::Impl::on_wait_timeout(const std::weak_ptr<Exchange>& weak) {
  std::shared_ptr<Exchange> exchange = weak.lock();
  if (!exchange) return;
  {
    std::lock_guard lock(mutex);
    auto pool = pools.find(exchange->origin);
    if (pool == pools.end()) return;
    auto& waiting = pool->second.waiting;
    auto it = std::find(waiting.begin(), waiting.end(), exchange);
    if (it == waiting.end()) return;  // a connection took it meanwhile
    waiting.erase(it);
  }
  exchange->complete(client_error(ErrorKind::kTimeout,
                                  "no connection to " + exchange->origin + " became free within " +
                                      millis(exchange->timeout) + " (all " +
                                      std::to_string(options.max_connections_per_host) + " busy)"));
}

// A connection finished an exchange and may be reused: hand it the next
// waiting request of its origin, or park it as idle.
void Client::Impl::release(std::shared_ptr<Connection> connection) {
  std::shared_ptr<Exchange> next;
  {
    std::lock_guard lock(mutex);
    if (shutting_down) return;
    HostPool& pool = pools[connection->origin()];
    next = take_waiting(pool);
    if (!next) {
      connection->idle_since = Clock::now();
      pool.idle.push_back(connection);
      return;
    }
  }
  next->queue_timer.reset();
  connection->start(std::move(next));
}

// A connection of `origin` closed: its slot goes to the next waiting request.
void Client::Impl::discard(const std::string& origin) {
  std::shared_ptr<Exchange> next;
  {
    std::lock_guard lock(mutex);
    HostPool& pool = pools[origin];
    --pool.open;
    if (shutting_down) return;
    next = take_waiting(pool);
    if (next) ++pool.open;
  }
  if (!next) return;
  next->queue_timer.reset();
  new_connection(*next)->start(std::move(next));
}

// The stale connection's slot passes to a new connection: `open` is unchanged.
void Client::Impl::retry_on_new_connection(std::shared_ptr<Exchange> exchange) {
  {
    std::lock_guard lock(mutex);
    if (shutting_down) return;  // `exchange` reports kShutdown
  }
  new_connection(*exchange)->start(std::move(exchange));
}

void Client::Impl::schedule_sweep() {
  auto interval = std::clamp<std::chrono::milliseconds>(
      options.idle_timeout / 4, std::chrono::milliseconds(100), std::chrono::seconds(5));
  sweeper.expires_after(interval);
  sweeper.async_wait([this](beast::error_code ec) {
    if (ec) return;
    sweep();
    schedule_sweep();
  });
}

// Closes connections idle past idle_timeout and forgets empty pools.
void Client::Impl::sweep() {
  std::vector<std::shared_ptr<Connection>> expired;
  Clock::time_point now = Clock::now();
  {
    std::lock_guard lock(mutex);
    for (auto it = pools.begin(); it != pools.end();) {
      HostPool& pool = it->second;
      auto fresh = std::stable_partition(pool.idle.begin(), pool.idle.end(), [&](const auto& c) {
        return now - c->idle_since >= options.idle_timeout;
      });
      for (auto stale = pool.idle.begin(); stale != fresh; ++stale) {
        expired.push_back(std::move(*stale));
      }
      pool.open -= static_cast<std::size_t>(fresh - pool.idle.begin());
      pool.idle.erase(pool.idle.begin(), fresh);
      bool unused = pool.open == 0 && pool.waiting.empty();
      it = unused ? pools.erase(it) : std::next(it);
    }
  }
  for (auto& connection : expired) Connection::close_soon(std::move(connection));
}

void Client::Impl::shutdown() {
  std::vector<std::shared_ptr<Exchange>> waiting;
  std::vector<std::shared_ptr<Connection>> idle;
  {
    std::lock_guard lock(mutex);
    shutting_down = true;
    for (auto& [origin, pool] : pools) {
      for (auto& exchange : pool.waiting) waiting.push_back(std::move(exchange));
      for (auto& connection : pool.idle) idle.push_back(std::move(connection));
    }
    pools.clear();
  }
  io.stop_and_join();
  sweeper.cancel();
  idle.clear();
  for (auto& exchange : waiting) exchange->queue_timer.reset();
  waiting.clear();  // each reports kShutdown; busy ones do when `io` is destroyed
}

void Client::Impl::fail_soon(Callback done, Status error) {
  auto exchange = std::make_shared<Exchange>();
  exchange->done = std::move(done);
  asio::post(io.next(), [exchange, error] { exchange->complete(error); });
}

std::string_view error_kind_name(ErrorKind kind) { return info(kind).name; }

std::optional<ErrorKind> error_kind(const Status& status) {
  if (status.is_ok()) return std::nullopt;
  std::string_view message = status.message();
  std::string_view name = message.substr(0, message.find(": "));
  for (const KindInfo& entry : kKinds) {
    if (entry.name == name && entry.code == status.code()) return entry.kind;
  }
  return std::nullopt;
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() { impl_->shutdown(); }

void Client::send(Request request, const RequestOptions& options, Callback done) {
  Result<Url> url = parse_url(request.target);
  if (!url.is_ok()) {
    return impl_->fail_soon(std::move(done),
                            client_error(ErrorKind::kInvalidRequest, url.status().message()));
  }
  request.target = url->join("");
  url->path_prefix.clear();
  send(*url, std::move(request), options, std::move(done));
}

void Client::send(const Url& url, Request request, const RequestOptions& options, Callback done) {
  request.target = url.join(request.target);
  if (!request.headers.has("Host")) request.headers.add("Host", url.authority());
  if (!request.headers.has("User-Agent") && !impl_->options.user_agent.empty()) {
    request.headers.add("User-Agent", impl_->options.user_agent);
  }
  Result<std::string> bytes = serialize_request(request);
  if (!bytes.is_ok()) {
    return impl_->fail_soon(std::move(done),
                            client_error(ErrorKind::kInvalidRequest, bytes.status().message()));
  }
  auto exchange = std::make_shared<Exchange>();
  exchange->url = url;
  exchange->origin = url.origin();
  exchange->method = std::move(request.method);
  exchange->target = std::move(request.target);
  exchange->bytes = std::move(bytes).value();
  exchange->timeout = options.timeout;
  exchange->deadline = Clock::now() + options.timeout;
  exchange->done = std::move(done);
  impl_->submit(std::move(exchange));
}

Result<Response> Client::send_sync(Request request, const RequestOptions& options) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  std::future<Result<Response>> future = promise->get_future();
  send(std::move(request), options,
       [promise](Result<Response> result) { promise->set_value(std::move(result)); });
  return future.get();
}

Result<Response> Client::send_sync(const Url& url, Request request, const RequestOptions& options) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  std::future<Result<Response>> future = promise->get_future();
  send(url, std::move(request), options,
       [promise](Result<Response> result) { promise->set_value(std::move(result)); });
  return future.get();
}

std::uint64_t Client::connections_opened() const {
  return impl_->opened.load(std::memory_order_relaxed);
}

}  // namespace ratchet::http
