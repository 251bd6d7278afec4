#include "protocol/connect.hpp"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

namespace ratchet::protocol {
namespace {

struct ConnectCodeInfo {
  ConnectCode code;
  std::string_view name;
  int http_status;
  Code ratchet_code;  // what a Ratchet client makes of an error with this code
};

// The Connect protocol's codes and HTTP statuses (connectrpc.com/docs/protocol).
constexpr std::array<ConnectCodeInfo, 16> kConnectCodes{{
    {ConnectCode::kCanceled, "canceled", 499, Code::kUnavailable},
    {ConnectCode::kUnknown, "unknown", 500, Code::kInternal},
    {ConnectCode::kInvalidArgument, "invalid_argument", 400, Code::kInvalidArgument},
    {ConnectCode::kDeadlineExceeded, "deadline_exceeded", 504, Code::kDeadlineExceeded},
    {ConnectCode::kNotFound, "not_found", 404, Code::kNotFound},
    {ConnectCode::kAlreadyExists, "already_exists", 409, Code::kConflict},
    {ConnectCode::kPermissionDenied, "permission_denied", 403, Code::kPermissionDenied},
    {ConnectCode::kResourceExhausted, "resource_exhausted", 429, Code::kUnavailable},
    {ConnectCode::kFailedPrecondition, "failed_precondition", 400, Code::kFailedPrecondition},
    {ConnectCode::kAborted, "aborted", 409, Code::kConflict},
    {ConnectCode::kOutOfRange, "out_of_range", 400, Code::kInvalidArgument},
    {ConnectCode::kUnimplemented, "unimplemented", 501, Code::kNotFound},
    {ConnectCode::kInternal, "internal", 500, Code::kInternal},
    {ConnectCode::kUnavailable, "unavailable", 503, Code::kUnavailable},
    {ConnectCode::kDataLoss, "data_loss", 500, Code::kDataLoss},
    {ConnectCode::kUnauthenticated, "unauthenticated", 401, Code::kUnauthenticated},
}};

const ConnectCodeInfo& info(ConnectCode code) {
  for (const auto& entry : kConnectCodes) {
    if (entry.code == code) return entry;
  }
  return kConnectCodes[1];  // unknown
}

// Error bodies larger than this are not parsed: a real one is a line or two.
constexpr std::size_t kMaxErrorBodyBytes = 64 * 1024;
// How much of a garbage body an error message quotes.
constexpr std::size_t kMaxQuotedBody = 200;
constexpr std::size_t kMaxQuotedName = 100;

constexpr std::array<std::string_view, 4> kEndpointPrefixes = {"http://", "https://", "bridge://",
                                                               "arn:aws:lambda"};

// `text` cut to `limit` bytes with anything unprintable replaced, for a one-line message.
std::string printable_excerpt(std::string_view text, std::size_t limit) {
  std::string out;
  for (const char c : text.substr(0, limit)) {
    out += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  if (text.size() > limit) out += "...";
  return out;
}

// The length of the valid UTF-8 sequence at the start of `text` (0: not one).
std::size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  std::size_t length = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 ? 2 : 0;
  if (lead >= 0xF5 || length == 0 || text.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
  }
  // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
  if ((lead == 0xE0 && byte(1) < 0xA0) || (lead == 0xED && byte(1) >= 0xA0) ||
      (lead == 0xF0 && byte(1) < 0x90) || (lead == 0xF4 && byte(1) >= 0x90)) {
    return 0;
  }
  return length;
}

// `text` as readable multi-line text: see relayed_error_text.
std::string readable_excerpt(std::string_view text, std::size_t limit) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && out.size() < limit) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      std::size_t length = utf8_sequence_length(text.substr(i));
      out += length ? text.substr(i, length) : std::string_view("?");
      i += length ? length : 1;
      continue;
    }
    bool keep = (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t';
    if (c != '\r') out += keep ? static_cast<char>(c) : '?';
    ++i;
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\t')) {
    out.pop_back();
  }
  if (i < text.size()) out += "...";
  return out;
}

bool is_identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_identifier_char(char c) {
  return is_identifier_start(c) || (c >= '0' && c <= '9') || c == '<' || c == '>' || c == '.';
}

}  // namespace

std::string_view connect_code_name(ConnectCode code) { return info(code).name; }

std::optional<ConnectCode> connect_code_from_name(std::string_view name) {
  for (const auto& entry : kConnectCodes) {
    if (entry.name == name) return entry.code;
  }
  return std::nullopt;
}

int http_status_for(ConnectCode code) { return info(code).http_status; }

ConnectCode connect_code_for_http_status(int http_status) {
  switch (http_status) {
    case 400:
      return ConnectCode::kInternal;
    case 401:
      return ConnectCode::kUnauthenticated;
    case 403:
      return ConnectCode::kPermissionDenied;
    case 404:
      return ConnectCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return ConnectCode::kUnavailable;
    default:
      return ConnectCode::kUnknown;
  }
}

// common/status.cpp's table already names each Code by its Connect code.
ConnectCode connect_code_for(Code code) {
  return connect_code_from_name(code_name(code)).value_or(ConnectCode::kUnknown);
}

Code code_for(ConnectCode code) { return info(code).ratchet_code; }

std::string connect_error_body(ConnectCode code, std::string_view message) {
  const nlohmann::json body = {{"code", connect_code_name(code)},
                               {"message", std::string(message)}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string connect_error_body(const Status& status) {
  return connect_error_body(connect_code_for(status.code()), status.message());
}

Result<ConnectError> parse_connect_error(std::string_view body) {
  if (body.size() > kMaxErrorBodyBytes) return invalid_argument("Connect error body too large");
  try {
    const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object()) return invalid_argument("Connect error body is not a JSON object");
    const auto code = json.find("code");
    if (code == json.end() || !code->is_string()) {
      return invalid_argument("Connect error body has no string \"code\"");
    }
    ConnectError error;
    error.code =
        connect_code_from_name(code->get_ref<const std::string&>()).value_or(ConnectCode::kUnknown);
    const auto message = json.find("message");
    if (message != json.end() && message->is_string()) {
      error.message = message->get_ref<const std::string&>();
    }
    return error;
  } catch (const std::exception& e) {  // allocation failure: the parser itself does not throw
    return invalid_argument(std::string("unreadable Connect error body: ") + e.what());
  }
}

std::string_view media_type_essence(std::string_view content_type) {
  std::string_view essence = content_type.substr(0, content_type.find(';'));
  while (!essence.empty() && (essence.front() == ' ' || essence.front() == '\t')) {
    essence.remove_prefix(1);
  }
  while (!essence.empty() && (essence.back() == ' ' || essence.back() == '\t')) {
    essence.remove_suffix(1);
  }
  return essence;
}

bool is_proto_content_type(std::string_view content_type) {
  std::string_view essence = media_type_essence(content_type);
  if (essence.size() != kProtoContentType.size()) return false;
  for (std::size_t i = 0; i < essence.size(); ++i) {
    char c = essence[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kProtoContentType[i]) return false;
  }
  return true;
}

ConnectError connect_error_from_response(int http_status, std::string_view body) {
  Result<ConnectError> parsed = parse_connect_error(body);
  if (parsed) return std::move(parsed).value();
  ConnectError error;
  error.code = connect_code_for_http_status(http_status);
  error.message = "HTTP " + std::to_string(http_status);
  if (!body.empty()) error.message += ": " + printable_excerpt(body, kMaxQuotedBody);
  return error;
}

std::string relayed_error_text(std::string_view body) {
  Result<ConnectError> parsed = parse_connect_error(body);
  if (parsed) return readable_excerpt(parsed->message, kMaxRelayedText);
  return readable_excerpt(body, kMaxRelayedText);
}

bool is_supported_endpoint(std::string_view endpoint) {
  return std::any_of(kEndpointPrefixes.begin(), kEndpointPrefixes.end(),
                     [&](std::string_view prefix) { return endpoint.starts_with(prefix); });
}

bool is_valid_function_name(std::string_view function) {
  if (function.empty() || !is_identifier_start(function.front())) return false;
  return std::all_of(function.begin(), function.end(), is_identifier_char);
}

Status validate_dispatched_call(std::string_view endpoint, std::string_view function) {
  if (endpoint.empty()) return invalid_argument("call has no endpoint");
  if (!is_supported_endpoint(endpoint)) {
    return invalid_argument("endpoint \"" + printable_excerpt(endpoint, kMaxQuotedName) +
                            "\" must start with http://, https://, bridge:// or arn:aws:lambda");
  }
  if (function.empty()) return invalid_argument("call has no function name");
  if (!is_valid_function_name(function)) {
    return invalid_argument("function name \"" + printable_excerpt(function, kMaxQuotedName) +
                            "\" must match ^[a-zA-Z_][a-zA-Z0-9_<>.]*$");
  }
  return Status::ok();
}

Micros duration_micros(std::int64_t seconds, std::int32_t nanos) {
  constexpr std::int64_t kMaxSeconds = kMaxDurationMicros / kMicrosPerSecond;
  if (seconds >= kMaxSeconds) return kMaxDurationMicros;
  if (seconds <= -kMaxSeconds) return -kMaxDurationMicros;
  return seconds * kMicrosPerSecond + nanos / 1000;
}

PollLimits normalize_poll_limits(std::int32_t min_results, std::int32_t max_results,
                                 std::optional<Micros> max_wait) {
  PollLimits limits;
  limits.max_results = std::clamp(max_results, 1, kMaxPollResults);
  limits.min_results = std::clamp(min_results, 1, limits.max_results);
  limits.max_wait = max_wait && *max_wait > 0 ? *max_wait : kDefaultPollMaxWait;
  return limits;
}

}  // namespace ratchet::protocol
