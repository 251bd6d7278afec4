// Errors and call statuses, as a user of the SDK sees them.
//
// Every outcome of a durable call has a CallStatus (the Dispatch protocol's
// dispatch.sdk.v1.Status, value for value). A function fails with a status by
// throwing: a ratchet::Error subclass carries its own status (TemporaryError is
// retried by the server, PermanentError is not, ...); std::invalid_argument is
// INVALID_ARGUMENT; a std::system_error for a refused/reset/aborted connection is
// TCP_ERROR (a timed-out one TIMEOUT); anything else is PERMANENT_ERROR. When a
// child call fails, the coroutine awaiting it gets the matching Error subclass,
// with the remote error's type name (type()) and message.
//
// All of these mappings live in one table (src/sdk/errors.cpp).
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace ratchet {

enum class CallStatus : int {
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

// "STATUS_TEMPORARY_ERROR", ...
std::string_view status_name(CallStatus status);
// True when the server retries a call that ends with this status.
bool is_temporary(CallStatus status);
// For users' own HTTP calls: 2xx OK, 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED,
// 403 PERMISSION_DENIED, 404 NOT_FOUND, 408 TIMEOUT, 429 THROTTLED, 501
// PERMANENT_ERROR, other 5xx TEMPORARY_ERROR, anything else PERMANENT_ERROR.
CallStatus status_for_http_code(int http_code);

// The base of every error the SDK raises. what() is the message.
class Error : public std::runtime_error {
 public:
  // `type` is the error's type name; empty means the class's own name for
  // `status` ("TemporaryError", ...). A child's error keeps its remote type.
  Error(CallStatus status, std::string message, std::string type = {});

  CallStatus status() const noexcept { return status_; }
  const std::string& type() const noexcept { return type_; }
  bool temporary() const { return is_temporary(status_); }

 private:
  CallStatus status_;
  std::string type_;
};

#define RATCHET_DEFINE_ERROR(Name, Status)                                  \
  class Name : public Error {                                               \
   public:                                                                  \
    explicit Name(std::string message, std::string type = {})               \
        : Error(CallStatus::Status, std::move(message), std::move(type)) {} \
  };

RATCHET_DEFINE_ERROR(TimeoutError, kTimeout)
RATCHET_DEFINE_ERROR(ThrottledError, kThrottled)
RATCHET_DEFINE_ERROR(InvalidArgumentError, kInvalidArgument)
RATCHET_DEFINE_ERROR(InvalidResponseError, kInvalidResponse)
RATCHET_DEFINE_ERROR(TemporaryError, kTemporaryError)
RATCHET_DEFINE_ERROR(PermanentError, kPermanentError)
RATCHET_DEFINE_ERROR(IncompatibleStateError, kIncompatibleState)
RATCHET_DEFINE_ERROR(DnsError, kDnsError)
RATCHET_DEFINE_ERROR(TcpError, kTcpError)
RATCHET_DEFINE_ERROR(TlsError, kTlsError)
RATCHET_DEFINE_ERROR(HttpError, kHttpError)
RATCHET_DEFINE_ERROR(UnauthenticatedError, kUnauthenticated)
RATCHET_DEFINE_ERROR(PermissionDeniedError, kPermissionDenied)
RATCHET_DEFINE_ERROR(NotFoundError, kNotFound)

#undef RATCHET_DEFINE_ERROR

// Function::wait gave up before the call had a result. The call is not over
// (wait again with its handle): this is the waiter's own deadline, not a call
// outcome, and so not a TimeoutError, which is a call that timed out on the
// server. Thrown out of a durable function, it is a TIMEOUT (retried).
class WaitTimeoutError : public std::runtime_error {
 public:
  WaitTimeoutError(std::string dispatch_id, const std::string& message)
      : std::runtime_error(message), dispatch_id_(std::move(dispatch_id)) {}
  const std::string& dispatch_id() const noexcept { return dispatch_id_; }

 private:
  std::string dispatch_id_;
};

// A configuration problem (a missing or malformed DISPATCH_* variable); the
// message names the variable and says what to set.
class ConfigurationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The Error subclass for `status` (PermanentError for OK/UNSPECIFIED).
std::exception_ptr make_error(CallStatus status, std::string message, std::string type = {});
[[noreturn]] void throw_error(CallStatus status, std::string message, std::string type = {});
// The exception for an error that arrived over the wire (or was recorded by a
// local step): a type registered with register_error raises that type (when
// it can be made from a message) or the Error of its registered status;
// otherwise the Error of `status` if known, else of the status its type name
// says (a Ratchet name, or a known foreign one like "ValueError"); unknown
// types are PermanentError. The Error keeps the remote type name.
[[noreturn]] void throw_remote_error(const std::string& type, const std::string& message,
                                     CallStatus status = CallStatus::kUnspecified);

namespace detail {
struct RegisteredError {
  std::string type;
  CallStatus status = CallStatus::kPermanentError;
  bool (*matches)(const std::exception&) = nullptr;
  std::exception_ptr (*make)(const std::string& message) = nullptr;  // nullptr: an Error
};
void add_registered_error(RegisteredError error);
std::string type_name(const std::type_info& type);  // demangled: "shop::OutOfStock"
}  // namespace detail

// Registers an exception type of yours with the status it stands for: a
// function that throws it (or a type derived from it) fails with that status
// and the type's name, and a coroutine awaiting that call gets an E again when
// E can be made from a std::string message (else the Error for `status`, of
// that type name), so `catch (const OutOfStock&)` works across calls:
//
//   struct OutOfStock : std::runtime_error { using std::runtime_error::runtime_error; };
//   ratchet::register_error<OutOfStock>(ratchet::CallStatus::kPermanentError);
//
// `type` is its name on the wire (default: the C++ name, "shop::OutOfStock");
// both ends must register it under the same name. Register before serving;
// the first registration that matches a thrown exception wins, so register
// derived types before their bases. Other exceptions keep the table above.
template <typename E>
void register_error(CallStatus status, std::string type = {}) {
  static_assert(std::is_base_of_v<std::exception, E>,
                "ratchet::register_error: E must derive from std::exception");
  detail::RegisteredError error;
  error.type = type.empty() ? detail::type_name(typeid(E)) : std::move(type);
  error.status = status;
  error.matches = [](const std::exception& e) { return dynamic_cast<const E*>(&e) != nullptr; };
  if constexpr (std::is_constructible_v<E, std::string>) {
    error.make = [](const std::string& message) { return std::make_exception_ptr(E(message)); };
  }
  detail::add_registered_error(std::move(error));
}

// For users' own HTTP calls: does nothing for 2xx, otherwise throws the Error
// for status_for_http_code(http_code), with `what` in its message (a 503 becomes
// a TemporaryError, so the call is retried).
void check_http_status(int http_code, std::string_view what = {});

// What a failure means on the wire: the status, the type name, the message.
struct ErrorInfo {
  CallStatus status = CallStatus::kPermanentError;
  std::string type;
  std::string message;
};
// Classifies an exception per the table above.
ErrorInfo classify_exception(std::exception_ptr error);

}  // namespace ratchet
