#include "server/http_endpoint_client.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "http/server.hpp"
#include "protocol/signing.hpp"

namespace ratchet::server {
namespace {

// An endpoint on loopback that checks each request's signature as an SDK
// would, and answers with the body it got.
struct VerifyingEndpoint {
  protocol::SigningKey key = *protocol::SigningKey::generate();
  std::unique_ptr<http::Server> server;
  std::mutex mutex;
  std::vector<std::string> refusals;  // why a signature did not verify

  VerifyingEndpoint() {
    auto started = http::Server::start({}, [this](http::Request request, http::Responder reply) {
      auto lookup = [&](std::string_view name) -> std::optional<std::string> {
        auto value = request.header(name);
        return value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
      };
      Status verified =
          protocol::verify_request(key.verification_key(), request.method, request.target,
                                   std::string(request.header("Host").value_or("")), lookup,
                                   request.body, SystemClock().now());
      if (!verified.is_ok()) {
        std::lock_guard lock(mutex);
        refusals.push_back(verified.message());
      }
      reply.send(http::Response::with_body(200, "application/proto", request.body));
    });
    server = std::move(*started);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()); }
};

// Collects replies; waits for them with a bound.
struct Replies {
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<engine::EndpointReply> got;

  std::function<void(engine::EndpointReply)> add() {
    return [this](engine::EndpointReply reply) {
      std::lock_guard lock(mutex);
      got.push_back(std::move(reply));
      arrived.notify_all();
    };
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex);
    return arrived.wait_for(lock, std::chrono::seconds(30), [&] { return got.size() >= n; });
  }
};

// A request alone is signed on the caller's thread, a batch on the client's
// signing thread: both must reach the endpoint signed, and every reply come back.
TEST(HttpEndpointClient, SignsEveryRequestSentAloneOrInABatch) {
  VerifyingEndpoint endpoint;
  SystemClock clock;
  HttpEndpointClient client(endpoint.key, clock, EndpointClientOptions{});
  Replies replies;

  client.run(endpoint.url(), "alone", replies.add());
  ASSERT_TRUE(replies.wait_for(1)) << "no reply to a request sent alone";
  std::vector<engine::EndpointRun> batch;
  for (int i = 0; i < 5; ++i) batch.push_back({endpoint.url(), "batch", replies.add()});
  client.run_all(std::move(batch));
  ASSERT_TRUE(replies.wait_for(6)) << "only " << replies.got.size() << " of 6 replies came";

  std::lock_guard lock(endpoint.mutex);
  EXPECT_TRUE(endpoint.refusals.empty()) << endpoint.refusals.front();
  for (const auto& reply : replies.got) {
    ASSERT_TRUE(reply.responded) << reply.failure_message;
    EXPECT_EQ(reply.http_status, 200);
  }
  EXPECT_EQ(replies.got.front().body, "alone");
  EXPECT_EQ(replies.got.back().body, "batch");
}

}  // namespace
}  // namespace ratchet::server
