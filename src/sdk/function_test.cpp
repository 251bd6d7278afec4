// The API that is hard to misuse: gather_settled, per-call options, declared
// functions (recursion, forward references), typed handles and the local
// wait's own timeout. Driven through Dispatch::handle as the server would.
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using nlohmann::json;
using namespace ratchet::testing;
using namespace std::chrono_literals;

// Every outcome, in order: the values that came, and each error as its class.
TEST(GatherSettled, GivesEveryResultAndErrorInOrderOnceAllHaveArrived) {
  Dispatch dispatch(test_options());
  auto reserve = dispatch.function("reserve", [](std::string item) { return item; });
  dispatch.function("reserve_all", [reserve](std::vector<std::string> items) -> Task<json> {
    std::vector<Call<std::string>> calls;
    for (const auto& item : items) calls.push_back(reserve(item));
    json outcomes = json::array();
    for (const Settled<std::string>& r : co_await gather_settled(std::move(calls))) {
      if (r.ok()) {
        outcomes.push_back(r.value());
      } else {
        outcomes.push_back(std::string(status_name(r.error().status())) + " " + r.error().type() +
                           ": " + r.error().what());
      }
    }
    co_return outcomes;
  });
  auto answer = run(dispatch, first_run("reserve_all", json::array({"a", "b", "c"})));
  ASSERT_EQ(answer.poll().calls_size(), 3);
  EXPECT_EQ(answer.poll().min_results(), 3) << "woken once all have arrived";
  // An error first: gather would raise it; gather_settled waits for the rest.
  answer = run(dispatch, resume("reserve_all", answer.poll(),
                                {error_result(2, "ValueError", "no b"), ok_result(1, "a")}));
  ASSERT_TRUE(answer.has_poll());
  EXPECT_EQ(answer.poll().min_results(), 1);
  answer = run(dispatch, resume("reserve_all", answer.poll(), {ok_result(3, "c")}));
  ASSERT_TRUE(answer.has_exit());
  EXPECT_EQ(unpacked(answer.exit().result().output()),
            json::array({"a", "STATUS_INVALID_ARGUMENT ValueError: no b", "c"}));
}

TEST(GatherSettled, ValueOfAFailedCallRaisesItsErrorAndErrorOfASuccessIsALogicError) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("g", [f]() -> Task<std::string> {
    std::vector<Call<int>> calls = {f(1), f(2)};
    auto settled = co_await gather_settled(std::move(calls));
    std::string seen;
    try {
      (void)settled[1].value();
    } catch (const TemporaryError& e) {
      seen += std::string("raised ") + e.what();
    }
    try {
      (void)settled[0].error();
    } catch (const std::logic_error&) {
      seen += "; no error to give";
    }
    co_return seen;
  });
  auto answer = run(dispatch, first_run("g", nullptr));
  answer = run(dispatch, resume("g", answer.poll(),
                                {ok_result(1, 1), error_result(2, "TemporaryError", "later")}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "raised later; no error to give");
}

TEST(CallOptions, AChildCallCarriesItsExpirationAndMaxAttempts) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function("g", [f]() -> Task<int> {
    co_return co_await f.with(CallOptions().expiration(90s).max_attempts(3))(1);
  });
  auto answer = run(dispatch, first_run("g", nullptr));
  ASSERT_EQ(answer.poll().calls_size(), 1);
  const pb::Call& call = answer.poll().calls(0);
  EXPECT_EQ(call.expiration().seconds(), 90);
  EXPECT_EQ(call.max_attempts(), 3u);
  EXPECT_TRUE(call.run_key().empty());
}

TEST(CallOptions, ARunKeyOnAnAwaitedCallIsRefused) {
  Dispatch dispatch(test_options());
  auto f = dispatch.function("f", [](int x) { return x; });
  dispatch.function(
      "g", [f]() -> Task<int> { co_return co_await f.with(CallOptions().run_key("k"))(1); });
  auto answer = run(dispatch, first_run("g", nullptr));
  EXPECT_EQ(answer.status(), pb::STATUS_INVALID_ARGUMENT);
  EXPECT_NE(answer.exit().result().error().message().find("run keys dedupe dispatches"),
            std::string::npos)
      << answer.exit().result().error().message();
}

TEST(CallOptions, SettersReturnANewSetAndCheckTheirValues) {
  CallOptions base = CallOptions().max_attempts(2);
  CallOptions keyed = base.run_key("k", RunKeyScope::kOnceEver);
  EXPECT_EQ(base.run_key(), "");
  EXPECT_EQ(keyed.run_key(), "k");
  EXPECT_EQ(keyed.run_key_scope(), RunKeyScope::kOnceEver);
  EXPECT_EQ(keyed.max_attempts(), 2);
  EXPECT_THROW((void)base.max_attempts(0), std::invalid_argument);
  EXPECT_THROW((void)base.expiration(0s), std::invalid_argument);
}

// The newcomer's `use of 'countdown' before deduction of 'auto'`: declared
// first, a function calls itself.
TEST(Declare, AFunctionCallsItselfOnceDeclared) {
  Dispatch dispatch(test_options());
  Function<int(int)> countdown = dispatch.declare<int(int)>("countdown");
  dispatch.define(countdown, [countdown](int n) -> Task<int> {
    if (n == 0) co_return 0;
    co_return 1 + co_await countdown(n - 1);
  });
  auto answer = run(dispatch, first_run("countdown", 2));
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(answer.poll().calls(0).function(), "countdown");
  EXPECT_EQ(unpacked(answer.poll().calls(0).input()), 1);
  answer = run(dispatch, resume("countdown", answer.poll(), {ok_result(1, 1)}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 2);
}

// And `'greet' was not declared in this scope`: a function defined later.
TEST(Declare, AFunctionCallsOneDefinedLater) {
  Dispatch dispatch(test_options());
  auto greet = dispatch.declare<std::string(std::string)>("greet");
  dispatch.function("welcome", [greet](std::string name) -> Task<std::string> {
    co_return co_await greet(name) + ", welcome";
  });
  dispatch.define(greet, [](std::string name) { return "hi " + name; });
  EXPECT_EQ(unpacked(run(dispatch, first_run("greet", "Ada")).exit().result().output()), "hi Ada");
  auto answer = run(dispatch, first_run("welcome", "Ada"));
  answer = run(dispatch, resume("welcome", answer.poll(), {ok_result(1, "hi Ada")}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "hi Ada, welcome");
}

TEST(Declare, ADeclaredFunctionWithoutDefinitionCannotBeServed) {
  Dispatch dispatch(test_options());
  auto later = dispatch.declare<int(int)>("later");
  Response response = dispatch.handle(http_request(first_run("later", 1)));
  EXPECT_EQ(response.status, 404);
  EXPECT_NE(response.body.find("declared but not defined"), std::string::npos) << response.body;
  try {
    dispatch.start();
    ADD_FAILURE() << "start() served an undefined function";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("later is declared but not defined"), std::string::npos);
  }
  dispatch.define(later, [](int x) { return x; });
  EXPECT_THROW(dispatch.define(later, [](int x) { return x; }), std::invalid_argument)
      << "defined twice";
}

TEST(Handle, ComparesByIdAndKeepsIt) {
  Handle<int> a("id-1");
  EXPECT_EQ(a.id(), "id-1");
  EXPECT_EQ(a, Handle<int>("id-1"));
  EXPECT_FALSE(a == Handle<int>("id-2"));
}

// The local wait's deadline is its own type: not a call's TimeoutError.
TEST(WaitTimeout, IsNotATimeoutErrorAndFailsADurableFunctionWithTimeout) {
  static_assert(!std::is_base_of_v<TimeoutError, WaitTimeoutError>);
  static_assert(!std::is_base_of_v<Error, WaitTimeoutError>);
  WaitTimeoutError gave_up("id-9", "call id-9 has no result after 10 ms of waiting");
  EXPECT_EQ(gave_up.dispatch_id(), "id-9");
  auto info = classify_exception(std::make_exception_ptr(gave_up));
  EXPECT_EQ(info.status, CallStatus::kTimeout);
  EXPECT_EQ(info.type, "ratchet::WaitTimeoutError");
  try {
    throw_remote_error(info.type, info.message);
  } catch (const TimeoutError& e) {
    EXPECT_EQ(e.type(), "ratchet::WaitTimeoutError");
  }
}

}  // namespace
}  // namespace ratchet
