// Call<T>: a durable call to a function, made by awaiting it inside a durable
// coroutine. Each co_await of a Call (or of a gather/any/race of Calls) is a
// recorded step: the first time, the coroutine suspends and the server runs
// the call; once its result is recorded, the same co_await returns it at once.
//
//   std::string s = co_await transform(msg);                 // one step
//   std::vector<std::string> all = co_await ratchet::gather(std::move(calls));
//   std::string first = co_await ratchet::any(std::move(calls));
//   std::string fastest = co_await ratchet::race(std::move(calls));
//   for (auto& r : co_await ratchet::gather_settled(std::move(calls)))  // each Settled<T>:
//     if (r.ok()) use(r.value()); else log(r.error().what());          // value or error
//   co_await ratchet::tail_call(other(msg));                 // become `other`
//
// A failed call raises its error at the co_await, as the Error subclass for
// its status (errors.hpp) with the remote type and message.
//
// Creating a Call does nothing; it is made when awaited. Outside a coroutine a
// Call describes a dispatch (Dispatch::Batch::add).
//
// GCC 12 rejects a braced list inside a co_await expression ("array used as
// initializer"): write `json payload = {{"k", v}}; co_await publish(payload);`
// rather than `co_await publish({{"k", v}});`.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ratchet/detail/runtime.hpp"
#include "ratchet/errors.hpp"
#include "ratchet/task.hpp"

namespace ratchet {

template <typename T>
class [[nodiscard]] Call {
 public:
  using value_type = T;

  explicit Call(detail::CallSpec spec) : spec_(std::move(spec)) {}

  const std::string& function() const { return spec_.function; }
  const nlohmann::json& input() const { return spec_.input; }
  const detail::CallSpec& spec() const& { return spec_; }
  detail::CallSpec spec() && { return std::move(spec_); }

  // The awaitable protocol (use co_await, not these).
  bool await_ready() {
    context_ = &detail::require_context("co_await of a ratchet::Call");
    step_ = detail::begin_steps(*context_, &spec_, 1);
    return detail::wait_satisfied(*context_, detail::WaitMode::kOne, step_, 1);
  }
  void await_suspend(std::coroutine_handle<> handle) {
    detail::suspend_on(*context_, handle, detail::WaitMode::kOne, step_, 1);
  }
  T await_resume() { return detail::result_of<T>(*context_, step_); }

 private:
  detail::CallSpec spec_;
  detail::Context* context_ = nullptr;
  std::uint64_t step_ = 0;
};

namespace detail {

// What Settled<T> and Settled<void> share: the error of a call that failed.
class SettledError {
 public:
  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  // The call's error (status(), type(), what()); std::logic_error if it succeeded.
  const Error& error() const {
    if (ok()) throw std::logic_error("ratchet::Settled::error() of a call that succeeded");
    return *error_;
  }
  // Raises the call's error as the exception a co_await of it would have raised.
  [[noreturn]] void rethrow() const {
    if (ok()) throw std::logic_error("ratchet::Settled::rethrow() of a call that succeeded");
    std::rethrow_exception(exception_);
  }

 protected:
  void set_error(std::exception_ptr error) {
    ErrorInfo info = classify_exception(error);
    error_.emplace(info.status, info.message, info.type);
    exception_ = std::move(error);
  }

 private:
  std::optional<Error> error_;
  std::exception_ptr exception_;
};

}  // namespace detail

// The outcome of one call of gather_settled: its value, or its error.
template <typename T>
class Settled : public detail::SettledError {
 public:
  static Settled of_value(T value) {
    Settled s;
    s.value_.emplace(std::move(value));
    return s;
  }
  static Settled of_error(std::exception_ptr error) {
    Settled s;
    s.set_error(std::move(error));
    return s;
  }

  // The value; raises the call's error (as its own type) when it failed.
  T& value() & {
    if (!ok()) rethrow();
    return *value_;
  }
  const T& value() const& {
    if (!ok()) rethrow();
    return *value_;
  }

 private:
  std::optional<T> value_;
};

// For Call<void>: whether it succeeded, and its error.
template <>
class Settled<void> : public detail::SettledError {
 public:
  static Settled of_value() { return Settled(); }
  static Settled of_error(std::exception_ptr error) {
    Settled s;
    s.set_error(std::move(error));
    return s;
  }
};

namespace detail {

// The Settled of a completed step: its value read as T, or its error (a value
// that cannot be read as T is an InvalidResponseError).
template <typename T>
Settled<T> settle(const Context& context, std::uint64_t step) {
  try {
    if constexpr (std::is_void_v<T>) {
      result_of<void>(context, step);
      return Settled<void>::of_value();
    } else {
      return Settled<T>::of_value(result_of<T>(context, step));
    }
  } catch (...) {
    return Settled<T>::of_error(std::current_exception());
  }
}

// Awaits several calls of one result type as consecutive steps.
template <typename T, WaitMode Mode>
class [[nodiscard]] Group {
 public:
  explicit Group(std::vector<Call<T>> calls) {
    specs_.reserve(calls.size());
    for (auto& call : calls) specs_.push_back(std::move(call).spec());
  }

  bool await_ready() {
    context_ = &require_context("co_await of ratchet::gather/any/race");
    if (specs_.empty()) return true;
    first_ = begin_steps(*context_, specs_.data(), specs_.size());
    return wait_satisfied(*context_, Mode, first_, specs_.size());
  }
  void await_suspend(std::coroutine_handle<> handle) {
    suspend_on(*context_, handle, Mode, first_, specs_.size());
  }
  auto await_resume() {
    if constexpr (Mode == WaitMode::kAll) {
      return collect();
    } else if constexpr (Mode == WaitMode::kSettled) {
      std::vector<Settled<T>> outcomes;
      outcomes.reserve(specs_.size());
      for (std::size_t i = 0; i < specs_.size(); ++i) {
        outcomes.push_back(settle<T>(*context_, first_ + i));
      }
      return outcomes;
    } else {
      if (specs_.empty()) throw std::invalid_argument("ratchet::any/race of no calls");
      return result_of<T>(*context_, decisive_step(*context_, Mode, first_, specs_.size()));
    }
  }

 private:
  auto collect() {
    if (!specs_.empty()) {
      std::uint64_t failed = decisive_step(*context_, Mode, first_, specs_.size());
      if (failed != 0) throw_step_error(step_outcome(*context_, failed));
    }
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      std::vector<T> values;
      values.reserve(specs_.size());
      for (std::size_t i = 0; i < specs_.size(); ++i) {
        values.push_back(result_of<T>(*context_, first_ + i));
      }
      return values;
    }
  }

  std::vector<CallSpec> specs_;
  Context* context_ = nullptr;
  std::uint64_t first_ = 0;
};

}  // namespace detail

// Every result, in the calls' order (void for Call<void>). If calls fail, the
// error that arrived first is raised. (The coroutine is woken when every call
// has finished, so errors are seen then, not as each one arrives.)
template <typename T>
detail::Group<T, detail::WaitMode::kAll> gather(std::vector<Call<T>> calls) {
  return detail::Group<T, detail::WaitMode::kAll>(std::move(calls));
}
template <typename T>
detail::Group<T, detail::WaitMode::kAll> all(std::vector<Call<T>> calls) {
  return gather(std::move(calls));
}
// Every call's outcome, in the calls' order, once all have finished: a failed
// call does not hide the others' results (to compensate the ones that
// succeeded, say). Each is a Settled<T>: ok() and value(), or error().
template <typename T>
detail::Group<T, detail::WaitMode::kSettled> gather_settled(std::vector<Call<T>> calls) {
  return detail::Group<T, detail::WaitMode::kSettled>(std::move(calls));
}
// The first successful result; if every call fails, the first error to arrive.
template <typename T>
detail::Group<T, detail::WaitMode::kAny> any(std::vector<Call<T>> calls) {
  return detail::Group<T, detail::WaitMode::kAny>(std::move(calls));
}
// The first call to finish: its result, or its error.
template <typename T>
detail::Group<T, detail::WaitMode::kRace> race(std::vector<Call<T>> calls) {
  return detail::Group<T, detail::WaitMode::kRace>(std::move(calls));
}

namespace detail {

// Awaits calls of different result types as consecutive steps (all of them).
template <typename... T>
class [[nodiscard]] Tuple {
 public:
  explicit Tuple(Call<T>... calls) : specs_{std::move(calls).spec()...} {}

  bool await_ready() {
    context_ = &require_context("co_await of ratchet::all");
    first_ = begin_steps(*context_, specs_.data(), specs_.size());
    return wait_satisfied(*context_, WaitMode::kAll, first_, specs_.size());
  }
  void await_suspend(std::coroutine_handle<> handle) {
    suspend_on(*context_, handle, WaitMode::kAll, first_, specs_.size());
  }
  std::tuple<T...> await_resume() {
    std::uint64_t failed = decisive_step(*context_, WaitMode::kAll, first_, specs_.size());
    if (failed != 0) throw_step_error(step_outcome(*context_, failed));
    return collect(std::index_sequence_for<T...>{});
  }

 private:
  template <std::size_t... I>
  std::tuple<T...> collect(std::index_sequence<I...>) {
    return std::tuple<T...>(result_of<T>(*context_, first_ + I)...);
  }

  std::vector<CallSpec> specs_;
  Context* context_ = nullptr;
  std::uint64_t first_ = 0;
};

}  // namespace detail

// Calls of different result types, all at once: `auto [a, b] = co_await
// ratchet::all(f(x), g(y));`. Errors as for gather.
template <typename... T>
requires(sizeof...(T) > 0 &&
         (!std::is_void_v<T> && ...)) detail::Tuple<T...> all(Call<T>... calls) {
  return detail::Tuple<T...>(std::move(calls)...);
}

template <typename T>
TailCall tail_call(Call<T> call) {
  return TailCall(std::move(call).spec());
}

}  // namespace ratchet
