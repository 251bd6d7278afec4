// The cpp-httplib adapter: a RunRequest sent over real HTTP to an httplib
// server with the Dispatch mounted reaches the function and answers its Exit;
// with a verification key, Dispatch::handle behind the user's own server checks
// the signature, the body's digest and replays, all after the body.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/clock.hpp"
#include "http/client.hpp"
#include "http/test_support.hpp"
#include "protocol/signing.hpp"
#include "ratchet/httplib.hpp"
#include "test_support.hpp"

namespace ratchet::testing {
namespace {

// An httplib server on a loopback port with `dispatch` mounted under "/api",
// serving on its own thread until destroyed.
class MountedServer {
 public:
  explicit MountedServer(Dispatch& dispatch) {
    mount(server_, dispatch, "/api");
    port_ = server_.bind_to_any_port("127.0.0.1");
    serving_ = std::thread([this] { server_.listen_after_bind(); });
    // cpp-httplib 0.11 has no wait_until_ready(): the socket is bound already, so
    // connections queue until it runs; wait (bounded) for it to say so anyway.
    for (int i = 0; i < 2000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ~MountedServer() {
    server_.stop();
    serving_.join();
  }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  int port_ = -1;
  std::thread serving_;
};

TEST(HttplibAdapter, ServesRunRequestsThroughTheDispatch) {
  Dispatch dispatch(test_options());
  auto shout = dispatch.function("shout", [](std::string text) { return text + "!"; });
  (void)shout;
  MountedServer server(dispatch);
  ASSERT_GT(server.port(), 0);
  http::Client client;
  auto url = http::parse_url("http://127.0.0.1:" + std::to_string(server.port()) + "/api");
  ASSERT_TRUE(url.is_ok());
  http::Request request;
  request.method = "POST";
  request.target = std::string(protocol::kRunPath);  // the client puts it under /api
  request.headers.add("Content-Type", "application/proto");
  request.headers.add("Connection", "close");  // or stop() waits out the keep-alive
  request.body = first_run("shout", "hey").SerializeAsString();
  auto response = client.send_sync(*url, request);

  http::Request unknown = request;
  unknown.body = first_run("whisper", "hey").SerializeAsString();
  auto missing = client.send_sync(*url, unknown);

  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("Content-Type").value_or(""), "application/proto");
  pb::RunResponse answer;
  ASSERT_TRUE(answer.ParseFromString(response->body));
  EXPECT_EQ(answer.status(), pb::STATUS_OK);
  EXPECT_EQ(unpacked(answer.exit().result().output()), "hey!");
  ASSERT_TRUE(missing.is_ok());
  EXPECT_EQ(missing->status, 404) << "an unknown function is the handler's 404";
}

// The built-in server checks a signature at the header and hands what verified
// to its handler; handle(), which a user's own server calls, has no such
// finding and must check everything itself.
TEST(HttplibAdapter, ChecksTheSignatureTheDigestAndReplaysOfEachRequest) {
  auto key = protocol::SigningKey::generate().value();
  Options options = test_options();
  options.verification_key = key.public_key_base64();
  Dispatch dispatch(options);
  std::atomic<int> runs = 0;
  dispatch.function("count", [&runs](int) { return ++runs; });
  MountedServer server(dispatch);
  ASSERT_GT(server.port(), 0);
  const std::uint16_t port = static_cast<std::uint16_t>(server.port());
  const std::string path = "/api" + std::string(protocol::kRunPath);
  const std::string authority = "127.0.0.1:" + std::to_string(port);
  const std::string body = first_run("count", 1).SerializeAsString();
  const auto signature =
      protocol::sign_request(key, "POST", path, authority, "application/proto", body,
                             SystemClock::instance().now() / kMicrosPerSecond)
          .value();
  const std::string signed_headers = "Content-Digest: " + signature.content_digest +
                                     "\r\nSignature-Input: " + signature.signature_input +
                                     "\r\nSignature: " + signature.signature + "\r\n";
  // The status of a POST of `sent` with `headers` (whole lines), on its own connection.
  auto status_of = [&](const std::string& sent, const std::string& headers) {
    std::string answer = http::testing::exchange(
        port, "POST " + path + " HTTP/1.1\r\nHost: " + authority +
                  "\r\nConnection: close\r\nContent-Type: application/proto\r\nContent-Length: " +
                  std::to_string(sent.size()) + "\r\n" + headers + "\r\n" + sent);
    return http::testing::status_of(answer);
  };
  EXPECT_EQ(status_of(body, ""), 403) << "unsigned";
  std::string forged = signed_headers;
  forged[forged.find("Signature: dispatch=:") + 21] ^= 1;
  EXPECT_EQ(status_of(body, forged), 403) << "a signature that does not verify";
  EXPECT_EQ(status_of(first_run("count", 2).SerializeAsString(), signed_headers), 403)
      << "a body that is not the one signed";
  EXPECT_EQ(status_of(body, signed_headers), 200);
  EXPECT_EQ(status_of(body, signed_headers), 503) << "the same signature again: a replay";
  EXPECT_EQ(runs.load(), 1);
}

}  // namespace
}  // namespace ratchet::testing
