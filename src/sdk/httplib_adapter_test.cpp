// The cpp-httplib adapter: a RunRequest sent over real HTTP to an httplib
// server with the Dispatch mounted reaches the function and answers its Exit.
#include <gtest/gtest.h>

#include <thread>

#include "http/client.hpp"
#include "ratchet/httplib.hpp"
#include "test_support.hpp"

namespace ratchet::testing {
namespace {

TEST(HttplibAdapter, ServesRunRequestsThroughTheDispatch) {
  Dispatch dispatch(test_options());
  auto shout = dispatch.function("shout", [](std::string text) { return text + "!"; });
  (void)shout;
  httplib::Server server;
  mount(server, dispatch, "/api");
  int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { server.listen_after_bind(); });
  // cpp-httplib 0.11 has no wait_until_ready(): the socket is bound already, so
  // connections queue until it runs; wait (bounded) for it to say so anyway.
  for (int i = 0; i < 2000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  http::Client client;
  auto url = http::parse_url("http://127.0.0.1:" + std::to_string(port) + "/api");
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
  server.stop();
  serving.join();

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

}  // namespace
}  // namespace ratchet::testing
