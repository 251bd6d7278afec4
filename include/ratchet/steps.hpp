// Local steps, durable time, and the call a function runs for.
//
//   // Runs here, in this process, and records its result in the journal:
//   std::string receipt = co_await ratchet::step("charge", [&] { return pay(key, cents); });
//   co_await ratchet::sleep(std::chrono::hours(24));  // durable: the process may exit
//   auto started = co_await ratchet::now();           // recorded: a replay sees the same
//   std::uint64_t nonce = co_await ratchet::random();  // recorded too
//   std::string key = ratchet::current().dispatch_id + "/charge";  // stable across retries
//
// What is guaranteed (docs/sdk.md, "Execution guarantees"):
//
// - step(name, fn) runs fn at once, in the coroutine's process, with no round
//   trip to the server, and keeps its value (or its exception: type, message
//   and status) in the coroutine's journal. The journal reaches the server
//   with the coroutine's next Poll (its next durable call, sleep or gather), or
//   never if the coroutine finishes first; the step is recorded once the server
//   has stored that Poll. Until then it is at least once: a crash, or an
//   attempt that fails, runs the coroutine again from its last recorded state,
//   and fn runs again. Once recorded, fn never runs again for this call: the
//   step returns the recorded value (or raises the recorded exception). Give
//   anything fn changes outside the process an idempotency key (current()).
// - sleep(d) suspends the coroutine until d after it first reached the sleep
//   (sleep_until: until that time). The wake time is recorded with the Poll
//   that suspends it, so the process may exit and any process serving the
//   function resumes the coroutine when it is due. A sleep always suspends
//   once, even of 0: `co_await ratchet::sleep(0s)` records every step so far.
// - now() and random() are steps: the first run takes the clock's time (or 64
//   random bits), and every replay gets the same value.
// - current() is the call this function runs for, inside any function run by
//   Dispatch (plain or coroutine; in a coroutine only while it runs).
//
// step's value travels as JSON (like a function's result): T needs nlohmann's
// to_json/from_json. fn takes no arguments (capture what it needs; a capture by
// reference is safe, as fn runs before the co_await returns) and is not a
// coroutine. A step is identified by its position and its name: code that now
// does something else at a recorded position is INCOMPATIBLE_STATE.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "ratchet/detail/micros.hpp"
#include "ratchet/detail/runtime.hpp"
#include "ratchet/task.hpp"

namespace ratchet {
namespace detail {

// co_await of step(): never suspends; the outcome is known when await_ready returns.
template <typename T, typename F>
class [[nodiscard]] StepAwaiter {
 public:
  StepAwaiter(std::string name, F fn) : name_(std::move(name)), fn_(std::move(fn)) {}

  bool await_ready() {
    context_ = &require_context("co_await of ratchet::step");
    step_ = local_step(*context_, name_, [this]() -> nlohmann::json {
      if constexpr (std::is_void_v<T>) {
        fn_();
        return nullptr;
      } else {
        return nlohmann::json(fn_());
      }
    });
    return true;
  }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  T await_resume() { return result_of<T>(*context_, step_); }

 private:
  std::string name_;
  F fn_;
  Context* context_ = nullptr;
  std::uint64_t step_ = 0;
};

// co_await of sleep()/sleep_until(): a step that suspends until it is due.
class [[nodiscard]] SleepAwaiter {
 public:
  SleepAwaiter(bool absolute, std::int64_t micros) : absolute_(absolute), micros_(micros) {}

  bool await_ready() {
    context_ = &require_context("co_await of ratchet::sleep");
    step_ = begin_sleep(*context_, absolute_, micros_);
    return wait_satisfied(*context_, WaitMode::kOne, step_, 1);
  }
  void await_suspend(std::coroutine_handle<> handle) {
    suspend_on(*context_, handle, WaitMode::kOne, step_, 1);
  }
  void await_resume() const noexcept {}

 private:
  bool absolute_;
  std::int64_t micros_;
  Context* context_ = nullptr;
  std::uint64_t step_ = 0;
};

struct ReadClock {
  std::int64_t operator()() const { return wall_clock_us(require_context("ratchet::now")); }
};
struct DrawRandom {
  std::int64_t operator()() const;  // 64 bits from std::random_device
};

class [[nodiscard]] NowAwaiter : public StepAwaiter<std::int64_t, ReadClock> {
 public:
  NowAwaiter() : StepAwaiter("ratchet.now", ReadClock{}) {}
  std::chrono::system_clock::time_point await_resume() {
    auto micros = std::chrono::microseconds(StepAwaiter::await_resume());
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(micros));
  }
};

class [[nodiscard]] RandomAwaiter : public StepAwaiter<std::int64_t, DrawRandom> {
 public:
  RandomAwaiter() : StepAwaiter("ratchet.random", DrawRandom{}) {}
  std::uint64_t await_resume() {
    // Recorded as the int64 of the same bits: JSON-like values stop at int64.
    return static_cast<std::uint64_t>(StepAwaiter::await_resume());
  }
};

}  // namespace detail

// A local step: `co_await ratchet::step("name", fn)` runs fn() and records its
// value (or exception) in the journal; see the top of this file for when.
//
// GCC 12 destroys a lambda (or any aggregate) made inside a co_await
// expression twice, which frees what it captured by value twice. So, built with
// GCC 12 or older, a step's function given as a temporary must be trivially
// destructible (capture by reference: the step runs at once), or be named
// first: `auto charge = [key] {...}; co_await ratchet::step("charge", charge);`.
template <typename F>
auto step(std::string name, F&& fn) {
  using Fn = std::decay_t<F>;
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ <= 12
  static_assert(std::is_lvalue_reference_v<F> || std::is_trivially_destructible_v<Fn>,
                "ratchet::step(name, fn): GCC 12 destroys a lambda made inside co_await twice "
                "(a compiler bug): capture by reference, or name the lambda first and pass it");
#endif
  static_assert(std::is_invocable_v<Fn&>,
                "ratchet::step(name, fn): fn takes no arguments; capture what it needs");
  using R = std::invoke_result_t<Fn&>;
  static_assert(!detail::is_task<std::decay_t<R>>::value,
                "ratchet::step(name, fn): fn must be a plain function, not a coroutine; call a "
                "durable function (co_await fn(args)) for work of its own");
  if (name.empty()) throw std::invalid_argument("ratchet::step needs a name");
  return detail::StepAwaiter<std::decay_t<R>, Fn>(std::move(name), std::forward<F>(fn));
}

// A durable sleep: the coroutine resumes once `duration` has passed since it
// first reached this sleep, in this process or any other serving it.
template <typename Rep, typename Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> duration) {
  return detail::SleepAwaiter(false, detail::saturating_micros(duration).count());
}

// A durable sleep until `time` (by the SDK's clock): deterministic when `time`
// is, e.g. computed from co_await ratchet::now().
template <typename Duration>
detail::SleepAwaiter sleep_until(
    std::chrono::time_point<std::chrono::system_clock, Duration> time) {
  return detail::SleepAwaiter(true, detail::saturating_micros(time.time_since_epoch()).count());
}

// The time, as a step: recorded on the first run, the same on every replay.
inline detail::NowAwaiter now() { return {}; }

// 64 random bits, as a step: recorded on the first run, the same on every replay.
inline detail::RandomAwaiter random() { return {}; }

// A change of a coroutine's code that keeps runs recorded before it on their
// old path (docs/sdk.md, "Safe deploys"):
//
//   if (ratchet::patched("charge-in-cents")) {
//     co_await charge_cents(order.cents);            // new runs, and runs that took this path
//   } else {
//     co_await charge(order.cents / 100.0);          // runs recorded before the change
//   }
//
// A run that reaches it with the patch in its code records a marker step and
// takes the new path, then and on every replay. A run whose journal already
// has another step at this position was recorded by the old code: it takes the
// old path. Once no run of the old code is open (`--ratchet-check`), remove the
// old branch, keeping the patched() call while runs that recorded its marker
// are open. Not a co_await: it decides at once.
inline bool patched(std::string_view name) {
  return detail::patched(detail::require_context("ratchet::patched"), name);
}

// The call the function running on this thread runs for: its dispatch id (the
// same on every attempt and resume: derive idempotency keys from it), root and
// parent ids, function and attempt. std::logic_error outside a function run by
// Dispatch.
inline const CallInfo& current() { return detail::require_call("ratchet::current()"); }

}  // namespace ratchet
