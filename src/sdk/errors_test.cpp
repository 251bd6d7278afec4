// The one table of statuses, read in each direction.
#include "ratchet/errors.hpp"

#include <gtest/gtest.h>

#include <system_error>

#include "ratchet/ratchet.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using namespace ratchet::testing;

ErrorInfo classify(std::exception_ptr e) { return classify_exception(std::move(e)); }

TEST(Errors, RatchetErrorsCarryTheirStatusAndTypeName) {
  auto info = classify(std::make_exception_ptr(TemporaryError("later")));
  EXPECT_EQ(info.status, CallStatus::kTemporaryError);
  EXPECT_EQ(info.type, "TemporaryError");
  EXPECT_EQ(info.message, "later");
  EXPECT_EQ(classify(std::make_exception_ptr(ThrottledError("x"))).status, CallStatus::kThrottled);
  EXPECT_EQ(classify(std::make_exception_ptr(TimeoutError("x"))).status, CallStatus::kTimeout);
}

TEST(Errors, StandardExceptionsMapSensibly) {
  auto info = classify(std::make_exception_ptr(std::invalid_argument("bad")));
  EXPECT_EQ(info.status, CallStatus::kInvalidArgument);
  EXPECT_EQ(info.type, "std::invalid_argument");
  auto refused = std::make_exception_ptr(
      std::system_error(std::make_error_code(std::errc::connection_refused), "connect"));
  EXPECT_EQ(classify(refused).status, CallStatus::kTcpError);
  EXPECT_EQ(classify(std::make_exception_ptr(std::runtime_error("x"))).status,
            CallStatus::kPermanentError);
  EXPECT_EQ(classify(std::make_exception_ptr(42)).status, CallStatus::kPermanentError);
}

TEST(Errors, RemoteErrorsRaiseTheirClassAndKeepTheRemoteType) {
  try {
    throw_remote_error("ThrottledError", "slow down");
  } catch (const ThrottledError& e) {
    EXPECT_EQ(e.type(), "ThrottledError");
    EXPECT_STREQ(e.what(), "slow down");
  }
  try {
    throw_remote_error("ValueError", "bad");
  } catch (const InvalidArgumentError& e) {
    EXPECT_EQ(e.type(), "ValueError");
  }
  try {
    throw_remote_error("KeyError", "k");
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.type(), "KeyError");
  }
  // The server names a status when it gives up on a call that failed in transit.
  EXPECT_THROW(throw_remote_error("STATUS_TCP_ERROR", "refused (gave up after 20 attempts)"),
               TcpError);
  EXPECT_THROW(throw_remote_error("STATUS_INCOMPATIBLE_STATE", "diverged"), IncompatibleStateError);
}

TEST(Errors, HttpCodesMapPerTheProtocol) {
  EXPECT_EQ(status_for_http_code(200), CallStatus::kOk);
  EXPECT_EQ(status_for_http_code(400), CallStatus::kInvalidArgument);
  EXPECT_EQ(status_for_http_code(401), CallStatus::kUnauthenticated);
  EXPECT_EQ(status_for_http_code(403), CallStatus::kPermissionDenied);
  EXPECT_EQ(status_for_http_code(404), CallStatus::kNotFound);
  EXPECT_EQ(status_for_http_code(408), CallStatus::kTimeout);
  EXPECT_EQ(status_for_http_code(429), CallStatus::kThrottled);
  EXPECT_EQ(status_for_http_code(501), CallStatus::kPermanentError);
  EXPECT_EQ(status_for_http_code(503), CallStatus::kTemporaryError);
  EXPECT_EQ(status_for_http_code(302), CallStatus::kPermanentError);
  EXPECT_NO_THROW(check_http_status(204));
  EXPECT_THROW(check_http_status(503, "the publisher"), TemporaryError);
  EXPECT_THROW(check_http_status(429), ThrottledError);
}

TEST(Errors, FunctionsThatThrowExitWithTheMappedStatus) {
  Dispatch dispatch(test_options());
  dispatch.function("temporary", []() -> int { throw TemporaryError("try again"); });
  dispatch.function("invalid", []() -> int { throw std::invalid_argument("no"); });
  dispatch.function("other", []() -> int { throw std::runtime_error("boom"); });
  dispatch.function("coro", []() -> Task<int> {
    throw ThrottledError("busy");
    co_return 1;
  });
  struct Case {
    const char* function;
    pb::Status status;
    const char* type;
  };
  for (const Case& c : {Case{"temporary", pb::STATUS_TEMPORARY_ERROR, "TemporaryError"},
                        Case{"invalid", pb::STATUS_INVALID_ARGUMENT, "std::invalid_argument"},
                        Case{"other", pb::STATUS_PERMANENT_ERROR, "std::runtime_error"},
                        Case{"coro", pb::STATUS_THROTTLED, "ThrottledError"}}) {
    auto answer = run(dispatch, first_run(c.function, nullptr));
    EXPECT_EQ(answer.status(), c.status) << c.function;
    EXPECT_EQ(answer.exit().result().error().type(), c.type) << c.function;
    EXPECT_TRUE(answer.exit().result().error().value().empty());
  }
}

namespace shop {
struct OutOfStock : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Backorder : OutOfStock {  // derived: registered before its base
  using OutOfStock::OutOfStock;
};
// Cannot be made from a message: raised on the other side as the Error of its status.
struct RateLimited : std::exception {
  const char* what() const noexcept override { return "slow down"; }
};
}  // namespace shop

class RegisteredErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    register_error<shop::Backorder>(CallStatus::kTemporaryError);
    register_error<shop::OutOfStock>(CallStatus::kPermanentError);
    register_error<shop::RateLimited>(CallStatus::kThrottled, "RateLimited");
  }
};

TEST_F(RegisteredErrors, AThrownTypeGetsItsRegisteredStatusAndName) {
  auto info = classify(std::make_exception_ptr(shop::OutOfStock("no more tea")));
  EXPECT_EQ(info.status, CallStatus::kPermanentError);
  EXPECT_EQ(info.type, "ratchet::(anonymous namespace)::shop::OutOfStock");
  EXPECT_EQ(info.message, "no more tea");
  info = classify(std::make_exception_ptr(shop::Backorder("next week")));
  EXPECT_EQ(info.status, CallStatus::kTemporaryError) << "the first registration that matches";
  info = classify(std::make_exception_ptr(shop::RateLimited()));
  EXPECT_EQ(info.status, CallStatus::kThrottled);
  EXPECT_EQ(info.type, "RateLimited");
}

TEST_F(RegisteredErrors, ARemoteErrorOfARegisteredTypeRaisesThatType) {
  std::string type = classify(std::make_exception_ptr(shop::OutOfStock("x"))).type;
  EXPECT_THROW(throw_remote_error(type, "no more tea"), shop::OutOfStock);
  try {
    throw_remote_error("RateLimited", "slow down");
  } catch (const ThrottledError& e) {
    EXPECT_EQ(e.type(), "RateLimited");
  }
}

// The saga's case: a child throws OutOfStock; its parent catches OutOfStock.
TEST_F(RegisteredErrors, ACoroutineCatchesItsChildsRegisteredType) {
  Dispatch dispatch(test_options());
  auto reserve = dispatch.function("reserve", [](std::string item) -> std::string {
    throw shop::OutOfStock(item + " is out of stock");
  });
  dispatch.function("order", [reserve](std::string item) -> Task<std::string> {
    try {
      co_return co_await reserve(item);
    } catch (const shop::OutOfStock& e) {
      co_return std::string("caught: ") + e.what();
    }
  });
  auto child = run(dispatch, first_run("reserve", "tea", "c1"));
  EXPECT_EQ(child.status(), pb::STATUS_PERMANENT_ERROR);
  auto answer = run(dispatch, first_run("order", "tea"));
  pb::CallResult failed = error_result(1, child.exit().result().error().type(),
                                       child.exit().result().error().message());
  answer = run(dispatch, resume("order", answer.poll(), {failed}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), "caught: tea is out of stock");
}

TEST_F(RegisteredErrors, ASuccessStatusCannotBeRegistered) {
  EXPECT_THROW(register_error<std::out_of_range>(CallStatus::kOk), std::invalid_argument);
}

}  // namespace
}  // namespace ratchet
