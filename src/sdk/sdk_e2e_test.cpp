// The SDK end to end: a real `ratchet server` process (RATCHET_BIN) drives
// functions served by Dispatch::start() over signed HTTP: a pipeline coroutine,
// a fan-out of 100, and a child's error reaching its parent's co_await.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "support/server_process.hpp"

namespace ratchet {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The server listens on a port it picks (--listen 127.0.0.1:0), read back
// from its log: no port is chosen here and raced for (ServerProcess).
class SdkEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    auto public_key = testing::keygen(dir_.file("signing.pem"));
    ASSERT_TRUE(public_key.is_ok()) << public_key.status().message();
    public_key_ = *public_key;
    server_ = std::make_unique<testing::ServerProcess>(
        testing::ServerSettings{dir_.path(), "k", dir_.file("signing.pem"), {}, ""});
    Status started = server_->start();
    ASSERT_TRUE(started.is_ok()) << started.message();
  }

  void TearDown() override {
    if (HasFailure() && server_) std::cerr << "server stderr:\n" << server_->logs();
  }

  // The endpoint listens on a port it picks; with no DISPATCH_ENDPOINT_URL,
  // dispatches name that address once start() has bound it.
  Options options() const {
    Options o;
    o.api_key = "k";
    o.api_url = server_->url();
    o.endpoint_addr = "127.0.0.1:0";
    o.endpoint_url = "";
    o.verification_key = public_key_;
    o.trace = false;
    return o;
  }

  testing::TempDir dir_;
  std::string public_key_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(SdkEndToEnd, PipelineFanOutAndErrorsThroughARealServer) {
  Dispatch dispatch(options());
  std::mutex mutex;
  std::vector<std::string> published;

  auto transform = dispatch.function(
      "transform", [](std::string msg) -> Task<std::string> { co_return msg + "!"; });
  auto publish = dispatch.function("publish", [&](std::string to, json payload) {
    std::lock_guard lock(mutex);
    published.push_back(to + ":" + payload.at("msg").get<std::string>());
  });
  auto pipeline = dispatch.function("pipeline", [&](std::string msg) -> Task<std::string> {
    msg = co_await transform(msg);
    json payload = {{"msg", msg}};  // GCC 12 rejects a braced list inside co_await
    co_await publish("local", payload);
    co_return msg;
  });
  auto fanout = dispatch.function("fanout", [&](int n) -> Task<std::vector<std::string>> {
    std::vector<Call<std::string>> calls;
    for (int i = 0; i < n; ++i) calls.push_back(transform(std::to_string(i)));
    co_return co_await gather(std::move(calls));
  });
  auto refuse =
      dispatch.function("refuse", [](std::string why) -> int { throw std::invalid_argument(why); });
  auto caller = dispatch.function("caller", [&]() -> Task<std::string> {
    try {
      co_await refuse("no thanks");
      co_return "no error";
    } catch (const InvalidArgumentError& e) {
      co_return e.type() + ": " + e.what();
    }
  });
  dispatch.start();

  EXPECT_EQ(pipeline.run("hello"), "hello!");
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(published, std::vector<std::string>{"local:hello!"});
  }

  std::vector<std::string> out = fanout.run(100);
  ASSERT_EQ(out.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(out[i], std::to_string(i) + "!");

  EXPECT_EQ(caller.run(), "std::invalid_argument: no thanks");
  EXPECT_THROW(refuse.run("direct"), InvalidArgumentError);

  auto batch = dispatch.batch();
  batch.add(transform("a")).add(transform("b"));
  auto ids = batch.dispatch();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(transform.wait(ids[1]), "b!");
  dispatch.stop();
}

}  // namespace
}  // namespace ratchet
