#include "server/api.hpp"

#include <gtest/gtest.h>

#include "dispatch/sdk/v1/dispatch.pb.h"

namespace ratchet::server {
namespace {

namespace pb = dispatch::sdk::v1;

constexpr Micros kNow = 1'700'000'000LL * kMicrosPerSecond;

pb::Call a_call() {
  pb::Call call;
  call.set_endpoint("http://127.0.0.1:8000");
  call.set_function("echo");
  return call;
}

TEST(DecodeDispatch, AHugeExpirationIsAsGoodAsNoneAndNeverInThePast) {
  // 9.2e12 s overflowed the microseconds (undefined behaviour) into the past,
  // and the call expired at once.
  for (std::int64_t seconds :
       {std::int64_t{9'300'000'000'000}, std::numeric_limits<std::int64_t>::max()}) {
    pb::DispatchRequest request;
    *request.add_calls() = a_call();
    request.mutable_calls(0)->mutable_expiration()->set_seconds(seconds);
    request.mutable_calls(0)->mutable_expiration()->set_nanos(999'999'999);
    auto calls = decode_dispatch(request.SerializeAsString(), kNow, {});
    ASSERT_TRUE(calls.is_ok()) << calls.status().message();
    ASSERT_TRUE((*calls)[0].expires_at.has_value());
    EXPECT_GT(*(*calls)[0].expires_at, kNow + 99LL * 365 * 24 * 3600 * kMicrosPerSecond);
  }
}

TEST(DecodeDispatch, IsAllOrNothingAndNamesTheBadCall) {
  pb::DispatchRequest request;
  *request.add_calls() = a_call();
  *request.add_calls() = a_call();
  request.mutable_calls(1)->set_function("1bad");
  auto calls = decode_dispatch(request.SerializeAsString(), kNow, {});
  ASSERT_FALSE(calls.is_ok());
  EXPECT_EQ(calls.status().code(), Code::kInvalidArgument);
  EXPECT_NE(calls.status().message().find("call 1"), std::string::npos) << calls.status().message();
  EXPECT_FALSE(decode_dispatch("\xff\xff garbage", kNow, {}).is_ok());
}

}  // namespace
}  // namespace ratchet::server
