#include "protocol/status_class.hpp"

#include <array>

#include "protocol/connect.hpp"

namespace ratchet::protocol {
namespace {

enum class Class { kTemporary, kTerminal };

struct StatusInfo {
  DispatchStatus status;
  std::string_view name;
  Class retry_class;
  bool restarts_from_input;
};

// The one table of statuses (PROTOCOL.md, "Status classes and retries"), in wire order.
constexpr std::array<StatusInfo, 16> kStatuses{{
    {DispatchStatus::kUnspecified, "STATUS_UNSPECIFIED", Class::kTerminal, false},
    {DispatchStatus::kOk, "STATUS_OK", Class::kTerminal, false},
    {DispatchStatus::kTimeout, "STATUS_TIMEOUT", Class::kTemporary, false},
    {DispatchStatus::kThrottled, "STATUS_THROTTLED", Class::kTemporary, false},
    {DispatchStatus::kInvalidArgument, "STATUS_INVALID_ARGUMENT", Class::kTerminal, false},
    {DispatchStatus::kInvalidResponse, "STATUS_INVALID_RESPONSE", Class::kTerminal, false},
    {DispatchStatus::kTemporaryError, "STATUS_TEMPORARY_ERROR", Class::kTemporary, false},
    {DispatchStatus::kPermanentError, "STATUS_PERMANENT_ERROR", Class::kTerminal, false},
    {DispatchStatus::kIncompatibleState, "STATUS_INCOMPATIBLE_STATE", Class::kTemporary, true},
    {DispatchStatus::kDnsError, "STATUS_DNS_ERROR", Class::kTemporary, false},
    {DispatchStatus::kTcpError, "STATUS_TCP_ERROR", Class::kTemporary, false},
    {DispatchStatus::kTlsError, "STATUS_TLS_ERROR", Class::kTemporary, false},
    {DispatchStatus::kHttpError, "STATUS_HTTP_ERROR", Class::kTemporary, false},
    {DispatchStatus::kUnauthenticated, "STATUS_UNAUTHENTICATED", Class::kTerminal, false},
    {DispatchStatus::kPermissionDenied, "STATUS_PERMISSION_DENIED", Class::kTerminal, false},
    {DispatchStatus::kNotFound, "STATUS_NOT_FOUND", Class::kTerminal, false},
}};

constexpr bool table_is_in_wire_order() {
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    if (static_cast<std::size_t>(kStatuses[i].status) != i) return false;
  }
  return true;
}
static_assert(table_is_in_wire_order(), "kStatuses must be indexed by wire value");

// Unknown values (out of range casts) read as UNSPECIFIED: terminal, never retried forever.
const StatusInfo& info(DispatchStatus status) {
  const auto index = static_cast<std::size_t>(status);
  return index < kStatuses.size() ? kStatuses[index] : kStatuses[0];
}

}  // namespace

std::optional<DispatchStatus> dispatch_status_from_wire(int value) {
  if (value < 0 || static_cast<std::size_t>(value) >= kStatuses.size()) return std::nullopt;
  return kStatuses[static_cast<std::size_t>(value)].status;
}

std::optional<DispatchStatus> status_from_name(std::string_view name) {
  for (const StatusInfo& entry : kStatuses) {
    if (entry.name == name) return entry.status;
  }
  return std::nullopt;
}

bool restarts_from_input(DispatchStatus status) { return info(status).restarts_from_input; }

DispatchStatus classify_endpoint_http_failure(int http_code, std::string_view content_type) {
  if (http_code >= 200 && http_code < 300) {
    return is_proto_content_type(content_type) ? DispatchStatus::kOk
                                               : DispatchStatus::kInvalidResponse;
  }
  if (http_code >= 500 && http_code < 600 && http_code != 501) return DispatchStatus::kHttpError;
  return status_for_http_code(http_code);
}

}  // namespace ratchet::protocol

// The public SDK's functions (include/ratchet/errors.hpp), from the same table.
namespace ratchet {

std::string_view status_name(CallStatus status) { return protocol::info(status).name; }

bool is_temporary(CallStatus status) {
  return protocol::info(status).retry_class == protocol::Class::kTemporary;
}

CallStatus status_for_http_code(int http_code) {
  switch (http_code) {
    case 400:
      return CallStatus::kInvalidArgument;
    case 401:
      return CallStatus::kUnauthenticated;
    case 403:
      return CallStatus::kPermissionDenied;
    case 404:
      return CallStatus::kNotFound;
    case 408:
      return CallStatus::kTimeout;
    case 429:
      return CallStatus::kThrottled;
    case 501:
      return CallStatus::kPermanentError;
  }
  if (http_code >= 200 && http_code < 300) return CallStatus::kOk;
  if (http_code >= 500 && http_code < 600) return CallStatus::kTemporaryError;
  return CallStatus::kPermanentError;
}

}  // namespace ratchet
