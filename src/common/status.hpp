// Status and Result<T>: how Ratchet reports a failure a caller can act on.
//
// A Status is a code from one canonical set plus a one-line message for a human.
// The code decides what happens next: the CLI's exit code, the HTTP status and
// Connect code of an API error, and whether the scheduler retries. Those mappings
// live in one table (status.cpp), so they cannot drift apart.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ratchet {

enum class Code {
  kOk,
  kInvalidArgument,     // the caller asked for something malformed
  kNotFound,            // no such job, key, call or file
  kFailedPrecondition,  // the state does not allow it (cancel of a finished job)
  kBusy,                // the store stayed locked past its timeout
  kConflict,            // a compare-and-set lost: someone else moved the state first
  kUnavailable,         // a dependency is down or unreachable; worth retrying
  kUnauthenticated,
  kPermissionDenied,
  kDeadlineExceeded,
  kInternal,  // a bug or an environment failure (I/O, out of memory)
  kDataLoss,  // a value the store acknowledged is gone (a blob deleted by hand: storage/blobs.hpp)
};

// The stable lower-case name of a code ("not_found"), as used in Connect errors.
std::string_view code_name(Code code);
// The exit code of the `ratchet` command for an error of this code (JOBS.md).
int exit_code_for(Code code);
// The HTTP status of an API error of this code.
int http_status_for(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status failed_precondition(std::string m) {
  return {Code::kFailedPrecondition, std::move(m)};
}
inline Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
inline Status conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
inline Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status internal_error(std::string m) { return {Code::kInternal, std::move(m)}; }

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(state_).is_ok() && "Result built from an OK status");
  }

  bool is_ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace ratchet

#define RATCHET_CONCAT_INNER(a, b) a##b
#define RATCHET_CONCAT(a, b) RATCHET_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                             \
  do {                                                    \
    ::ratchet::Status ratchet_status_ = (expr);           \
    if (!ratchet_status_.is_ok()) return ratchet_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, f())` binds the value of a Result or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(RATCHET_CONCAT(ratchet_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.is_ok()) return tmp.status();      \
  lhs = std::move(tmp).value()
