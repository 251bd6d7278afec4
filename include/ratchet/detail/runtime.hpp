// The seam between the SDK's header templates and its compiled runtime
// (src/sdk/runtime.cpp). Not for users: names here may change.
//
// A Context is one run of a durable coroutine: the replay journal it resumes
// from, the step counter, the calls it made in this run, what it waits for.
// While the runtime runs or resumes a coroutine, current_context() is that
// run's Context (a thread-local), and every co_await of a durable call asks it
// for the step's result.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "ratchet/call_options.hpp"

namespace ratchet {

// The call a function runs for (ratchet::current(), steps.hpp).
struct CallInfo {
  std::string dispatch_id;         // this call's id: the same on every attempt and resume
  std::string root_dispatch_id;    // the id of the root call of its tree (its own for a root)
  std::string parent_dispatch_id;  // the caller's id; empty for a root call
  std::string function;
  // This run's attempt (1, 2, ...), counted by a Ratchet server since the
  // call's last recorded progress (its dispatch, or a coroutine's latest Poll);
  // 0 when the server does not say (other servers of the protocol).
  int attempt = 0;
};

}  // namespace ratchet

namespace ratchet::detail {

// A durable call, before it is made: the function's name, its input, and how
// the server treats it.
struct CallSpec {
  std::string function;
  nlohmann::json input;
  CallOptions options;
};

class Context;

// The Context of the coroutine running on this thread, or nullptr.
Context* current_context() noexcept;
// Like current_context(), but throws std::logic_error naming `what` outside a
// durable coroutine (a Call can only be awaited inside one).
Context& require_context(std::string_view what);

enum class WaitMode {
  kOne,      // one call's result
  kAll,      // every result, or the first error
  kAny,      // the first success, or every error
  kRace,     // the first result, success or error
  kSettled,  // every result or error
};

// Gives `n` calls the next step numbers (consecutive; returns the first),
// checking each against the journal: a step whose function or argument hash
// differs from the recorded one throws IncompatibleStateError naming the step.
std::uint64_t begin_steps(Context& context, const CallSpec* calls, std::size_t n);
// True when the steps [first, first + n) satisfy `mode` already.
bool wait_satisfied(const Context& context, WaitMode mode, std::uint64_t first, std::size_t n);
// Records that the coroutine suspends at `handle` until the steps satisfy `mode`.
void suspend_on(Context& context, std::coroutine_handle<> handle, WaitMode mode,
                std::uint64_t first, std::size_t n);
// The step that decides a satisfied wait: kAll the first error to arrive (0
// when none failed), kAny the first success (else the first error), kRace the
// first result (PermanentError when results arrived together without their
// order: see PollResult.arrival_order), kOne the step itself. Among results
// without an order, the earliest call wins.
std::uint64_t decisive_step(const Context& context, WaitMode mode, std::uint64_t first,
                            std::size_t n);

// A completed step's result.
struct Outcome {
  bool ok = false;
  nlohmann::json value;    // when ok
  std::string error_type;  // otherwise
  std::string error_message;
  int error_status = 0;  // a local step's recorded CallStatus; 0: from the type
};
Outcome step_outcome(const Context& context, std::uint64_t step);

// Runs a local step named `name` as the next step: when the journal has it,
// checks it (INCOMPATIBLE_STATE if the code now does something else there);
// otherwise runs `run` and records its value or its exception in the journal.
// Returns the step's number, whose outcome is then known.
std::uint64_t local_step(Context& context, std::string_view name,
                         const std::function<nlohmann::json()>& run);
// Makes a sleep the next step: until `micros` since the Unix epoch when
// `absolute`, else for `micros` from now (or checks the recorded one and
// completes it when due). The step is pending until the coroutine resumes at
// or after its wake time; a new sleep always suspends once.
std::uint64_t begin_sleep(Context& context, bool absolute, std::int64_t micros);
// ratchet::patched(name): true (and a marker step recorded) for a run that
// reaches this point with the patch in its code; false for a run whose journal
// has another step here (recorded before the patch).
bool patched(Context& context, std::string_view name);
// The SDK's clock (Options::clock), in microseconds since the Unix epoch.
std::int64_t wall_clock_us(const Context& context);
// The call the function running on this thread runs for; throws
// std::logic_error naming `what` outside a function run by Dispatch.
const CallInfo& require_call(std::string_view what);

// Replaces the running call with `call` (an Exit with a tail call).
void request_tail_call(Context& context, CallSpec call);
// True when the coroutine on this thread asked for a tail call: its frames
// then stop instead of resuming their callers.
bool tail_call_requested() noexcept;

// Throws the exception for a failed step (its remote type and message).
[[noreturn]] void throw_step_error(const Outcome& outcome);
// Throws InvalidResponseError: step `step`'s result (0: a root call's result)
// cannot be read as the awaited type.
[[noreturn]] void throw_bad_result(std::uint64_t step, const std::exception& cause);
// Throws InvalidArgumentError: an input cannot be read as the function's
// parameters.
[[noreturn]] void throw_bad_input(const std::exception& cause);

// The value of an outcome as T, or the outcome's error raised.
template <typename T>
T value_of(const Outcome& outcome, std::uint64_t step) {
  if (!outcome.ok) throw_step_error(outcome);
  if constexpr (!std::is_void_v<T>) {
    try {
      return outcome.value.template get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw_bad_result(step, e);
    }
  }
}

template <typename T>
T result_of(const Context& context, std::uint64_t step) {
  return value_of<T>(step_outcome(context, step), step);
}

}  // namespace ratchet::detail
