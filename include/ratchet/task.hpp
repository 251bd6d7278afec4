// Task<T>: the return type of a durable coroutine.
//
//   auto pipeline = dispatch.function("pipeline",
//       [&](std::string msg) -> ratchet::Task<std::string> {
//         co_return co_await transform(msg);
//       });
//
// A Task is lazy (it starts when awaited or run by the SDK) and move-only. It
// may also be an ordinary helper coroutine awaited by a durable one: the
// durable calls it makes are steps of the same journal. An exception escaping
// the coroutine is kept by its promise and becomes the call's recorded failure
// (see errors.hpp for the status it gets).
//
// Code between two co_awaits must be deterministic: on another process the
// coroutine is resumed by running it again from the start against its journal.
// Time, randomness and I/O go in steps (steps.hpp) or durable calls, whose
// results the journal records. docs/sdk.md, "Execution guarantees", says what
// runs how often.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "ratchet/detail/runtime.hpp"

namespace ratchet {

// A request to replace the running call with another: `co_await
// ratchet::tail_call(fn(args...))` (any Task), or `co_return
// ratchet::tail_call(...)` in a Task<T> with a non-void T. The call ends and
// the server runs `fn` under the same dispatch id; its result is this call's.
class [[nodiscard]] TailCall {
 public:
  explicit TailCall(detail::CallSpec call) : call_(std::move(call)) {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) {
    detail::request_tail_call(detail::require_context("ratchet::tail_call"), std::move(call_));
  }
  void await_resume() const noexcept {}

  detail::CallSpec& call() { return call_; }

 private:
  detail::CallSpec call_;
};

template <typename T = void>
class Task;

namespace detail {

struct TaskAccess;

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::exception_ptr exception;

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> self) noexcept {
      // After a tail call nothing more of this coroutine runs: the caller is
      // not resumed (it would expect a value that never comes).
      if (tail_call_requested()) return std::noop_coroutine();
      auto next = self.promise().continuation;
      return next ? next : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <typename T>
struct Promise : PromiseBase {
  std::optional<T> value;

  Task<T> get_return_object() noexcept;
  void return_value(T v) { value.emplace(std::move(v)); }
  void return_value(TailCall tail) {
    request_tail_call(require_context("ratchet::tail_call"), std::move(tail.call()));
  }
  T take() {
    if (exception) std::rethrow_exception(exception);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception) std::rethrow_exception(exception);
  }
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // Awaiting a Task runs it inline (it is not a durable step of its own).
  auto operator co_await() noexcept {
    struct Awaiter {
      std::coroutine_handle<promise_type> handle;
      bool await_ready() const noexcept { return !handle || handle.done(); }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
        handle.promise().continuation = caller;
        return handle;
      }
      T await_resume() { return handle.promise().take(); }
    };
    return Awaiter{handle_};
  }

 private:
  friend struct detail::TaskAccess;
  friend struct detail::Promise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) : handle_(handle) {}

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// The runtime's access to a Task's frame.
struct TaskAccess {
  template <typename T>
  static std::coroutine_handle<Promise<T>> handle(const Task<T>& task) {
    return task.handle_;
  }
};

template <typename T>
struct is_task : std::false_type {};
template <typename T>
struct is_task<Task<T>> : std::true_type {
  using value_type = T;
};

}  // namespace detail
}  // namespace ratchet
