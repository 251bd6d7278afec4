// The Dispatch protocol's call statuses and what each one means for retries, in one table
// (status_class.cpp), per PROTOCOL.md "Status classes and retries".
//
// - Temporary statuses are retried with backoff (bounded by attempts and expiration);
//   INCOMPATIBLE_STATE is temporary but restarts the call from its original input.
// - Terminal statuses finish the call (OK with its output, the others with an error).
//
// DispatchStatus mirrors dispatch.sdk.v1.Status value for value, so that code using this
// header needs no protobuf headers: convert with static_cast, or dispatch_status_from_wire
// for a value read off the wire (proto3 enums are open: unknown numbers do arrive).
#pragma once

#include <optional>
#include <string_view>

namespace ratchet::protocol {

enum class DispatchStatus : int {
  kUnspecified = 0,
  kOk = 1,
  kTimeout = 2,
  kThrottled = 3,
  kInvalidArgument = 4,
  kInvalidResponse = 5,
  kTemporaryError = 6,
  kPermanentError = 7,
  kIncompatibleState = 8,
  kDnsError = 9,
  kTcpError = 10,
  kTlsError = 11,
  kHttpError = 12,
  kUnauthenticated = 13,
  kPermissionDenied = 14,
  kNotFound = 15,
};

// The status for a wire value, or nullopt for a number this version does not know.
std::optional<DispatchStatus> dispatch_status_from_wire(int value);

// The proto enum name, e.g. "STATUS_TEMPORARY_ERROR".
std::string_view status_name(DispatchStatus status);
// The status named `name` (as status_name gives it), or nullopt.
std::optional<DispatchStatus> status_from_name(std::string_view name);

// True for statuses that are retried; false for terminal ones.
bool is_temporary(DispatchStatus status);
inline bool is_terminal(DispatchStatus status) { return !is_temporary(status); }
// True when a retry must restart the call from its original input (INCOMPATIBLE_STATE).
bool restarts_from_input(DispatchStatus status);

// The SDK's mapping of an HTTP response code to a status: 2xx OK, 400 INVALID_ARGUMENT,
// 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 408 TIMEOUT, 429 THROTTLED,
// 501 PERMANENT_ERROR, other 5xx TEMPORARY_ERROR, anything else PERMANENT_ERROR.
DispatchStatus status_for_http_code(int http_code);

// The server's reading of an endpoint's answer to a RunRequest, before decoding its body.
// kOk means "200-299 with Content-Type exactly application/proto: decode the RunResponse".
// Otherwise the status of the failed attempt: 5xx other than 501 is HTTP_ERROR, 408
// TIMEOUT, 429 THROTTLED (all temporary); other 4xx, 501, 1xx and 3xx as
// status_for_http_code (terminal); a 2xx with any other content type INVALID_RESPONSE.
DispatchStatus classify_endpoint_http_failure(int http_code, std::string_view content_type);

}  // namespace ratchet::protocol
