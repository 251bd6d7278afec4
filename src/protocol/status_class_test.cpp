#include "protocol/status_class.hpp"

#include <gtest/gtest.h>

#include "dispatch/sdk/v1/status.pb.h"

namespace ratchet::protocol {
namespace {

using S = DispatchStatus;

TEST(StatusClass, MirrorsTheProtoEnumValueForValue) {
  const auto* descriptor = dispatch::sdk::v1::Status_descriptor();
  ASSERT_EQ(descriptor->value_count(), 16);
  for (int i = 0; i < descriptor->value_count(); ++i) {
    const auto* value = descriptor->value(i);
    std::optional<S> status = dispatch_status_from_wire(value->number());
    ASSERT_TRUE(status.has_value()) << value->name();
    EXPECT_EQ(status_name(*status), value->name());
    EXPECT_EQ(status_from_name(value->name()), status);
  }
  EXPECT_FALSE(dispatch_status_from_wire(16).has_value());
  EXPECT_FALSE(dispatch_status_from_wire(-1).has_value());
  EXPECT_FALSE(status_from_name("STATUS_BOGUS").has_value());
}

TEST(StatusClass, TemporaryStatusesAreRetried) {
  for (S s : {S::kTimeout, S::kThrottled, S::kTemporaryError, S::kIncompatibleState, S::kDnsError,
              S::kTcpError, S::kTlsError, S::kHttpError}) {
    EXPECT_TRUE(is_temporary(s)) << status_name(s);
    EXPECT_FALSE(is_terminal(s)) << status_name(s);
  }
}

TEST(StatusClass, TerminalStatusesAreNot) {
  for (S s : {S::kOk, S::kInvalidArgument, S::kInvalidResponse, S::kPermanentError,
              S::kUnauthenticated, S::kPermissionDenied, S::kNotFound, S::kUnspecified}) {
    EXPECT_TRUE(is_terminal(s)) << status_name(s);
  }
  // A number from a newer protocol is never retried forever.
  EXPECT_TRUE(is_terminal(static_cast<S>(99)));
}

TEST(StatusClass, OnlyIncompatibleStateRestartsFromInput) {
  EXPECT_TRUE(restarts_from_input(S::kIncompatibleState));
  EXPECT_FALSE(restarts_from_input(S::kTemporaryError));
}

TEST(StatusForHttpCode, FollowsTheSdkTable) {
  EXPECT_EQ(status_for_http_code(200), S::kOk);
  EXPECT_EQ(status_for_http_code(204), S::kOk);
  EXPECT_EQ(status_for_http_code(400), S::kInvalidArgument);
  EXPECT_EQ(status_for_http_code(401), S::kUnauthenticated);
  EXPECT_EQ(status_for_http_code(403), S::kPermissionDenied);
  EXPECT_EQ(status_for_http_code(404), S::kNotFound);
  EXPECT_EQ(status_for_http_code(408), S::kTimeout);
  EXPECT_EQ(status_for_http_code(429), S::kThrottled);
  EXPECT_EQ(status_for_http_code(501), S::kPermanentError);
  EXPECT_EQ(status_for_http_code(500), S::kTemporaryError);
  EXPECT_EQ(status_for_http_code(503), S::kTemporaryError);
  EXPECT_EQ(status_for_http_code(100), S::kPermanentError);
  EXPECT_EQ(status_for_http_code(302), S::kPermanentError);
  EXPECT_EQ(status_for_http_code(418), S::kPermanentError);
}

TEST(ClassifyEndpointHttpFailure, RetriesServerErrorsTimeoutsAndThrottling) {
  for (int code : {500, 502, 503, 504, 599, 408, 429}) {
    EXPECT_TRUE(is_temporary(classify_endpoint_http_failure(code, "text/plain"))) << code;
  }
  EXPECT_EQ(classify_endpoint_http_failure(502, ""), S::kHttpError);
  EXPECT_EQ(classify_endpoint_http_failure(408, ""), S::kTimeout);
  EXPECT_EQ(classify_endpoint_http_failure(429, ""), S::kThrottled);
}

TEST(ClassifyEndpointHttpFailure, FailsOtherClientErrorsAnd501) {
  for (int code : {400, 401, 403, 404, 405, 413, 501, 301, 101}) {
    EXPECT_TRUE(is_terminal(classify_endpoint_http_failure(code, "application/json"))) << code;
  }
  EXPECT_EQ(classify_endpoint_http_failure(404, ""), S::kNotFound);
  EXPECT_EQ(classify_endpoint_http_failure(501, ""), S::kPermanentError);
}

// Media types are case-insensitive and may carry parameters (RFC 9110 8.3.1).
TEST(ClassifyEndpointHttpFailure, Requires2xxToBeApplicationProtoWithAnyParameters) {
  for (const char* type :
       {"application/proto", "application/proto; charset=utf-8", "Application/Proto"}) {
    EXPECT_EQ(classify_endpoint_http_failure(200, type), S::kOk) << type;
  }
  for (const char* type : {"application/json", "", "application/protobuf", "text/plain"}) {
    EXPECT_EQ(classify_endpoint_http_failure(200, type), S::kInvalidResponse) << type;
  }
}

}  // namespace
}  // namespace ratchet::protocol
