// http::Server on Boost.Beast. One Session per TCP connection, living on one
// io_context (one thread), so a Session's members need no locking (except the
// few a direct write shares: see Session::write_directly). Responders reach
// their Session through a weak_ptr and post to its io_context; the shared
// `Gate` makes sure nothing is posted once the io_contexts are going away.
#include "http/server.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/spin_before_sleep.hpp"
#include "http/detail/io_pool.hpp"
#include "http/detail/send_now.hpp"
#include "http/parser.hpp"

namespace ratchet::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Open while the io_contexts may receive posts; closed (for good) by stop().
struct Gate {
  std::shared_mutex mutex;
  bool open = true;
};

// A fixed pool of threads running blocking handlers, for start_blocking().
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < (threads < 1 ? 1 : threads); ++i) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ~WorkerPool() { stop(); }

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;  // `job` is dropped: its Responder answers 500
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  // Drops the jobs not started and joins the threads (after running jobs end).
  void stop() {
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      dropped.swap(jobs_);
    }
    wake_.notify_all();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void run() {
    pthread_setname_np(pthread_self(), "ratchet-worker");
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        auto ready = [&] { return stopping_ || !jobs_.empty(); };
        if (!SpinBeforeSleep::process().spin_until(lock, ready)) wake_.wait(lock, ready);
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      run_job(job);
    }
  }

  // A job answers its request whatever happens (run_blocking_handler); what
  // could still escape (an allocation failure while answering) is logged,
  // not left to end the process.
  static void run_job(const std::function<void()>& job) {
    try {
      job();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ratchet: a request's worker failed: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "ratchet: a request's worker failed with a non-standard exception\n");
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class Session;

// What every Session of one server shares.
struct ServerShared {
  ServerOptions options;
  Server::Handler handler;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  bool direct_writes = false;  // workers write their responses (start_blocking)
  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> accepted{0};

  std::mutex sessions_mutex;
  std::condition_variable sessions_changed;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::atomic<int> refusing{0};  // connections being answered 503 (not in `sessions`)

  // True when a new connection may be served: there is room under
  // max_connections, or room is being made by closing the connection that has
  // waited longest with no request past its header (idle, or still sending a
  // header). False when every connection is busy with a request.
  bool make_room();

  // Runs `fn(session)` on each live session's own thread.
  template <typename Fn>
  void for_each_session(Fn fn);
};

Response plain_error(int status, std::string text) {
  return Response::with_body(status, "text/plain; charset=utf-8", std::move(text));
}

// A callback that runs exactly once: when run() is called, or else when it is
// destroyed (whatever path a response takes, its `written` callback runs).
class OnceCallback {
 public:
  OnceCallback() = default;
  explicit OnceCallback(std::function<void()> fn) : fn_(std::move(fn)) {}
  OnceCallback(OnceCallback&& other) noexcept : fn_(std::exchange(other.fn_, nullptr)) {}
  OnceCallback& operator=(OnceCallback&& other) noexcept {
    if (this != &other) {
      run();
      fn_ = std::exchange(other.fn_, nullptr);
    }
    return *this;
  }
  ~OnceCallback() { run(); }
  void run() {
    if (auto fn = std::exchange(fn_, nullptr)) fn();
  }

 private:
  std::function<void()> fn_;
};

Response run_blocking_handler(const Server::BlockingHandler& handler, const Request& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    return plain_error(500, std::string("the handler failed: ") + e.what() + "\n");
  } catch (...) {
    return plain_error(500, "the handler failed with an unknown exception\n");
  }
}

}  // namespace

// Lives as long as some copy of the Responder; answers 500 if never used.
class Responder::State {
 public:
  State(std::shared_ptr<Gate> gate, std::weak_ptr<Session> session)
      : gate_(std::move(gate)), session_(std::move(session)) {}
  ~State() {
    if (!sent_.load(std::memory_order_relaxed)) {
      send(plain_error(500, "the handler finished without a response\n"));
    }
  }

  void send(Response response, OnceCallback written = {}, std::function<void()> next_request = {});
  Stream start(Response head);

 private:
  std::shared_ptr<Gate> gate_;
  std::weak_ptr<Session> session_;
  std::atomic<bool> sent_{false};
};

void Responder::send(Response response) const {
  if (state_) state_->send(std::move(response));
}

Stream Responder::start(Response head) const {
  return state_ ? state_->start(std::move(head)) : Stream();
}

// Shared by the copies of a Stream; the Session it feeds knows it by a
// weak_ptr, so that dropping the last copy ends the stream.
class Stream::State {
 public:
  State(std::shared_ptr<Gate> gate, std::weak_ptr<Session> session, std::size_t limit)
      : gate_(std::move(gate)), session_(std::move(session)), limit_(limit) {}
  ~State() { close(); }

  bool write(std::string data);
  void close();
  bool open() const { return open_.load(); }

  // From the Session's thread.
  void ended() { open_.store(false); }
  void sent(std::size_t bytes) { unsent_.fetch_sub(bytes); }

 private:
  // Runs `fn(session)` on the session's thread; false when it is gone.
  template <typename Fn>
  bool post(Fn fn);

  std::shared_ptr<Gate> gate_;
  std::weak_ptr<Session> session_;
  std::size_t limit_;
  std::atomic<bool> open_{true};
  std::atomic<std::size_t> unsent_{0};
};

bool Stream::write(std::string data) const { return state_ && state_->write(std::move(data)); }
void Stream::close() const {
  if (state_) state_->close();
}
bool Stream::open() const { return state_ && state_->open(); }

void Responder::send(Response response, std::function<void()> written,
                     std::function<void()> next_request) const {
  OnceCallback callback(std::move(written));
  if (state_) state_->send(std::move(response), std::move(callback), std::move(next_request));
}

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerShared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {}

  ~Session() {
    if (refused_) shared_->refusing.fetch_sub(1);
    std::lock_guard lock(shared_->sessions_mutex);
    shared_->sessions.erase(this);
    shared_->sessions_changed.notify_all();
  }

  void start() {
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    wait_for_request();
  }

  // Answers 503 and closes: the server is at max_connections, all busy.
  void refuse() {
    refused_ = true;
    in_flight_ = true;
    keep_alive_ = false;
    Response response = plain_error(503, "the server is at its limit of " +
                                             std::to_string(options().max_connections) +
                                             " connections: try again shortly\n");
    response.headers.add("Retry-After", "1");
    deliver(std::move(response));
  }

  // Since when the connection could be closed to make room (idle, or reading a
  // header); kBusy while a request is past its header. Any thread.
  static constexpr Clock::rep kBusy = std::numeric_limits<Clock::rep>::max();
  Clock::rep evictable_since() const { return evictable_since_.load(std::memory_order_relaxed); }

  // Closes the connection to make room, unless a request got past its header
  // since it was chosen (the cap is then exceeded by one, briefly).
  void evict() {
    if (evictable_since() != kBusy) close();
  }

  asio::any_io_executor executor() { return stream_.get_executor(); }

  // The server is stopping: an idle connection closes now, a busy one after
  // its response (which says `Connection: close`).
  void on_stopping() {
    if (streaming_) return stream_end();
    if (!in_flight_) close();
  }

  void close() {
    self_while_in_flight_.reset();
    if (auto state = stream_state_.lock()) state->ended();
    if (closed_) return;
    closed_ = true;
    {
      // After this, no direct write touches the fd, whose number the kernel
      // may give to the next open; one in progress finishes first.
      std::lock_guard lock(direct_mutex_);
      direct_open_ = false;
      socket_closed_ = true;
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  void deliver(Response response, OnceCallback written = {},
               std::function<void()> next_request = {});
  // Any thread: writes the response from this thread if the Session waits
  // for exactly it; false (nothing done) when it must go through deliver().
  bool write_directly(const Response& response, OnceCallback& written,
                      std::function<void()>& next_request);
  // A streamed response (Responder::start): its serialized head, then pieces
  // of its body, then its end.
  void start_stream(std::string head, bool chunked, std::weak_ptr<Stream::State> state);
  void stream_write(std::string data);
  void stream_end();
  bool head_request() const { return head_request_; }
  bool http11() const { return http11_; }
  std::size_t stream_buffer_limit() const { return options().stream_buffer_limit; }

 private:
  void watch_stream_client();
  void flush_stream();
  void wait_for_request();
  void start_request();
  void parse();
  void read_more();
  void on_header();
  void continue_body();
  void on_request();
  void reject(ParseError error, const std::string& reason);
  void lingering_close();
  void drain(std::size_t drained);
  void send_error(Response response);
  std::string response_bytes(const Response& response, bool& keep_alive) const;
  void open_direct_write();
  void close_direct_write();
  std::size_t send_now(const std::string& bytes, beast::error_code& ec);
  void finish_direct_write(std::string bytes, std::size_t sent, beast::error_code ec,
                           bool keep_alive, OnceCallback written,
                           std::function<void()> next_request);
  void write_response(std::size_t already_sent = 0);
  void on_written(beast::error_code ec);

  const ServerOptions& options() const { return shared_->options; }
  void set_evictable(bool evictable) {
    evictable_since_.store(evictable ? Clock::now().time_since_epoch().count() : kBusy,
                           std::memory_order_relaxed);
  }
  std::string_view buffered() const {
    auto data = buffer_.data();
    return {static_cast<const char*>(data.data()), data.size()};
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerShared> shared_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  std::atomic<Clock::rep> evictable_since_{Clock::now().time_since_epoch().count()};
  bool header_seen_ = false;    // on_header() ran for the current request
  Clock::time_point deadline_;  // for the header, then for the body, of the current request
  std::string response_;        // the bytes being written
  bool keep_alive_ = false;     // what the current request allows
  bool head_request_ = false;   // the response has a Content-Length but no body
  bool in_flight_ = false;      // a request was handed to the handler, not yet answered
  bool response_in_progress_ = false;
  bool closed_ = false;
  bool refused_ = false;  // counted in ServerShared::refusing
  bool http11_ = true;    // of the current request
  // While a streamed response is sent: its State (to tell it of the end),
  // the bytes queued behind the write in progress, and how many of the bytes
  // being written count against the client's allowance.
  std::weak_ptr<Stream::State> stream_state_;
  bool streaming_ = false;
  bool stream_chunked_ = false;
  bool stream_ending_ = false;
  bool stream_writing_ = false;
  std::string stream_pending_;
  std::size_t stream_pending_counted_ = 0;
  std::size_t stream_writing_counted_ = 0;
  // What lingering_close reads and discards before it closes, at most.
  std::size_t drain_limit_ = 4 << 20;
  bool draining_body_ = false;  // the rest of a declared body: io_timeout to read it
  // While the handler holds the request, nothing else owns the Session: it
  // owns itself until deliver() or close().
  std::shared_ptr<Session> self_while_in_flight_;
  // Of the response being written (Responder::send).
  OnceCallback written_;
  std::function<void()> next_request_;  // run only when the next request's bytes come
  // The direct write: a worker that has the response writes it itself rather
  // than wake the I/O thread first (a wake-up on the other core costs tens of
  // microseconds). Open from the hand-off of a request to the handler until
  // the first response or close(); a close and a direct write exclude each
  // other, and none happens after a close.
  std::mutex direct_mutex_;
  bool direct_open_ = false;    // guarded by direct_mutex_
  bool socket_closed_ = false;  // guarded by direct_mutex_
};

constexpr std::size_t kReadSize = 16 * 1024;

int status_for(ParseError error) {
  switch (error) {
    case ParseError::kHeadersTooLarge:
      return 431;
    case ParseError::kBodyTooLarge:
      return 413;
    case ParseError::kMalformed:
    case ParseError::kNone:
      break;
  }
  return 400;
}

bool ServerShared::make_room() {
  // Released after the lock: a Session's destructor takes it.
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mutex);
    if (sessions.size() < options.max_connections) return true;
    live.reserve(sessions.size());
    for (auto& [raw, weak] : sessions) {
      std::shared_ptr<Session> session = weak.lock();
      if (!session) return true;  // one is closing already
      live.push_back(std::move(session));
    }
  }
  Session* victim = nullptr;
  Clock::rep oldest = Session::kBusy;
  for (const auto& session : live) {
    Clock::rep since = session->evictable_since();
    if (since < oldest) {
      oldest = since;
      victim = session.get();
    }
  }
  if (!victim) return false;
  auto chosen = victim->shared_from_this();
  asio::post(chosen->executor(), [chosen] { chosen->evict(); });
  return true;
}

template <typename Fn>
void ServerShared::for_each_session(Fn fn) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mutex);
    for (auto& [raw, weak] : sessions) {
      if (auto session = weak.lock()) live.push_back(std::move(session));
    }
  }
  for (auto& session : live) {
    asio::post(session->executor(), [session, fn] { fn(*session); });
  }
}

// Between requests: wait up to idle_timeout for the first byte of the next one.
void Session::wait_for_request() {
  if (closed_) return;
  if (shared_->stopping.load()) return close();
  if (buffer_.size() > 0) {  // a pipelined request is here
    if (auto next = std::exchange(next_request_, nullptr)) next();
    return start_request();
  }
  set_evictable(true);
  stream_.expires_after(options().idle_timeout);
  stream_.async_read_some(buffer_.prepare(kReadSize),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            auto next = std::exchange(self->next_request_, nullptr);
                            if (ec || self->closed_) return self->close();
                            if (next) next();  // the client's next request has begun
                            self->buffer_.commit(n);
                            self->start_request();
                          });
}

// The first byte of a request is here: its header must follow within
// header_timeout of it, however the client spreads it out.
void Session::start_request() {
  parser_.emplace(ParseLimits{options().header_limit, options().body_limit});
  header_seen_ = false;
  deadline_ = Clock::now() + options().header_timeout;
  parse();
}

// Parses what is buffered, and reads more until the request is complete.
void Session::parse() {
  ParseStep step = parser_->put(buffered(), /*stop_after_header=*/!header_seen_);
  buffer_.consume(step.consumed);
  if (step.error != ParseError::kNone) return reject(step.error, parser_->error_message());
  if (parser_->header_done() && !header_seen_) {
    header_seen_ = true;
    return on_header();
  }
  if (parser_->done()) return on_request();
  read_more();
}

void Session::read_more() {
  stream_.expires_at(deadline_);
  stream_.async_read_some(buffer_.prepare(kReadSize),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            if (self->closed_) return;
                            // The client went away or stalled: there is no one to answer.
                            if (ec) return self->close();
                            self->buffer_.commit(n);
                            self->parse();
                          });
}

void Session::on_header() {
  const Request& header = parser_->request();
  http11_ = parser_->http11();
  keep_alive_ = parser_->keep_alive() && http11_;
  head_request_ = header.method == "HEAD";
  if (options().header_check) {
    std::optional<Response> refusal;
    try {
      refusal = options().header_check(header);
    } catch (...) {
      refusal = plain_error(500, "the header check failed\n");
    }
    if (refusal) {
      // Answered without reading the body: the connection cannot carry on.
      keep_alive_ = false;
      in_flight_ = true;
      return deliver(std::move(*refusal));
    }
  }
  set_evictable(false);
  deadline_ = Clock::now() + options().io_timeout;
  if (parser_->done() || !parser_->expects_continue()) return parse();
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  stream_.expires_at(deadline_);
  asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec || self->closed_) return self->close();
                      self->parse();
                    });
}

// A request could not be read: answer what the client did wrong, then close.
void Session::reject(ParseError error, const std::string& reason) {
  if (error == ParseError::kBodyTooLarge) {
    // Most clients send their whole body before they read (no Expect:
    // 100-continue): read and discard the rest of a declared body, up to a
    // bound, so that they see the answer rather than a reset.
    auto length = parser_->content_length();
    if (length && *length <= 4 * static_cast<std::uint64_t>(options().body_limit)) {
      drain_limit_ = std::max<std::size_t>(drain_limit_, *length);
      draining_body_ = true;
    }
    if (options().body_too_large) return send_error(options().body_too_large());
  }
  int status = status_for(error);
  std::string what = status == 400 ? "malformed HTTP request: " : "";
  send_error(plain_error(status, what + reason + "\n"));
}

void Session::on_request() {
  Request request = parser_->take_request();
  parser_.reset();
  in_flight_ = true;
  self_while_in_flight_ = shared_from_this();
  Responder responder(std::make_shared<Responder::State>(shared_->gate, weak_from_this()));
  open_direct_write();
  try {
    shared_->handler(std::move(request), std::move(responder));
  } catch (...) {
    // The Responder given to the handler was destroyed unsent: the client gets 500.
  }
}

void Session::deliver(Response response, OnceCallback written, std::function<void()> next_request) {
  if (closed_ || !in_flight_ || response_in_progress_) return;
  close_direct_write();
  response_in_progress_ = true;
  written_ = std::move(written);
  next_request_ = std::move(next_request);
  bool keep_alive = keep_alive_ && !shared_->stopping.load();
  response_ = response_bytes(response, keep_alive);
  keep_alive_ = keep_alive;
  write_response();
  self_while_in_flight_.reset();  // the write's handler owns the Session now
}

// The response's bytes; `keep_alive` turns false if it is invalid (a 500 instead).
std::string Session::response_bytes(const Response& response, bool& keep_alive) const {
  Result<std::string> bytes = serialize_response(response, keep_alive, head_request_);
  if (!bytes.is_ok()) {
    keep_alive = false;
    bytes = serialize_response(
        plain_error(500, "the handler's response is invalid: " + bytes.status().message() + "\n"),
        keep_alive, head_request_);
  }
  return std::move(bytes).value();
}

// Only for start_blocking's workers, which respond after their handler
// returned: a handler that hands its Responder to another thread may count on
// the response not reaching the client before it returns, as it cannot then.
void Session::open_direct_write() {
  if (!shared_->direct_writes) return;
  std::lock_guard lock(direct_mutex_);
  direct_open_ = !closed_;
}

void Session::close_direct_write() {
  std::lock_guard lock(direct_mutex_);
  direct_open_ = false;
}

// The I/O thread has nothing pending on the socket while the handler holds
// the request (no read, no write, no timer that closes it), so the worker may
// write there, under direct_mutex_; head_request_ and keep_alive_ do not
// change meanwhile. What a non-blocking send leaves (a full socket buffer, an
// error) and the Session's bookkeeping (written, keep-alive, the next read)
// go to the I/O thread after the bytes are out.
bool Session::write_directly(const Response& response, OnceCallback& written,
                             std::function<void()>& next_request) {
  {
    std::lock_guard lock(direct_mutex_);
    if (!direct_open_) return false;
    direct_open_ = false;  // this response is the one: nothing else may write
  }
  bool keep_alive = keep_alive_ && !shared_->stopping.load();
  std::string bytes = response_bytes(response, keep_alive);
  beast::error_code ec;
  std::size_t sent = send_now(bytes, ec);
  asio::post(executor(),
             [self = shared_from_this(), bytes = std::move(bytes), sent, ec, keep_alive,
              written = std::move(written), next_request = std::move(next_request)]() mutable {
               self->finish_direct_write(std::move(bytes), sent, ec, keep_alive, std::move(written),
                                         std::move(next_request));
             });
  return true;
}

// As much of `bytes` as the socket takes now, without blocking; any thread.
std::size_t Session::send_now(const std::string& bytes, beast::error_code& ec) {
  std::lock_guard lock(direct_mutex_);
  if (socket_closed_) return 0;  // finish_direct_write sees closed_
  if (options().before_direct_send) options().before_direct_send();
  return detail::send_now(stream_.socket().native_handle(), bytes, ec);
}

void Session::finish_direct_write(std::string bytes, std::size_t sent, beast::error_code ec,
                                  bool keep_alive, OnceCallback written,
                                  std::function<void()> next_request) {
  if (closed_ || !in_flight_ || response_in_progress_) return;  // `written` runs
  response_in_progress_ = true;
  written_ = std::move(written);
  next_request_ = std::move(next_request);
  keep_alive_ = keep_alive;
  self_while_in_flight_.reset();  // this handler owns the Session, then the next one
  if (ec || sent == bytes.size()) return on_written(ec);
  response_ = std::move(bytes);
  write_response(sent);
}

void Session::send_error(Response response) {
  keep_alive_ = false;
  head_request_ = false;
  in_flight_ = true;
  deliver(std::move(response));
}

void Session::write_response(std::size_t already_sent) {
  stream_.expires_after(options().io_timeout);
  asio::async_write(
      stream_, asio::buffer(response_) + already_sent,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_written(ec); });
}

void Session::on_written(beast::error_code ec) {
  in_flight_ = false;
  response_in_progress_ = false;
  response_.clear();
  written_.run();
  if (ec || closed_) return close();
  if (!keep_alive_) return lingering_close();
  wait_for_request();
}

void Session::start_stream(std::string head, bool chunked, std::weak_ptr<Stream::State> state) {
  if (closed_ || !in_flight_ || response_in_progress_) {
    if (auto live = state.lock()) live->ended();
    return;
  }
  close_direct_write();
  response_in_progress_ = true;
  streaming_ = true;
  stream_chunked_ = chunked;
  keep_alive_ = false;
  stream_state_ = std::move(state);
  stream_pending_ = std::move(head);
  // A HEAD request gets the head alone; and a server that is stopping ends
  // the stream as it starts.
  watch_stream_client();
  if (head_request_ || shared_->stopping.load()) stream_end();
  flush_stream();
}

// Reads (and discards) what the client sends while its stream runs, to see
// it go away: EOF or an error closes the connection, which ends the stream.
// Started before any write so that its read has no deadline: streams are
// long-lived and their clients silent.
void Session::watch_stream_client() {
  stream_.expires_never();
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(kReadSize),
                          [self = shared_from_this()](beast::error_code ec, std::size_t) {
                            if (ec || self->closed_) return self->close();
                            self->watch_stream_client();
                          });
}

void Session::stream_write(std::string data) {
  if (!streaming_ || stream_ending_ || closed_ || data.empty()) return;
  stream_pending_counted_ += data.size();
  stream_pending_ += stream_chunked_ ? chunk_frame(data) : data;
  flush_stream();
}

void Session::stream_end() {
  if (!streaming_ || stream_ending_ || closed_) return;
  stream_ending_ = true;
  if (stream_chunked_ && !head_request_) stream_pending_ += kLastChunk;
  flush_stream();
}

// Writes what is queued, one write at a time; closes once the end is sent.
void Session::flush_stream() {
  if (stream_writing_ || closed_) return;
  if (stream_pending_.empty()) {
    if (stream_ending_) close();
    return;
  }
  response_ = std::move(stream_pending_);
  stream_pending_.clear();
  stream_writing_counted_ = std::exchange(stream_pending_counted_, 0);
  stream_writing_ = true;
  stream_.expires_after(options().io_timeout);  // the write's deadline: the read is pending
  asio::async_write(stream_, asio::buffer(response_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->stream_writing_ = false;
                      if (auto state = self->stream_state_.lock()) {
                        state->sent(self->stream_writing_counted_);
                      }
                      if (ec || self->closed_) return self->close();
                      self->flush_stream();
                    });
}

// Closing a socket with unread input makes the kernel send a reset, which can
// destroy the response before the client reads it (a 413 sent without reading
// the body, say). So: half-close, then discard what the client still sends,
// for a bounded time and size.
void Session::lingering_close() {
  set_evictable(true);
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::size_t buffered = buffer_.size();
  buffer_.clear();
  stream_.expires_after(
      draining_body_ ? Clock::duration(options().io_timeout)
                     : std::min<Clock::duration>(options().io_timeout, std::chrono::seconds(2)));
  drain(buffered);
}

void Session::drain(std::size_t drained) {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(64 * 1024), [self = shared_from_this(), drained](
                                                          beast::error_code ec, std::size_t n) {
    if (ec || self->closed_ || drained + n > self->drain_limit_) return self->close();
    self->drain(drained + n);
  });
}

}  // namespace

void Responder::State::send(Response response, OnceCallback written,
                            std::function<void()> next_request) {
  if (sent_.exchange(true)) return;
  std::shared_lock lock(gate_->mutex);
  if (!gate_->open) return;
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return;
  // A blocking handler's worker: the bytes go out from here, before any wake-up.
  if (session->write_directly(response, written, next_request)) return;
  asio::any_io_executor executor = session->executor();
  // Destroyed unrun (the io_context stops first), the handler still runs `written`.
  asio::dispatch(
      executor, [session = std::move(session), response = std::move(response),
                 written = std::move(written), next_request = std::move(next_request)]() mutable {
        session->deliver(std::move(response), std::move(written), std::move(next_request));
      });
}

Stream Responder::State::start(Response head) {
  if (sent_.exchange(true)) return Stream();
  std::shared_lock lock(gate_->mutex);
  if (!gate_->open) return Stream();
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return Stream();
  bool chunked = session->http11();
  Result<std::string> bytes = serialize_stream_head(head, chunked);
  if (!bytes.is_ok()) {
    Response error =
        plain_error(500, "the handler's response is invalid: " + bytes.status().message() + "\n");
    asio::dispatch(session->executor(), [session, error = std::move(error)]() mutable {
      session->deliver(std::move(error));
    });
    return Stream();
  }
  auto state = std::make_shared<Stream::State>(gate_, session, session->stream_buffer_limit());
  std::weak_ptr<Stream::State> weak = state;
  asio::dispatch(session->executor(),
                 [session, bytes = std::move(bytes).value(), chunked, weak]() mutable {
                   session->start_stream(std::move(bytes), chunked, std::move(weak));
                 });
  return Stream(std::move(state));
}

template <typename Fn>
bool Stream::State::post(Fn fn) {
  std::shared_lock lock(gate_->mutex);
  if (!gate_->open) return false;
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return false;
  asio::post(session->executor(), [session, fn = std::move(fn)]() mutable { fn(*session); });
  return true;
}

bool Stream::State::write(std::string data) {
  if (!open_.load()) return false;
  if (data.empty()) return true;
  if (unsent_.fetch_add(data.size()) + data.size() > limit_) {
    // The client reads too slowly to keep up: cut it off, without waiting
    // for what is queued to reach it.
    if (open_.exchange(false)) post([](Session& session) { session.close(); });
    return false;
  }
  if (post([data = std::move(data)](Session& session) mutable {
        session.stream_write(std::move(data));
      })) {
    return true;
  }
  open_.store(false);
  return false;
}

void Stream::State::close() {
  if (!open_.exchange(false)) return;
  post([](Session& session) { session.stream_end(); });
}

struct Server::Impl {
  std::shared_ptr<ServerShared> shared = std::make_shared<ServerShared>();
  detail::IoPool io;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::uint16_t port = 0;
  std::shared_ptr<WorkerPool> workers;
  bool stopped = false;

  explicit Impl(int io_threads) : io(io_threads), acceptor(io.at(0)), accept_retry(io.at(0)) {}

  Status bind(const std::string& host, std::uint16_t wanted_port);
  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void refuse(tcp::socket socket);
  void wait_for_sessions(Clock::time_point deadline);
  void stop(std::chrono::milliseconds grace);
  void release_stuck_sessions();

  // start() and start_blocking(): `workers` runs the handler's jobs, if set.
  static Result<std::unique_ptr<Server>> launch(ServerOptions options, Handler handler,
                                                std::shared_ptr<WorkerPool> workers);
};

Status Server::Impl::bind(const std::string& host, std::uint16_t wanted_port) {
  beast::error_code ec;
  tcp::resolver resolver(io.at(0));
  auto endpoints = resolver.resolve(host, std::to_string(wanted_port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || endpoints.empty()) {
    return invalid_argument("cannot resolve the listen address '" + host + "': " + ec.message());
  }
  tcp::endpoint endpoint = endpoints.begin()->endpoint();
  std::string where = host + ":" + std::to_string(wanted_port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return unavailable("cannot listen on " + where + ": " + ec.message() +
                       " (is another process using the port?)");
  }
  port = acceptor.local_endpoint().port();
  return Status::ok();
}

void Server::Impl::accept() {
  acceptor.async_accept(io.next(), [this](beast::error_code ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Typically out of file descriptors: back off instead of spinning.
    accept_retry.expires_after(std::chrono::milliseconds(50));
    accept_retry.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) accept();
    });
    return;
  }
  shared->accepted.fetch_add(1, std::memory_order_relaxed);
  if (!shared->make_room()) {
    refuse(std::move(socket));
  } else {
    auto session = std::make_shared<Session>(std::move(socket), shared);
    {
      std::lock_guard lock(shared->sessions_mutex);
      shared->sessions.emplace(session.get(), session);
    }
    asio::post(session->executor(), [session] { session->start(); });
  }
  accept();
}

// At the cap with every connection busy: a 503 for the client, which is not
// counted in `sessions`. Beyond kMaxRefusing of those at once, just a close.
void Server::Impl::refuse(tcp::socket socket) {
  static constexpr int kMaxRefusing = 64;
  if (shared->refusing.fetch_add(1) >= kMaxRefusing) {
    shared->refusing.fetch_sub(1);
    beast::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto session = std::make_shared<Session>(std::move(socket), shared);
  asio::post(session->executor(), [session] { session->refuse(); });
}

void Server::Impl::wait_for_sessions(Clock::time_point deadline) {
  std::unique_lock lock(shared->sessions_mutex);
  shared->sessions_changed.wait_until(lock, deadline, [&] { return shared->sessions.empty(); });
}

void Server::Impl::stop(std::chrono::milliseconds grace) {
  if (stopped) return;
  stopped = true;
  Clock::time_point deadline = Clock::now() + grace;
  shared->stopping.store(true);
  asio::post(io.at(0), [this] {
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
  });
  shared->for_each_session([](Session& session) { session.on_stopping(); });
  wait_for_sessions(deadline);
  shared->for_each_session([](Session& session) { session.close(); });
  wait_for_sessions(Clock::now() + std::chrono::milliseconds(200));
  if (workers) workers->stop();
  {
    std::unique_lock lock(shared->gate->mutex);
    shared->gate->open = false;
  }
  io.stop_and_join();
  release_stuck_sessions();
}

// A Session whose close() was posted but never ran (the io threads stopped
// first) still owns itself; break that cycle now that no I/O thread runs.
void Server::Impl::release_stuck_sessions() {
  std::vector<std::shared_ptr<Session>> stuck;
  {
    std::lock_guard lock(shared->sessions_mutex);
    for (auto& [raw, weak] : shared->sessions) {
      if (auto session = weak.lock()) stuck.push_back(std::move(session));
    }
  }
  for (auto& session : stuck) session->close();
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  if (impl_) impl_->stop(std::chrono::milliseconds(0));
}

Result<std::unique_ptr<Server>> Server::start(ServerOptions options, Handler handler) {
  if (!handler) return invalid_argument("http::Server::start needs a handler");
  return Impl::launch(std::move(options), std::move(handler), nullptr);
}

Result<std::unique_ptr<Server>> Server::Impl::launch(ServerOptions options, Handler handler,
                                                     std::shared_ptr<WorkerPool> workers) {
  if (options.io_threads < 1) return invalid_argument("ServerOptions::io_threads must be >= 1");
  if (options.max_connections < 1) {
    return invalid_argument("ServerOptions::max_connections must be >= 1");
  }
  auto impl = std::make_unique<Impl>(options.io_threads);
  RETURN_IF_ERROR(impl->bind(options.host, options.port));
  impl->shared->options = std::move(options);
  impl->shared->handler = std::move(handler);
  impl->shared->direct_writes = workers != nullptr;
  impl->workers = std::move(workers);
  impl->accept();
  impl->io.start("ratchet-http-s");
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<std::unique_ptr<Server>> Server::start_blocking(ServerOptions options,
                                                       BlockingHandler handler) {
  if (!handler) return invalid_argument("http::Server::start_blocking needs a handler");
  if (options.worker_threads < 1) {
    return invalid_argument("ServerOptions::worker_threads must be >= 1");
  }
  auto workers = std::make_shared<WorkerPool>(options.worker_threads);
  auto shared_handler = std::make_shared<BlockingHandler>(std::move(handler));
  // The raw pool pointer is safe: the Server owns the pool and stop() stops the
  // pool before it stops the I/O threads that run this lambda.
  auto run = [pool = workers.get(), shared_handler](Request request, Responder responder) {
    pool->post([shared_handler, request = std::move(request), responder = std::move(responder)] {
      responder.send(run_blocking_handler(*shared_handler, request));
    });
  };
  return Impl::launch(std::move(options), std::move(run), std::move(workers));
}

std::uint16_t Server::port() const { return impl_->port; }

std::uint64_t Server::connections_accepted() const {
  return impl_->shared->accepted.load(std::memory_order_relaxed);
}

void Server::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

}  // namespace ratchet::http
