// The runtime driven through Dispatch::handle with hand-built RunRequests, as
// the server sends them: plain functions, coroutines that poll and resume,
// replay against the journal versus the live frame cache, divergence.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using nlohmann::json;
using namespace ratchet::testing;

TEST(Runtime, PlainFunctionExitsWithItsResult) {
  Dispatch dispatch(test_options());
  dispatch.function("greet", [](std::string name) { return "hi " + name; });
  auto answer = run(dispatch, first_run("greet", "World"));
  EXPECT_EQ(answer.status(), pb::STATUS_OK);
  ASSERT_TRUE(answer.has_exit());
  EXPECT_EQ(unpacked(answer.exit().result().output()), "hi World");
  EXPECT_EQ(answer.exit().result().output().type_url(),
            "type.googleapis.com/google.protobuf.StringValue");
}

TEST(Runtime, SeveralArgumentsTravelAsAJsonArray) {
  Dispatch dispatch(test_options());
  dispatch.function("add", [](int a, int b) { return a + b; });
  dispatch.function("nothing", []() {});
  auto answer = run(dispatch, first_run("add", json::array({2, 3})));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 5);
  answer = run(dispatch, first_run("nothing", nullptr));
  EXPECT_EQ(answer.status(), pb::STATUS_OK);
  EXPECT_EQ(answer.exit().result().output().type_url(),
            "type.googleapis.com/google.protobuf.Empty");
}

TEST(Runtime, InputThatDoesNotMatchTheParametersIsInvalidArgument) {
  Dispatch dispatch(test_options());
  dispatch.function("add", [](int a, int b) { return a + b; });
  auto answer = run(dispatch, first_run("add", "not two numbers"));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(answer.exit().result().error().type(), "InvalidArgumentError");
}

struct Pipeline {
  Dispatch dispatch;
  std::atomic<int> starts{0};  // how often the coroutine body began (replays)
  Function<std::string(std::string)> transform;
  Function<std::string(std::string)> pipeline;

  explicit Pipeline(Options options = test_options())
      : dispatch(options),
        transform(dispatch.function("transform",
                                    [](std::string m) -> Task<std::string> { co_return m + "!"; })),
        pipeline(dispatch.function("pipeline", [this](std::string msg) -> Task<std::string> {
          ++starts;
          std::string a = co_await transform(msg);
          std::string b = co_await transform(a + "?");
          co_return a + "|" + b;
        })) {}
};

TEST(Runtime, CoroutineFirstRunPollsWithItsCall) {
  Pipeline p;
  auto answer = run(p.dispatch, first_run("pipeline", "hello"));
  EXPECT_EQ(answer.status(), pb::STATUS_OK);
  ASSERT_TRUE(answer.has_poll());
  const auto& poll = answer.poll();
  EXPECT_EQ(poll.typed_coroutine_state().type_url(), "type.googleapis.com/ratchet.sdk.v1.Journal");
  ASSERT_EQ(poll.calls_size(), 1);
  EXPECT_EQ(poll.calls(0).correlation_id(), 1u);
  EXPECT_EQ(poll.calls(0).function(), "transform");
  EXPECT_EQ(poll.calls(0).endpoint(), "http://127.0.0.1:8000");
  EXPECT_EQ(unpacked(poll.calls(0).input()), "hello");
  EXPECT_EQ(poll.min_results(), 1);
}

// Drives `p`'s pipeline to its end, answering each call as transform would.
std::string drive(Pipeline& p, const std::string& id) {
  auto answer = run(p.dispatch, first_run("pipeline", "hello", id));
  while (answer.has_poll()) {
    std::vector<pb::CallResult> results;
    for (const auto& call : answer.poll().calls()) {
      results.push_back(
          ok_result(call.correlation_id(), unpacked(call.input()).get<std::string>() + "!"));
    }
    answer = run(p.dispatch, resume("pipeline", answer.poll(), results, id));
  }
  EXPECT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  return unpacked(answer.exit().result().output()).get<std::string>();
}

TEST(Runtime, ResumingWithResultsRunsToExit) {
  Pipeline p;
  EXPECT_EQ(drive(p, "d1"), "hello!|hello!?!");
}

TEST(Runtime, ReplayAndCacheGiveTheSameResult) {
  Pipeline cached;
  Options no_cache = test_options();
  no_cache.frame_cache_size = 0;
  Pipeline replayed(no_cache);
  EXPECT_EQ(drive(cached, "d1"), drive(replayed, "d1"));
  EXPECT_EQ(cached.starts, 1);    // the live frame was resumed each time
  EXPECT_EQ(replayed.starts, 3);  // first run + one replay per resume
}

TEST(Runtime, AnotherProcessResumesByReplay) {
  Pipeline first;
  Pipeline second;  // another process: same code, empty cache
  auto answer = run(first.dispatch, first_run("pipeline", "hello"));
  answer = run(second.dispatch, resume("pipeline", answer.poll(), {ok_result(1, "hello!")}));
  ASSERT_TRUE(answer.has_poll());
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(answer.poll().calls(0).correlation_id(), 2u);
  answer = run(first.dispatch, resume("pipeline", answer.poll(), {ok_result(2, "x")}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "hello!|x");
  EXPECT_EQ(second.starts, 1);
  EXPECT_EQ(first.starts, 2);  // its cached frame was for an older state: replayed
}

TEST(Runtime, ARetriedResumeReplaysInsteadOfReusingTheAdvancedFrame) {
  Pipeline p;
  auto first = run(p.dispatch, first_run("pipeline", "hello"));
  auto request = resume("pipeline", first.poll(), {ok_result(1, "A")});
  auto second = run(p.dispatch, request);
  auto again = run(p.dispatch, request);  // the server retried the same attempt
  EXPECT_EQ(second.SerializeAsString(), again.SerializeAsString());
}

TEST(Runtime, ChangedCodeIsIncompatibleStateNamingTheStep) {
  Pipeline old_code;
  auto answer = run(old_code.dispatch, first_run("pipeline", "hello"));
  answer = run(old_code.dispatch, resume("pipeline", answer.poll(), {ok_result(1, "A")}));
  ASSERT_TRUE(answer.has_poll());

  Dispatch new_code(test_options());
  auto transform =
      new_code.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
  auto shout = new_code.function("shout", [](std::string m) { return m; });
  new_code.function("pipeline", [&](std::string msg) -> Task<std::string> {
    std::string a = co_await transform(msg);
    co_return co_await shout(a);  // was transform(a + "?")
  });
  auto diverged = run(new_code, resume("pipeline", answer.poll(), {ok_result(2, "B")}));
  EXPECT_EQ(diverged.status(), pb::STATUS_INCOMPATIBLE_STATE);
  EXPECT_EQ(diverged.exit().result().error().type(), "IncompatibleStateError");
  EXPECT_NE(diverged.exit().result().error().message().find("step 2"), std::string::npos)
      << diverged.exit().result().error().message();
  EXPECT_NE(diverged.exit().result().error().message().find("shout"), std::string::npos);
}

TEST(Runtime, ChangedArgumentsAreIncompatibleState) {
  Pipeline old_code;
  auto answer = run(old_code.dispatch, first_run("pipeline", "hello"));
  Dispatch new_code(test_options());
  auto transform =
      new_code.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
  new_code.function("pipeline", [&](std::string msg) -> Task<std::string> {
    co_return co_await transform(msg + " changed");
  });
  auto diverged = run(new_code, resume("pipeline", answer.poll(), {ok_result(1, "A")}));
  EXPECT_EQ(diverged.status(), pb::STATUS_INCOMPATIBLE_STATE);
  EXPECT_NE(diverged.exit().result().error().message().find("step 1"), std::string::npos);
}

TEST(Runtime, TheFrameCacheIsBounded) {
  Options options = test_options();
  options.frame_cache_size = 2;
  Pipeline p(options);
  std::vector<pb::RunResponse> polls;
  for (int i = 0; i < 5; ++i) {
    polls.push_back(run(p.dispatch, first_run("pipeline", "m", "d" + std::to_string(i))));
  }
  EXPECT_EQ(p.starts, 5);
  // The two most recent resume from the cache; the three evicted replay.
  for (int i = 4; i >= 0; --i) {
    auto answer = run(p.dispatch, resume("pipeline", polls[i].poll(), {ok_result(1, "x")},
                                         "d" + std::to_string(i)));
    EXPECT_TRUE(answer.has_poll());
  }
  EXPECT_EQ(p.starts, 5 + 3);
}

TEST(Runtime, GatherPollsForAllAndReturnsResultsInOrder) {
  Dispatch dispatch(test_options());
  auto transform = dispatch.function("transform", [](std::string m) { return m + "!"; });
  dispatch.function("fanout", [&](std::vector<std::string> msgs) -> Task<std::vector<std::string>> {
    std::vector<Call<std::string>> calls;
    for (auto& m : msgs) calls.push_back(transform(m));
    co_return co_await gather(std::move(calls));
  });
  auto answer = run(dispatch, first_run("fanout", json::array({"a", "b", "c"})));
  ASSERT_TRUE(answer.has_poll());
  ASSERT_EQ(answer.poll().calls_size(), 3);
  EXPECT_EQ(answer.poll().min_results(), 3);
  // Results arrive in two batches, out of order.
  answer = run(dispatch, resume("fanout", answer.poll(), {ok_result(3, "c!")}));
  ASSERT_TRUE(answer.has_poll());
  EXPECT_EQ(answer.poll().calls_size(), 0);
  EXPECT_EQ(answer.poll().min_results(), 2);
  answer = run(dispatch, resume("fanout", answer.poll(), {ok_result(2, "b!"), ok_result(1, "a!")}));
  ASSERT_TRUE(answer.has_exit());
  EXPECT_EQ(unpacked(answer.exit().result().output()), json::array({"a!", "b!", "c!"}));
}

TEST(Runtime, AChildsErrorIsRaisedAsItsTypedException) {
  Dispatch dispatch(test_options());
  auto fetch = dispatch.function("fetch", [](std::string) -> std::string { return ""; });
  dispatch.function("caller", [&](std::string url) -> Task<std::string> {
    try {
      co_return co_await fetch(url);
    } catch (const TimeoutError& e) {
      co_return "caught " + e.type() + ": " + e.what();
    }
  });
  auto answer = run(dispatch, first_run("caller", "http://x"));
  answer =
      run(dispatch, resume("caller", answer.poll(), {error_result(1, "TimeoutError", "slow")}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "caught TimeoutError: slow");
}

TEST(Runtime, AnUncaughtChildErrorFailsTheParentWithItsType) {
  Dispatch dispatch(test_options());
  auto fetch = dispatch.function("fetch", [](std::string) { return 1; });
  dispatch.function("caller", [&]() -> Task<int> { co_return co_await fetch("u"); });
  auto answer = run(dispatch, first_run("caller", nullptr));
  answer =
      run(dispatch, resume("caller", answer.poll(), {error_result(1, "ValueError", "bad value")}));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(answer.exit().result().error().type(), "ValueError");
  EXPECT_EQ(answer.exit().result().error().message(), "bad value");
}

TEST(Runtime, GatherRaisesTheFirstErrorToArrive) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("g", [&]() -> Task<std::string> {
    try {
      std::vector<Call<int>> calls = {f(1), f(2), f(3)};  // (GCC 12 cannot take a braced
      co_await gather(std::move(calls));                  // list inside a co_await)
      co_return "no error";
    } catch (const Error& e) {
      co_return std::string(e.what());
    }
  });
  auto answer = run(dispatch, first_run("g", nullptr));
  answer = run(dispatch, resume("g", answer.poll(),
                                {error_result(3, "PermanentError", "third"),
                                 error_result(1, "PermanentError", "first"), ok_result(2, 2)}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "third");
}

TEST(Runtime, AnyReturnsTheFirstSuccessAndRaceTheFirstResult) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("any_of", [&]() -> Task<int> {
    std::vector<Call<int>> calls = {f(1), f(2), f(3)};
    co_return co_await any(std::move(calls));
  });
  dispatch.function("race_of", [&]() -> Task<int> {
    std::vector<Call<int>> calls = {f(1), f(2), f(3)};
    co_return co_await race(std::move(calls));
  });
  auto answer = run(dispatch, first_run("any_of", nullptr));
  EXPECT_EQ(answer.poll().min_results(), 1);
  answer = run(dispatch, resume("any_of", answer.poll(), {error_result(1, "TemporaryError", "x")}));
  ASSERT_TRUE(answer.has_poll());  // an error is not enough for any
  answer = run(dispatch, resume("any_of", answer.poll(), {ok_result(3, 30), ok_result(2, 20)}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 30);

  answer = run(dispatch, first_run("race_of", nullptr, "r"));
  answer = run(dispatch, resume("race_of", answer.poll(),
                                {error_result(2, "ThrottledError", "slow down")}, "r"));
  EXPECT_EQ(answer.status(), pb::STATUS_THROTTLED);
}

// A server that ignores min_results (dispatch-py's test server) resumes a
// coroutine once all its calls are done and lists their results in call order:
// race cannot know which finished first and says so; any takes a success.
TEST(Runtime, RaceOverResultsWithoutTheirOrderFailsClearly) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("race_of", [&]() -> Task<int> {
    std::vector<Call<int>> calls = {f(1), f(2)};
    co_return co_await race(std::move(calls));
  });
  dispatch.function("any_of", [&]() -> Task<int> {
    std::vector<Call<int>> calls = {f(1), f(2)};
    co_return co_await any(std::move(calls));
  });
  auto answer = run(dispatch, first_run("race_of", nullptr, "r"));
  answer = run(dispatch, resume("race_of", answer.poll(), {ok_result(1, 10), ok_result(2, 20)}, "r",
                                /*ordered=*/false));
  EXPECT_EQ(answer.status(), pb::STATUS_PERMANENT_ERROR);
  EXPECT_NE(answer.exit().result().error().message().find("cannot tell which"), std::string::npos)
      << answer.exit().result().error().message();

  answer = run(dispatch, first_run("race_of", nullptr, "r2"));
  answer = run(dispatch, resume("race_of", answer.poll(), {ok_result(2, 20)}, "r2", false));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 20) << "one result has an order";

  answer = run(dispatch, first_run("any_of", nullptr, "a"));
  answer = run(dispatch,
               resume("any_of", answer.poll(), {ok_result(2, 20), ok_result(1, 10)}, "a", false));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 10) << "a success; the earliest call";
}

TEST(Runtime, AllOfDifferentTypesReturnsATuple) {
  Dispatch dispatch(test_options());
  auto number = dispatch.function("number", [](int x) { return x; });
  auto text = dispatch.function("text", [](std::string s) { return s; });
  dispatch.function("both", [&]() -> Task<std::string> {
    auto [n, s] = co_await all(number(7), text("seven"));
    co_return std::to_string(n) + s;
  });
  auto answer = run(dispatch, first_run("both", nullptr));
  ASSERT_EQ(answer.poll().calls_size(), 2);
  EXPECT_EQ(answer.poll().min_results(), 2);
  answer = run(dispatch, resume("both", answer.poll(), {ok_result(2, "seven"), ok_result(1, 7)}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "7seven");
}

TEST(Runtime, TailCallExitsWithTheCall) {
  Dispatch dispatch(test_options());
  auto next = dispatch.function("next", [](int x) { return x; });
  dispatch.function("first", [&](int x) -> Task<int> { co_return tail_call(next(x + 1)); });
  dispatch.function("void_first", [&](int x) -> Task<void> { co_await tail_call(next(x + 2)); });
  auto answer = run(dispatch, first_run("first", 1));
  ASSERT_TRUE(answer.has_exit());
  EXPECT_FALSE(answer.exit().has_result());
  EXPECT_EQ(answer.exit().tail_call().function(), "next");
  EXPECT_EQ(unpacked(answer.exit().tail_call().input()), 2);
  answer = run(dispatch, first_run("void_first", 1));
  EXPECT_EQ(unpacked(answer.exit().tail_call().input()), 3);
}

Task<int> helper(Function<int(int)> f, int x) {
  int a = co_await f(x);
  co_return a * 10;
}

TEST(Runtime, NestedTasksShareTheJournal) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("outer", [&]() -> Task<int> {
    int a = co_await helper(f, 1);
    int b = co_await helper(f, 2);
    co_return a + b;
  });
  auto answer = run(dispatch, first_run("outer", nullptr));
  answer = run(dispatch, resume("outer", answer.poll(), {ok_result(1, 1)}));
  EXPECT_EQ(answer.poll().calls(0).correlation_id(), 2u);
  answer = run(dispatch, resume("outer", answer.poll(), {ok_result(2, 2)}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 30);
}

TEST(Runtime, APollErrorFailsTheCallsOfThatPoll) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("g", [&]() -> Task<std::string> {
    try {
      co_await f(1);
      co_return "no error";
    } catch (const Error& e) {
      co_return e.type();
    }
  });
  auto answer = run(dispatch, first_run("g", nullptr));
  auto request = resume("g", answer.poll(), {});
  request.mutable_poll_result()->mutable_error()->set_type("TemporaryError");
  request.mutable_poll_result()->mutable_error()->set_message("store down");
  answer = run(dispatch, request);
  EXPECT_EQ(unpacked(answer.exit().result().output()), "TemporaryError");
}

TEST(Runtime, AwaitingACallOutsideACoroutineIsALogicError) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  auto call = f(1);
  EXPECT_THROW(call.await_ready(), std::logic_error);
}

}  // namespace
}  // namespace ratchet
