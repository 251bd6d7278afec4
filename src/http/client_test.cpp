#include "http/client.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "http/test_support.hpp"

namespace ratchet::http {
namespace {

using namespace ratchet::http::testing;

// A server on an ephemeral port; responds "<method> <target> host=<Host>".
class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }

  void start(ServerOptions options) {
    Result<std::unique_ptr<Server>> server =
        Server::start(std::move(options), [this](Request request, Responder responder) {
          handle(std::move(request), std::move(responder));
        });
    ASSERT_TRUE(server.is_ok()) << server.status().message();
    server_ = std::move(server).value();
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
    url_ = parse_url(base_).value();
  }

  virtual void handle(Request request, Responder responder) {
    if (request.path() == "/slow") {
      std::lock_guard lock(mutex_);
      slow_.push_back(std::move(responder));
      slow_arrived_.notify_all();
      return;
    }
    if (request.path() == "/big") {
      return responder.send(Response::with_body(200, "text/plain", std::string(4096, 'b')));
    }
    responder.send(Response::with_body(
        200, "text/plain",
        request.method + " " + request.target +
            " host=" + std::string(request.header("Host").value_or("")) + " " + request.body));
  }

  // Blocks until the server holds `n` requests to /slow.
  // True once the server holds `n` requests to /slow; false after 30 s.
  [[nodiscard]] bool wait_for_slow(std::size_t n) {
    std::unique_lock lock(mutex_);
    return slow_arrived_.wait_for(lock, std::chrono::seconds(30),
                                  [&] { return slow_.size() >= n; });
  }

  void TearDown() override {
    std::lock_guard lock(mutex_);
    slow_.clear();
  }

  std::unique_ptr<Server> server_;
  std::string base_;
  Url url_;
  std::mutex mutex_;
  std::condition_variable slow_arrived_;
  std::vector<Responder> slow_;
};

TEST_F(ClientTest, SendsToAnAbsoluteUrlWithHostHeader) {
  Client client;
  Result<Response> response = client.send_sync(Request{"POST", base_ + "/p/q?x=1", {}, "body"});
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body,
            "POST /p/q?x=1 host=127.0.0.1:" + std::to_string(server_->port()) + " body");
  EXPECT_EQ(response->header("content-length"), std::to_string(response->body.size()));
}

TEST_F(ClientTest, SendsUnderAUrlPathPrefix) {
  Client client;
  Url url = parse_url(base_ + "/api/").value();
  Result<Response> response = client.send_sync(url, Request{"GET", "/Run", {}, ""});
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->body.substr(0, 13), "GET /api/Run ");
}

TEST_F(ClientTest, ReusesAKeepAliveConnection) {
  Client client;
  for (int i = 0; i < 20; ++i) {
    Result<Response> response = client.send_sync(url_, Request{"GET", "/", {}, ""});
    ASSERT_TRUE(response.is_ok()) << response.status().message();
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server_->connections_accepted(), 1u);
}

// Each request on the reused connection is written by the calling thread;
// each answer must be its own, on the one connection.
TEST_F(ClientTest, RequestsOnAReusedConnectionAreAnsweredInTurn) {
  Client client;
  for (int i = 0; i < 20; ++i) {
    std::string body = "n" + std::to_string(i);
    Result<Response> response = client.send_sync(url_, Request{"POST", "/r", {}, body});
    ASSERT_TRUE(response.is_ok()) << response.status().message();
    EXPECT_TRUE(response->body.ends_with(" " + body)) << response->body;
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server_->connections_accepted(), 1u);
}

TEST_F(ClientTest, CompletesAThousandConcurrentRequests) {
  ClientOptions options;
  options.io_threads = 2;
  Client client(options);
  constexpr int kRequests = 1000;
  std::atomic<int> ok{0};
  std::latch done(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    client.send(url_, Request{"POST", "/n", {}, std::to_string(i)}, {},
                [&, i](Result<Response> response) {
                  if (response.is_ok() && response->status == 200 &&
                      response->body.ends_with(" " + std::to_string(i))) {
                    ++ok;
                  }
                  done.count_down();
                });
  }
  done.wait();
  EXPECT_EQ(ok.load(), kRequests);
  EXPECT_LE(server_->connections_accepted(), options.max_connections_per_host);
}

TEST_F(ClientTest, BoundsConnectionsPerHostAndQueuesTheRest) {
  ClientOptions options;
  options.max_connections_per_host = 2;
  Client client(options);
  std::atomic<int> ok{0};
  std::latch done(50);
  for (int i = 0; i < 50; ++i) {
    client.send(url_, Request{"GET", "/", {}, ""}, {}, [&](Result<Response> response) {
      if (response.is_ok()) ++ok;
      done.count_down();
    });
  }
  done.wait();
  EXPECT_EQ(ok.load(), 50);
  EXPECT_LE(server_->connections_accepted(), 2u);
}

TEST_F(ClientTest, SlowResponseHitsTheRequestTimeout) {
  Client client;
  RequestOptions quick;
  quick.timeout = std::chrono::milliseconds(100);
  Result<Response> response = client.send_sync(url_, Request{"GET", "/slow", {}, ""}, quick);
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kTimeout) << response.status().message();
  EXPECT_EQ(response.status().code(), Code::kDeadlineExceeded);
}

TEST_F(ClientTest, RequestWaitingForABusyPoolTimesOut) {
  ClientOptions options;
  options.max_connections_per_host = 1;
  Client client(options);
  RequestOptions quick;
  quick.timeout = std::chrono::milliseconds(100);
  std::promise<Result<Response>> first;
  client.send(url_, Request{"GET", "/slow", {}, ""}, {},
              [&](Result<Response> r) { first.set_value(std::move(r)); });
  Result<Response> second = client.send_sync(url_, Request{"GET", "/", {}, ""}, quick);
  ASSERT_FALSE(second.is_ok());
  EXPECT_EQ(error_kind(second.status()), ErrorKind::kTimeout) << second.status().message();
  {
    std::lock_guard lock(mutex_);
    for (Responder& r : slow_) r.send(Response::with_body(200, "text/plain", "done"));
  }
  EXPECT_TRUE(first.get_future().get().is_ok());
}

TEST_F(ClientTest, ResponseOverTheLimitIsAnError) {
  ClientOptions options;
  options.response_body_limit = 1024;
  Client client(options);
  Result<Response> response = client.send_sync(url_, Request{"GET", "/big", {}, ""});
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kResponseTooLarge)
      << response.status().message();
}

TEST(Client, ConnectionRefusedIsATcpError) {
  ClosedPort port;
  Client client;
  Result<Response> response = client.send_sync(
      Request{"GET", "http://127.0.0.1:" + std::to_string(port.port()) + "/", {}, ""});
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kTcp) << response.status().message();
  EXPECT_EQ(response.status().code(), Code::kUnavailable);
}

TEST(Client, UnknownHostIsADnsError) {
  Client client;
  Result<Response> response =
      client.send_sync(Request{"GET", "http://no-such-host.invalid/", {}, ""});
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kDns) << response.status().message();
}

TEST(Client, InvalidUrlIsAnInvalidRequest) {
  Client client;
  Result<Response> response = client.send_sync(Request{"GET", "ftp://h/", {}, ""});
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kInvalidRequest);
  EXPECT_EQ(response.status().code(), Code::kInvalidArgument);
}

TEST_F(ClientTest, HttpsToAPlainHttpServerIsATlsError) {
  ClientOptions options;
  options.verify_peer = false;
  Client client(options);
  Result<Response> response = client.send_sync(
      Request{"GET", "https://127.0.0.1:" + std::to_string(server_->port()) + "/", {}, ""});
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kTls) << response.status().message();
}

TEST(Client, MalformedResponseIsReported) {
  RawListener listener;
  std::thread peer([&] {
    int fd = listener.accept_one();
    read_message(fd);
    write_all(fd, "HELLO THERE\r\n\r\n");
    close(fd);
  });
  Client client;
  Result<Response> response = client.send_sync(
      Request{"GET", "http://127.0.0.1:" + std::to_string(listener.port()) + "/", {}, ""});
  peer.join();
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kMalformedResponse)
      << response.status().message();
}

// A response Beast cannot store (a 64 KiB trailer field) used to throw on the
// client's I/O thread and abort the process.
TEST(Client, HostileTrailerInAResponseIsAMalformedResponse) {
  RawListener listener;
  const std::string chunked =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n";
  const std::string hostile[] = {
      chunked + "X: " + std::string(65534, 'a') + "\r\n\r\n",
      chunked + std::string(65534, 'n') + ": v\r\n\r\n",
      chunked + "X: " + std::string(1'000'000, 'a') + "\r\n\r\n",
  };
  std::thread peer([&] {
    for (const std::string& bytes : hostile) {
      int fd = listener.accept_one();
      read_message(fd);
      write_all(fd, bytes);
      close(fd);
    }
  });
  Client client;
  for (std::size_t i = 0; i < std::size(hostile); ++i) {
    Result<Response> response = client.send_sync(
        Request{"GET", "http://127.0.0.1:" + std::to_string(listener.port()) + "/", {}, ""});
    ASSERT_FALSE(response.is_ok());
    EXPECT_EQ(error_kind(response.status()), ErrorKind::kMalformedResponse)
        << response.status().message();
  }
  peer.join();
}

// 1xx responses are interim (RFC 9110 section 15.2): the final one follows.
TEST(Client, SkipsInterimResponses) {
  ScriptedPeer peer(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  Client client;
  Result<Response> response = client.send_sync(Request{"GET", peer.url() + "/", {}, ""});
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "ok");
}

// Sends GET /1 then GET /2 to `listener`'s port on one client, running
// `between` in between: the second's result, the first asserted answered.
void two_requests(Client& client, const RawListener& listener, Result<Response>& second,
                  const std::function<void()>& between = {}) {
  Url url = parse_url("http://127.0.0.1:" + std::to_string(listener.port())).value();
  Result<Response> first = client.send_sync(url, Request{"GET", "/1", {}, ""});
  ASSERT_TRUE(first.is_ok()) << first.status().message();
  if (between) between();
  second = client.send_sync(url, Request{"GET", "/2", {}, ""});
}

// The server answers one request per connection, keep-alive, then closes the
// connection: the client's pooled connection is stale for the next request.
TEST(Client, RetriesOnceOnANewConnectionWhenAPooledOneWasClosed) {
  RawListener listener;
  std::thread peer([&] {
    for (int i = 0; i < 2; ++i) {
      int fd = listener.accept_one();
      read_message(fd);
      write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      shutdown(fd, SHUT_RDWR);
      close(fd);
    }
  });
  Client client;
  Result<Response> second = internal_error("not sent");
  two_requests(client, listener, second);
  peer.join();
  ASSERT_TRUE(second.is_ok()) << second.status().message();
  EXPECT_EQ(second->body, "ok");
  EXPECT_EQ(client.connections_opened(), 2u);
}

// The same, but the server reset the idle connection (SO_LINGER 0): the
// calling thread's direct write of the next request fails at once, which
// must be retried on a new connection like a stale one.
TEST(Client, RetriesOnANewConnectionWhenAPooledOneWasResetWhileIdle) {
  RawListener listener;
  std::promise<void> reset;
  std::thread peer([&] {
    int fd = listener.accept_one();
    read_message(fd);
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    linger abort{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    close(fd);  // on loopback the reset has reached the client when this returns
    reset.set_value();
    pollfd waiting{listener.fd(), POLLIN, 0};
    if (poll(&waiting, 1, 5000) != 1) return;  // no second connection: the test fails
    fd = listener.accept_one();
    read_message(fd);
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain");
    close(fd);
  });
  Client client;
  Result<Response> second = internal_error("not sent");
  two_requests(client, listener, second, [&] { reset.get_future().wait(); });
  peer.join();
  ASSERT_TRUE(second.is_ok()) << second.status().message();
  EXPECT_EQ(second->body, "again");
  EXPECT_EQ(client.connections_opened(), 2u);
}

// A request far larger than the socket's buffers, on a reused connection, to
// a server that reads only once send() has returned: the caller's direct
// write takes a part, and the connection's thread must send the rest.
TEST(Client, ARequestLargerThanTheSocketBufferOnAReusedConnectionIsSentWhole) {
  constexpr std::size_t kSize = 16 << 20;
  RawListener listener;
  int small = 4096;  // inherited by the accepted socket: a small window
  setsockopt(listener.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::promise<void> sent;
  std::thread peer([&] {
    int fd = listener.accept_one();
    read_message(fd);
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    sent.get_future().wait();
    std::string big = read_message(fd);
    std::string size = std::to_string(big.size() - big.find("\r\n\r\n") - 4);
    write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size.size()) + "\r\n\r\n" +
                      size);
    close(fd);
  });
  Client client;
  Url url = parse_url("http://127.0.0.1:" + std::to_string(listener.port())).value();
  ASSERT_TRUE(client.send_sync(url, Request{"GET", "/1", {}, ""}).is_ok());
  std::promise<Result<Response>> result;
  client.send(url, Request{"POST", "/big", {}, std::string(kSize, 'x')}, {},
              [&](Result<Response> r) { result.set_value(std::move(r)); });
  sent.set_value();
  Result<Response> response = result.get_future().get();
  peer.join();
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->body, std::to_string(kSize));
  EXPECT_EQ(client.connections_opened(), 1u);
}

// A connection closed without any response is an error, not retried, when it
// was a new connection (the request may have been acted on).
TEST(Client, ConnectionClosedWithoutAResponseIsATcpError) {
  RawListener listener;
  std::thread peer([&] {
    int fd = listener.accept_one();
    read_message(fd);
    close(fd);
  });
  Client client;
  Result<Response> response = client.send_sync(
      Request{"GET", "http://127.0.0.1:" + std::to_string(listener.port()) + "/", {}, ""});
  peer.join();
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kTcp) << response.status().message();
  EXPECT_EQ(client.connections_opened(), 1u);
}

TEST_F(ClientTest, DestroyingTheClientFailsRequestsInFlight) {
  std::promise<Result<Response>> result;
  {
    Client client;
    client.send(url_, Request{"GET", "/slow", {}, ""}, {},
                [&](Result<Response> r) { result.set_value(std::move(r)); });
    ASSERT_TRUE(wait_for_slow(1)) << "the request never reached the server";
  }
  Result<Response> response = result.get_future().get();
  ASSERT_FALSE(response.is_ok());
  EXPECT_EQ(error_kind(response.status()), ErrorKind::kShutdown) << response.status().message();
}

}  // namespace
}  // namespace ratchet::http
