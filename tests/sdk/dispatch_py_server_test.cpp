// The C++ SDK against a server of the protocol that Ratchet did not write:
// dispatch-py 0.8.0's in-memory test server, dispatch.test.Service
// (tests/dispatch_py/test_server.py, in Debian's python3 with ../shared/interop).
//
// What that server supports works: plain calls, coroutines and their steps,
// gather, any, tail calls, a child's typed error in its parent, retries of
// temporary errors, batches, and Wait. What it lacks fails clearly, never
// hangs or answers wrong: it ignores run keys (ConfigurationError once the
// Dispatch answers without Ratchet's acknowledgement); it ignores min_results
// (an `any` resumes once all its calls are done, still with a success; a `race`
// cannot tell which call finished first from results listed in call order, and
// fails with PermanentError saying so); and it holds Wait past
// Connect-Timeout-Ms (a wait with a deadline ends with WaitTimeoutError at it).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "support/run_process.hpp"

namespace ratchet {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

constexpr const char* kServiceApiKey = "916CC3D280BB46DDBDA984B3DD10059A";  // dispatch.test's

class OnDispatchPyServer : public ::testing::Test {
 protected:
  void SetUp() override {
    // setup.sh prints the exports that make dispatch-py importable (it builds its C
    // extension in the directory it is given): let bash evaluate them. Tests run
    // in parallel share that directory: one builds while the others wait (flock).
    std::string work_dir = DISPATCH_PY_WORK_DIR;
    std::string command = "mkdir -p " + work_dir + " && eval \"$(flock " + work_dir +
                          "/.setup.lock bash " + INTEROP_SETUP + " " + work_dir +
                          ")\" && exec \"$DISPATCH_PY\" " + DISPATCH_PY_TEST_SERVER;
    service_.emplace(testing::Process::spawn({"bash", "-c", command}));
    bool listening = service_->read_stdout_until("\n", 120s);
    std::smatch match;
    static const std::regex kListening("listening on (http://[0-9.:]+)\n");
    const std::string& out = service_->stdout_so_far();
    if (listening && std::regex_search(out, match, kListening)) url_ = match[1].str();
    testing::ProcessResult early;
    if (url_.empty()) early = service_->finish(0ms);
    ASSERT_FALSE(url_.empty()) << "dispatch.test.Service did not start:\n"
                               << early.out << early.err;
  }

  void TearDown() override {
    auto result = service_->finish(0ms);  // SIGKILL: it serves until killed
    if (HasFailure()) std::cerr << "dispatch.test.Service's output:\n" << result.err;
  }

  Options options() const {
    Options o;
    o.api_key = kServiceApiKey;
    o.api_url = url_;
    o.endpoint_addr = "127.0.0.1:0";
    o.endpoint_url = "";
    o.verification_key = "";  // the test server does not sign its requests
    o.trace = false;
    return o;
  }

  std::optional<testing::Process> service_;
  std::string url_;
};

TEST_F(OnDispatchPyServer, CallsCoroutinesFanOutTailCallsAndBatchesWork) {
  Dispatch dispatch(options());
  auto twice = dispatch.function("twice", [](int x) { return 2 * x; });
  auto steps = dispatch.function("steps", [&](int x) -> Task<int> {
    int a = co_await twice(x);
    int b = co_await twice(a);
    co_return b + 1;
  });
  auto fanout = dispatch.function("fanout", [&](int n) -> Task<int> {
    std::vector<Call<int>> calls;
    for (int i = 1; i <= n; ++i) calls.push_back(twice(i));
    int sum = 0;
    for (int value : co_await gather(std::move(calls))) sum += value;
    co_return sum;
  });
  auto forward =
      dispatch.function("forward", [&](int x) -> Task<int> { co_return tail_call(steps(x + 1)); });
  dispatch.start();

  EXPECT_EQ(twice.run(21), 42);
  EXPECT_EQ(steps.run(5), 21);
  EXPECT_EQ(fanout.run(20), 420);
  EXPECT_EQ(forward.run(4), 21) << "the tail call ran steps(5) under the same id";
  auto batch = dispatch.batch();
  batch.add(twice(1)).add(twice(2));
  auto ids = batch.dispatch();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(twice.wait(Handle<int>(ids[0])), 2);
  EXPECT_EQ(twice.wait(Handle<int>(ids[1])), 4);
  dispatch.stop();
}

TEST_F(OnDispatchPyServer, ErrorsKeepTheirTypeAndTemporaryOnesAreRetried) {
  Dispatch dispatch(options());
  std::atomic<int> attempts{0};
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
  auto flaky = dispatch.function("flaky", [&]() -> int {
    if (++attempts < 3) throw TemporaryError("not yet");
    return attempts;
  });
  dispatch.start();

  EXPECT_EQ(caller.run(), "std::invalid_argument: no thanks");
  EXPECT_THROW(refuse.run("direct"), InvalidArgumentError);
  EXPECT_EQ(flaky.run(), 3) << "retried (the test server retries at once, without backoff)";
  dispatch.stop();
}

TEST_F(OnDispatchPyServer, AnyWaitsForEveryCallAndRaceFailsClearly) {
  Dispatch dispatch(options());
  auto after = dispatch.function("after", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  auto fail = dispatch.function("fail", []() -> int { throw std::invalid_argument("no"); });
  auto first_success = dispatch.function("first_success", [&]() -> Task<int> {
    std::vector<Call<int>> calls;
    calls.push_back(fail());
    calls.push_back(after(10));
    co_return co_await any(std::move(calls));
  });
  auto fastest = dispatch.function("fastest", [&]() -> Task<int> {
    std::vector<Call<int>> calls;
    calls.push_back(after(400));
    calls.push_back(after(10));
    co_return co_await race(std::move(calls));
  });
  dispatch.start();

  EXPECT_EQ(first_success.run(), 10);
  auto started = Steady::now();
  try {
    int winner = fastest.run();
    FAIL() << "race answered " << winner << " from results without their order";
  } catch (const PermanentError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot tell which of its calls finished first"),
              std::string::npos)
        << e.what();
  }
  EXPECT_GE(Steady::now() - started, 400ms)
      << "the test server ignores min_results: it resumed once the slow call was done too";
  dispatch.stop();
}

TEST_F(OnDispatchPyServer, ARunKeyFailsClearlyOnAServerThatIgnoresIt) {
  Dispatch dispatch(options());
  auto twice = dispatch.function("twice", [](int x) { return 2 * x; });
  dispatch.start();
  try {
    (void)twice.dispatch(RunKey{"nightly"}, 1);
    FAIL() << "a run key the server ignores must not pass silently";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("ignores run keys"), std::string::npos) << e.what();
  }
  EXPECT_EQ(twice.run(2), 4) << "calls without a run key still work";
  dispatch.stop();
}

TEST_F(OnDispatchPyServer, AWaitPastItsDeadlineEndsWithWaitTimeoutErrorThoughTheServerHoldsIt) {
  Dispatch dispatch(options());
  auto after = dispatch.function("after", [](int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return ms;
  });
  auto fastest = dispatch.function("fastest", [&]() -> Task<int> {
    std::vector<Call<int>> calls;
    calls.push_back(after(4000));
    calls.push_back(after(10));
    co_return co_await race(std::move(calls));
  });
  dispatch.start();
  Handle<int> id = fastest.dispatch();
  auto started = Steady::now();
  // Ratchet would resume the race after 10 ms; the test server holds it, and Wait
  // with it, until the 4 s call is done.
  EXPECT_THROW((void)fastest.wait(id, 500ms), WaitTimeoutError);
  EXPECT_LT(Steady::now() - started, 3500ms) << "the deadline, not the server, ended the wait";
  dispatch.stop();
}

}  // namespace
}  // namespace ratchet
