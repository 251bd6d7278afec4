// The SDK end to end: a real `ratchet server` process (RATCHET_BIN) drives
// functions served by Dispatch::start() over signed HTTP: a pipeline coroutine,
// a fan-out of 100, and a child's error reaching its parent's co_await.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
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
  EXPECT_EQ(transform.wait(Handle<std::string>(ids[1])), "b!");
  dispatch.stop();
}

// "A run key dedupes only while its call runs: dispatching a finished order
// again charged it again." With RunKeyScope::kOnceEver the server returns the
// finished call, and waiting on it gives its result.
TEST_F(SdkEndToEnd, AOnceEverRunKeyReturnsTheFinishedCallsResult) {
  Dispatch dispatch(options());
  auto charges = std::make_shared<std::atomic<int>>(0);
  auto charge = dispatch.function("charge", [charges](int cents) {
    ++*charges;
    return "charged " + std::to_string(cents);
  });
  dispatch.start();
  auto once = charge.with(CallOptions().run_key("order-42", RunKeyScope::kOnceEver));
  Handle<std::string> first = once.dispatch(500);
  EXPECT_EQ(once.wait(first), "charged 500");
  Handle<std::string> again = once.dispatch(500);
  EXPECT_EQ(again, first) << "the finished call, not a new one";
  EXPECT_EQ(once.wait(again), "charged 500");
  EXPECT_EQ(*charges, 1);
  // The protocol's default scope starts anew once the key's call is over.
  auto running_only = charge.with(CallOptions().run_key("order-42"));
  EXPECT_NE(running_only.dispatch(500), first);
  dispatch.stop();
}

TEST_F(SdkEndToEnd, ACallsMaxAttemptsBoundsItsRetries) {
  Dispatch dispatch(options());
  auto attempts = std::make_shared<std::atomic<int>>(0);
  auto flaky = dispatch.function("flaky", [attempts]() -> int {
    ++*attempts;
    throw TemporaryError("not yet");
  });
  dispatch.start();
  try {
    flaky.with(CallOptions().max_attempts(2)).run();
    ADD_FAILURE() << "no error";
  } catch (const TemporaryError& e) {
    EXPECT_NE(std::string(e.what()).find("gave up after 2 attempts"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(*attempts, 2);
  dispatch.stop();
}

// The newcomer's 51 silent seconds: the server could not reach the endpoint.
// The error now says what to check.
TEST_F(SdkEndToEnd, ACallWhoseEndpointIsUnreachableSaysWhatToCheck) {
  Options o = options();
  o.endpoint_url = "http://127.0.0.1:1";  // nothing listens there
  Dispatch dispatch(o);
  auto lost = dispatch.function("lost", []() { return 1; });
  try {
    lost.with(CallOptions().max_attempts(1)).run();
    ADD_FAILURE() << "no error";
  } catch (const TcpError& e) {
    EXPECT_NE(std::string(e.what()).find("listens where DISPATCH_ENDPOINT_URL says"),
              std::string::npos)
        << e.what();
  }
}

// A local wait that gives up is not a call that timed out: the call goes on.
TEST_F(SdkEndToEnd, AWaitThatGivesUpThrowsWaitTimeoutErrorAndTheCallGoesOn) {
  Dispatch dispatch(options());
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  auto slow = dispatch.function("slow", [released]() {
    released.wait_for(std::chrono::seconds(60));
    return 7;
  });
  dispatch.start();
  Handle<int> call = slow.dispatch();
  EXPECT_THROW(slow.wait(call, std::chrono::milliseconds(200)), WaitTimeoutError);
  release->set_value();
  EXPECT_EQ(slow.wait(call), 7) << "the same call, still running, then finished";
  dispatch.stop();
}

// A timeout too long to add to the clock ("forever": milliseconds::max(), or
// 300 years) waits for the result, rather than overflowing into a deadline in
// the past and giving up at once.
TEST_F(SdkEndToEnd, AWaitOfAnEndlessTimeoutWaitsForTheResult) {
  Dispatch dispatch(options());
  std::vector<std::promise<void>> releases(2);
  std::vector<std::shared_future<void>> gates;
  for (auto& release : releases) gates.push_back(release.get_future().share());
  auto slow = dispatch.function("slow", [gates](int i) {
    gates.at(static_cast<std::size_t>(i)).wait_for(std::chrono::seconds(60));
    return i;
  });
  dispatch.start();
  const std::chrono::milliseconds timeouts[] = {std::chrono::milliseconds::max(),
                                                std::chrono::hours(24 * 365 * 300)};
  for (int i = 0; i < 2; ++i) {
    Handle<int> call = slow.dispatch(i);
    auto waited = std::async(std::launch::async, [&] { return slow.wait(call, timeouts[i]); });
    // Had the deadline overflowed into the past, the wait would have ended by now.
    if (waited.wait_for(std::chrono::milliseconds(300)) != std::future_status::timeout) {
      try {
        ADD_FAILURE() << "timeout " << i << ": the wait ended before its call, with "
                      << waited.get();
      } catch (const std::exception& e) {
        ADD_FAILURE() << "timeout " << i << ": the wait ended before its call: " << e.what();
      }
      continue;
    }
    releases[static_cast<std::size_t>(i)].set_value();
    EXPECT_EQ(waited.get(), i);
  }
  for (std::size_t i = 0; i < releases.size(); ++i) {
    try {
      releases[i].set_value();
    } catch (const std::future_error&) {  // released above
    }
  }
  dispatch.stop();
}

}  // namespace
}  // namespace ratchet
