#include "protocol/connect.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>

namespace ratchet::protocol {
namespace {

TEST(ConnectCodes, MapToTheHttpStatusesOfTheProtocol) {
  EXPECT_EQ(http_status_for(ConnectCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status_for(ConnectCode::kUnauthenticated), 401);
  EXPECT_EQ(http_status_for(ConnectCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status_for(ConnectCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(ConnectCode::kInternal), 500);
  EXPECT_EQ(http_status_for(ConnectCode::kUnavailable), 503);
  EXPECT_EQ(http_status_for(ConnectCode::kDeadlineExceeded), 504);
  EXPECT_EQ(http_status_for(ConnectCode::kUnimplemented), 501);
  EXPECT_EQ(http_status_for(ConnectCode::kResourceExhausted), 429);
}

TEST(ConnectCodes, NamesRoundTrip) {
  for (int i = 1; i <= 16; ++i) {
    const auto code = static_cast<ConnectCode>(i);
    EXPECT_EQ(connect_code_from_name(connect_code_name(code)), code) << i;
  }
  EXPECT_EQ(connect_code_name(ConnectCode::kInvalidArgument), "invalid_argument");
  EXPECT_FALSE(connect_code_from_name("INVALID_ARGUMENT").has_value());
}

TEST(ConnectCodes, AgreeWithRatchetCodes) {
  for (Code code :
       {Code::kInvalidArgument, Code::kNotFound, Code::kUnauthenticated, Code::kPermissionDenied,
        Code::kInternal, Code::kUnavailable, Code::kDeadlineExceeded, Code::kConflict,
        Code::kFailedPrecondition, Code::kDataLoss}) {
    EXPECT_EQ(http_status_for(connect_code_for(code)), ratchet::http_status_for(code))
        << code_name(code);
    EXPECT_EQ(code_for(connect_code_for(code)), code) << code_name(code);
  }
  EXPECT_EQ(connect_code_for(Code::kBusy), ConnectCode::kUnavailable);
}

TEST(ConnectCodes, FallBackOnTheHttpStatusWithoutABody) {
  EXPECT_EQ(connect_code_for_http_status(400), ConnectCode::kInternal);
  EXPECT_EQ(connect_code_for_http_status(401), ConnectCode::kUnauthenticated);
  EXPECT_EQ(connect_code_for_http_status(403), ConnectCode::kPermissionDenied);
  EXPECT_EQ(connect_code_for_http_status(404), ConnectCode::kUnimplemented);
  EXPECT_EQ(connect_code_for_http_status(503), ConnectCode::kUnavailable);
  EXPECT_EQ(connect_code_for_http_status(418), ConnectCode::kUnknown);
}

TEST(ConnectError, BodyRoundTrips) {
  const std::string body = connect_error_body(ConnectCode::kNotFound, "no \"such\" function");
  EXPECT_EQ(nlohmann::json::parse(body),
            nlohmann::json({{"code", "not_found"}, {"message", "no \"such\" function"}}));
  Result<ConnectError> parsed = parse_connect_error(body);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status().message();
  EXPECT_EQ(parsed->code, ConnectCode::kNotFound);
  EXPECT_EQ(parsed->message, "no \"such\" function");
}

TEST(ConnectError, BodyFromAStatusUsesItsConnectCode) {
  const std::string body = connect_error_body(invalid_argument("bad call"));
  EXPECT_EQ(nlohmann::json::parse(body)["code"], "invalid_argument");
}

TEST(ConnectError, BodyToleratesInvalidUtf8InTheMessage) {
  const std::string body = connect_error_body(ConnectCode::kInternal, "bad \xff\xfe bytes");
  EXPECT_TRUE(parse_connect_error(body).is_ok());
}

TEST(ConnectError, ParseAcceptsAnUnknownCodeAndAMissingMessage) {
  Result<ConnectError> parsed = parse_connect_error(R"({"code": "brand_new"})");
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->code, ConnectCode::kUnknown);
  EXPECT_EQ(parsed->message, "");
  parsed = parse_connect_error(R"({"code": "unavailable", "message": 7, "details": []})");
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->code, ConnectCode::kUnavailable);
}

TEST(ConnectError, ParseRejectsGarbage) {
  for (const char* garbage : {"", "null", "[]", "\"x\"", "{", "{\"code\": 5}",
                              "{\"message\":\"m\"}", "<html>502 Bad Gateway</html>", "\xff\xfe"}) {
    Result<ConnectError> parsed = parse_connect_error(garbage);
    EXPECT_FALSE(parsed.is_ok()) << garbage;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  }
}

TEST(ConnectError, FromResponseFallsBackOnTheHttpStatus) {
  ConnectError error = connect_error_from_response(503, "<html>\n upstream down</html>");
  EXPECT_EQ(error.code, ConnectCode::kUnavailable);
  EXPECT_EQ(error.message, "HTTP 503: <html>? upstream down</html>");
  error = connect_error_from_response(401, R"({"code":"unauthenticated","message":"bad key"})");
  EXPECT_EQ(error.code, ConnectCode::kUnauthenticated);
  EXPECT_EQ(error.message, "bad key");
  EXPECT_EQ(connect_error_from_response(500, "").message, "HTTP 500");
}

TEST(ContentType, ProtoIsRecognisedWhateverItsParametersAndCase) {
  EXPECT_TRUE(is_proto_content_type("application/proto"));
  EXPECT_TRUE(is_proto_content_type("application/proto; charset=utf-8"));
  EXPECT_TRUE(is_proto_content_type(" Application/PROTO ;charset=\"utf-8\""));
  EXPECT_FALSE(is_proto_content_type("application/protobuf"));
  EXPECT_FALSE(is_proto_content_type("application/json; x=application/proto"));
  EXPECT_FALSE(is_proto_content_type(""));
  EXPECT_EQ(media_type_essence("text/plain ; charset=utf-8"), "text/plain");
}

TEST(ValidateDispatchedCall, AcceptsTheSupportedEndpointsAndPythonNames) {
  for (const char* endpoint : {"http://127.0.0.1:8000", "https://example.com/x", "bridge://a",
                               "arn:aws:lambda:us-east-1:123:function:f"}) {
    EXPECT_TRUE(validate_dispatched_call(endpoint, "f").is_ok()) << endpoint;
  }
  for (const char* function : {"f", "_", "greet", "f.<locals>.g", "Mod.Class_2.method"}) {
    EXPECT_TRUE(validate_dispatched_call("http://x", function).is_ok()) << function;
  }
}

TEST(ValidateDispatchedCall, RejectsWithAOneLineReason) {
  Status status = validate_dispatched_call("", "f");
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_EQ(status.message(), "call has no endpoint");
  status = validate_dispatched_call("ftp://x\n", "f");
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_EQ(status.message().find('\n'), std::string::npos);
  EXPECT_NE(status.message().find("ftp://x?"), std::string::npos) << status.message();
  for (const char* function : {"", "1f", ".f", "f-g", "f g", "f()", "<f>x\xff", "é"}) {
    status = validate_dispatched_call("http://x", function);
    EXPECT_EQ(status.code(), Code::kInvalidArgument) << function;
  }
  EXPECT_FALSE(is_supported_endpoint("HTTP://x"));
  EXPECT_FALSE(is_valid_function_name("<lambda>"));
}

TEST(NormalizePollLimits, ClampsWhatRealSdksSend) {
  PollLimits limits = normalize_poll_limits(0, 0, std::nullopt);
  EXPECT_EQ(limits.min_results, 1);
  EXPECT_EQ(limits.max_results, 1);
  EXPECT_EQ(limits.max_wait, kDefaultPollMaxWait);
  limits = normalize_poll_limits(5000, 5000, 2 * kMicrosPerSecond);
  EXPECT_EQ(limits.min_results, 1000);
  EXPECT_EQ(limits.max_results, 1000);
  EXPECT_EQ(limits.max_wait, 2 * kMicrosPerSecond);
  limits = normalize_poll_limits(10, 3, 0);
  EXPECT_EQ(limits.min_results, 3);
  EXPECT_EQ(limits.max_results, 3);
  EXPECT_EQ(limits.max_wait, kDefaultPollMaxWait);
}

TEST(DurationMicros, ConvertsAndClampsWhatCouldOverflowADeadline) {
  EXPECT_EQ(duration_micros(2, 500'000'000), 2'500'000);
  EXPECT_EQ(duration_micros(0, 1000), 1);
  EXPECT_EQ(duration_micros(std::numeric_limits<std::int64_t>::max(), 999'999'999),
            kMaxDurationMicros);
  EXPECT_EQ(duration_micros(std::numeric_limits<std::int64_t>::min(), 0), -kMaxDurationMicros);
}

}  // namespace
}  // namespace ratchet::protocol
