// Connect unary framing for the Dispatch protocol (PROTOCOL.md, "Transport"): paths,
// headers and content types; the JSON error body {"code": "...", "message": "..."} and
// the mapping between Connect codes and HTTP statuses; and the validation of a dispatched
// Call (PROTOCOL.md, "Validation").
//
// Parsers here read what arrives from the network: they never throw and they accept any
// bytes, answering a Status (or a best-effort fallback) for garbage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/status.hpp"

namespace ratchet::protocol {

inline constexpr std::string_view kDispatchPath = "/dispatch.sdk.v1.DispatchService/Dispatch";
// Ratchet's extension: body is a raw UTF-8 dispatch id; the answer the call's CallResult.
inline constexpr std::string_view kWaitPath = "/dispatch.sdk.v1.DispatchService/Wait";
// Ratchet's Journal service (proto/ratchet/v1/journal_service.proto): the open
// coroutines of given functions, for `--ratchet-check`.
inline constexpr std::string_view kListOpenPath = "/ratchet.v1.Journal/ListOpen";
// Appended to an endpoint's URL.
inline constexpr std::string_view kRunPath = "/dispatch.sdk.v1.FunctionService/Run";

inline constexpr std::string_view kProtoContentType = "application/proto";
inline constexpr std::string_view kJsonContentType = "application/json";
inline constexpr std::string_view kConnectProtocolVersionHeader = "Connect-Protocol-Version";
inline constexpr std::string_view kConnectProtocolVersion = "1";
inline constexpr std::string_view kConnectTimeoutHeader = "Connect-Timeout-Ms";

// True when a Content-Type names application/proto, whatever its parameters and
// case ("Application/Proto; charset=utf-8"): RFC 9110 section 8.3.1.
bool is_proto_content_type(std::string_view content_type);
// The "type/subtype" of a media type, without parameters or surrounding spaces.
std::string_view media_type_essence(std::string_view content_type);

// Request bodies that are empty or larger than this are rejected with 400.
inline constexpr std::size_t kMaxRequestBodyBytes = 16'000'000;

// The Connect error codes (same numbering as gRPC).
enum class ConnectCode {
  kCanceled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "invalid_argument", ...
std::string_view connect_code_name(ConnectCode code);
std::optional<ConnectCode> connect_code_from_name(std::string_view name);

// The HTTP status of an error with this code (400 for invalid_argument, 503 for
// unavailable, ...), per the Connect protocol.
int http_status_for(ConnectCode code);
// The code a client assumes when an error response has no readable Connect error body
// (the Connect protocol's fallback: 400 internal, 401 unauthenticated, 403
// permission_denied, 404 unimplemented, 429/502/503/504 unavailable, otherwise unknown).
ConnectCode connect_code_for_http_status(int http_status);

// Ratchet's codes onto Connect's and back (kOk has no Connect code: it maps to kUnknown).
ConnectCode connect_code_for(Code code);
Code code_for(ConnectCode code);

struct ConnectError {
  ConnectCode code = ConnectCode::kUnknown;
  std::string message;
};

// {"code":"not_found","message":"..."}; the message may hold any bytes (invalid UTF-8 is
// replaced, never thrown on).
std::string connect_error_body(ConnectCode code, std::string_view message);
std::string connect_error_body(const Status& status);

// Parses a Connect error body. Fails (kInvalidArgument) on anything but a JSON object
// with a string "code" (an unknown code reads as kUnknown); "message" is optional.
Result<ConnectError> parse_connect_error(std::string_view body);

// What a client makes of an error response: the body's error when it parses, otherwise
// the code for the HTTP status with a message quoting the start of the body.
ConnectError connect_error_from_response(int http_status, std::string_view body);

// What an error response's body says, for an error message that relays it: the Connect
// error's message when the body is one, else the start of the body as text. Line breaks,
// tabs and UTF-8 are kept (a Python traceback stays readable); other control bytes and
// invalid UTF-8 become '?'; trailing white space goes; at most kMaxRelayedText bytes.
inline constexpr std::size_t kMaxRelayedText = 4000;
std::string relayed_error_text(std::string_view body);

// OK, or kInvalidArgument with a one-line reason, for a Call that DispatchService.Dispatch
// receives: its endpoint must start with http://, https://, bridge:// or arn:aws:lambda,
// and its function match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$.
Status validate_dispatched_call(std::string_view endpoint, std::string_view function);
bool is_supported_endpoint(std::string_view endpoint);
bool is_valid_function_name(std::string_view function);

// What a server does with a Poll's limits, which real SDKs leave unset or out of range:
// results clamped to 1..1000 (min_results at most max_results), max_wait 5 minutes when
// unset or not positive.
struct PollLimits {
  std::int32_t min_results;
  std::int32_t max_results;
  Micros max_wait;
};
inline constexpr std::int32_t kMaxPollResults = 1000;
inline constexpr Micros kDefaultPollMaxWait = 5 * 60 * kMicrosPerSecond;
PollLimits normalize_poll_limits(std::int32_t min_results, std::int32_t max_results,
                                 std::optional<Micros> max_wait);

// A google.protobuf.Duration's seconds and nanos in microseconds, clamped to
// +-100 years: a Poll's max_wait (a durable sleep) or a Call's expiration from
// the network must not overflow the deadline computed from it.
inline constexpr Micros kMaxDurationMicros = 100LL * 366 * 24 * 3600 * kMicrosPerSecond;
Micros duration_micros(std::int64_t seconds, std::int32_t nanos);

}  // namespace ratchet::protocol
