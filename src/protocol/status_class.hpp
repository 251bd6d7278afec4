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

#include "ratchet/errors.hpp"

namespace ratchet::protocol {

// The public SDK's enum is the one definition of the protocol's statuses
// (include/ratchet/errors.hpp); the server and the SDK share it.
using DispatchStatus = ratchet::CallStatus;

// The status for a wire value, or nullopt for a number this version does not know.
std::optional<DispatchStatus> dispatch_status_from_wire(int value);

// status_name ("STATUS_TEMPORARY_ERROR"), is_temporary and status_for_http_code
// are the public SDK's functions (include/ratchet/errors.hpp), defined from the
// table in status_class.cpp.
using ratchet::is_temporary;
using ratchet::status_for_http_code;
using ratchet::status_name;
// The status named `name` (as status_name gives it), or nullopt.
std::optional<DispatchStatus> status_from_name(std::string_view name);

inline bool is_terminal(DispatchStatus status) { return !is_temporary(status); }
// True when a retry must restart the call from its original input (INCOMPATIBLE_STATE).
bool restarts_from_input(DispatchStatus status);

// status_for_http_code: 2xx OK, 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 NOT_FOUND, 408 TIMEOUT, 429 THROTTLED, 501 PERMANENT_ERROR,
// other 5xx TEMPORARY_ERROR, anything else PERMANENT_ERROR.

// The server's reading of an endpoint's answer to a RunRequest, before decoding its body.
// kOk means "200-299 with Content-Type exactly application/proto: decode the RunResponse".
// Otherwise the status of the failed attempt: 5xx other than 501 is HTTP_ERROR, 408
// TIMEOUT, 429 THROTTLED (all temporary); other 4xx, 501, 1xx and 3xx as
// status_for_http_code (terminal); a 2xx with any other content type INVALID_RESPONSE.
DispatchStatus classify_endpoint_http_failure(int http_code, std::string_view content_type);

}  // namespace ratchet::protocol
