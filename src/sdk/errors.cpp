// The SDK's one table of statuses: for each status, the Error subclass that
// carries it and that class's type name on the wire. Everything else here
// (which exception gets which status, which remote type raises which class)
// reads this table, so the directions cannot drift apart.
#include "ratchet/errors.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <typeinfo>
#include <vector>

#include "protocol/status_class.hpp"

namespace ratchet {
namespace {

using MakeError = std::exception_ptr (*)(std::string message, std::string type);

template <typename E>
std::exception_ptr make(std::string message, std::string type) {
  return std::make_exception_ptr(E(std::move(message), std::move(type)));
}

struct Row {
  CallStatus status;
  std::string_view type;  // the class's name, as Error::type() and on the wire
  MakeError make;
};

constexpr Row kTable[] = {
    {CallStatus::kTimeout, "TimeoutError", make<TimeoutError>},
    {CallStatus::kThrottled, "ThrottledError", make<ThrottledError>},
    {CallStatus::kInvalidArgument, "InvalidArgumentError", make<InvalidArgumentError>},
    {CallStatus::kInvalidResponse, "InvalidResponseError", make<InvalidResponseError>},
    {CallStatus::kTemporaryError, "TemporaryError", make<TemporaryError>},
    {CallStatus::kPermanentError, "PermanentError", make<PermanentError>},
    {CallStatus::kIncompatibleState, "IncompatibleStateError", make<IncompatibleStateError>},
    {CallStatus::kDnsError, "DnsError", make<DnsError>},
    {CallStatus::kTcpError, "TcpError", make<TcpError>},
    {CallStatus::kTlsError, "TlsError", make<TlsError>},
    {CallStatus::kHttpError, "HttpError", make<HttpError>},
    {CallStatus::kUnauthenticated, "UnauthenticatedError", make<UnauthenticatedError>},
    {CallStatus::kPermissionDenied, "PermissionDeniedError", make<PermissionDeniedError>},
    {CallStatus::kNotFound, "NotFoundError", make<NotFoundError>},
};

// Foreign type names that arrive in errors from other SDKs (and from C++
// standard exceptions), with the status they stand for.
struct Alias {
  std::string_view type;
  CallStatus status;
};
constexpr Alias kAliases[] = {
    {"std::invalid_argument", CallStatus::kInvalidArgument},
    {"ValueError", CallStatus::kInvalidArgument},  // Python
    {"TypeError", CallStatus::kInvalidArgument},
    {"ConnectionError", CallStatus::kTcpError},
    {"ConnectionRefusedError", CallStatus::kTcpError},
    {"ConnectionResetError", CallStatus::kTcpError},
    {"PermissionError", CallStatus::kPermissionDenied},
    {"ratchet::WaitTimeoutError", CallStatus::kTimeout},
};

const Row& row_for(CallStatus status) {
  for (const Row& row : kTable) {
    if (row.status == status) return row;
  }
  return row_for(CallStatus::kPermanentError);  // OK and UNSPECIFIED are not errors
}

std::optional<CallStatus> status_for_type(std::string_view type) {
  for (const Row& row : kTable) {
    if (row.type == type) return row.status;
  }
  for (const Alias& alias : kAliases) {
    if (alias.type == type) return alias.status;
  }
  // A call the server gave up on carries its status's name ("STATUS_TCP_ERROR").
  return protocol::status_from_name(type);
}

// The exception types users registered (register_error), in order.
struct Registry {
  std::mutex mutex;
  std::vector<detail::RegisteredError> errors;
};
Registry& registry() {
  static Registry instance;
  return instance;
}

std::optional<detail::RegisteredError> registered_for(const std::exception& e) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& error : r.errors) {
    if (error.matches(e)) return error;
  }
  return std::nullopt;
}

std::optional<detail::RegisteredError> registered_named(std::string_view type) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& error : r.errors) {
    if (error.type == type) return error;
  }
  return std::nullopt;
}

// The status of a standard exception that is not a ratchet::Error.
CallStatus status_for_standard(const std::exception& e) {
  if (dynamic_cast<const std::invalid_argument*>(&e)) return CallStatus::kInvalidArgument;
  if (dynamic_cast<const WaitTimeoutError*>(&e)) return CallStatus::kTimeout;
  if (auto* system = dynamic_cast<const std::system_error*>(&e)) {
    const std::error_code& code = system->code();
    if (code == std::errc::timed_out) return CallStatus::kTimeout;
    if (code == std::errc::connection_refused || code == std::errc::connection_reset ||
        code == std::errc::connection_aborted || code == std::errc::network_unreachable ||
        code == std::errc::host_unreachable || code == std::errc::broken_pipe) {
      return CallStatus::kTcpError;
    }
  }
  return CallStatus::kPermanentError;
}

}  // namespace

Error::Error(CallStatus status, std::string message, std::string type)
    : std::runtime_error(std::move(message)),
      status_(status),
      type_(type.empty() ? std::string(row_for(status).type) : std::move(type)) {}

std::exception_ptr make_error(CallStatus status, std::string message, std::string type) {
  return row_for(status).make(std::move(message), std::move(type));
}

void throw_error(CallStatus status, std::string message, std::string type) {
  std::rethrow_exception(make_error(status, std::move(message), std::move(type)));
}

void throw_remote_error(const std::string& type, const std::string& message, CallStatus status) {
  if (auto registered = registered_named(type)) {
    if (registered->make) std::rethrow_exception(registered->make(message));
    throw_error(registered->status, message, type);
  }
  if (status == CallStatus::kUnspecified || status == CallStatus::kOk) {
    status = status_for_type(type).value_or(CallStatus::kPermanentError);
  }
  throw_error(status, message, type);
}

namespace detail {

void add_registered_error(RegisteredError error) {
  if (error.status == CallStatus::kOk || error.status == CallStatus::kUnspecified) {
    throw std::invalid_argument("ratchet::register_error<" + error.type +
                                ">: an error needs a failure status, not " +
                                std::string(status_name(error.status)));
  }
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.errors.push_back(std::move(error));
}

std::string type_name(const std::type_info& type) {
  int result = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &result), std::free);
  return result == 0 && name ? std::string(name.get()) : std::string(type.name());
}

}  // namespace detail

void check_http_status(int http_code, std::string_view what) {
  CallStatus status = status_for_http_code(http_code);
  if (status == CallStatus::kOk) return;
  std::string message = "HTTP " + std::to_string(http_code);
  if (!what.empty()) message += " from " + std::string(what);
  throw_error(status, std::move(message));
}

ErrorInfo classify_exception(std::exception_ptr error) {
  ErrorInfo info;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    if (auto registered = registered_for(e)) {
      info = {registered->status, registered->type, e.what()};
    } else if (const auto* ratchet_error = dynamic_cast<const Error*>(&e)) {
      info = {ratchet_error->status(), ratchet_error->type(), e.what()};
    } else {
      info = {status_for_standard(e), detail::type_name(typeid(e)), e.what()};
    }
  } catch (...) {
    info = {CallStatus::kPermanentError, "unknown", "a non-standard exception was thrown"};
  }
  return info;
}

}  // namespace ratchet
