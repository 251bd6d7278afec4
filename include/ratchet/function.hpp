// Function<R(Args...)>: a durable function registered with Dispatch::function.
//
//   auto transform = dispatch.function("transform",
//       [](std::string msg) -> ratchet::Task<std::string> { co_return msg + "!"; });
//   // transform is a ratchet::Function<std::string(std::string)>
//
//   co_await transform("hi");                      // inside a coroutine: a durable step
//   ratchet::Handle<std::string> h = transform.dispatch("hi");  // from anywhere: a root call
//   std::string out = transform.wait(h);           // its result (the server's Wait RPC)
//   transform.with(ratchet::CallOptions().max_attempts(3)).dispatch("hi");  // call_options.hpp
//
// R is the callable's result, or T for a coroutine returning Task<T>. Arguments
// and results travel as JSON-like values (nlohmann::json conversions, so user
// types need to_json/from_json): no argument is null, one argument is its own
// value, several are a JSON array. Parameters are taken by value (or const&):
// a durable function receives copies, never references to its caller's data.
//
// A Function is a cheap handle (a name and options): copy it into the lambdas
// that call it. It must not outlive the Dispatch that made it. A function can
// call itself, or one defined later, when it is declared first:
//
//   ratchet::Function<int(int)> countdown = dispatch.declare<int(int)>("countdown");
//   dispatch.define(countdown, [countdown](int n) -> ratchet::Task<int> {
//     co_return n == 0 ? 0 : 1 + co_await countdown(n - 1);
//   });
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ratchet/call.hpp"
#include "ratchet/call_options.hpp"
#include "ratchet/detail/runtime.hpp"
#include "ratchet/errors.hpp"
#include "ratchet/task.hpp"

namespace ratchet {

// An idempotency key for a dispatch: while a call dispatched with the same key
// is running, dispatching again returns its id instead of starting another.
// (CallOptions::run_key says the same, and can dedupe for good.)
struct RunKey {
  std::string value;
};

// A dispatched call whose result is an R: what Function<R(...)>::dispatch
// returns and Function<R(...)>::wait takes, so that a call's result cannot be
// read as another function's type. Made from a stored id with Handle<R>(id).
template <typename R>
class Handle {
 public:
  explicit Handle(std::string dispatch_id) : id_(std::move(dispatch_id)) {}
  const std::string& id() const noexcept { return id_; }
  friend bool operator==(const Handle&, const Handle&) = default;

 private:
  std::string id_;
};

// What a coroutine does when its replay diverges from its journal (the code
// changed under a running call; docs/sdk.md, "Safe deploys").
enum class OnDivergence {
  kRestart,  // restart from its input, as the protocol says: every step runs again
  kHold,     // hold the call (phase HELD, with the report) until an operator repairs it
};

// How a registered function behaves, beside its code:
//   dispatch.function("order", fn, ratchet::FunctionOptions{.on_divergence =
//   ratchet::OnDivergence::kHold});
struct FunctionOptions {
  OnDivergence on_divergence = OnDivergence::kRestart;
};

namespace detail {

class DispatchCore;

// Sends calls to the server in one Dispatch request; their ids in order.
std::vector<std::string> dispatch_calls(DispatchCore& core, std::vector<CallSpec> calls);
// The result of root call `dispatch_id` (the server's Wait RPC), waiting up to
// `timeout`; WaitTimeoutError after it.
Outcome wait_for_result(DispatchCore& core, const std::string& dispatch_id,
                        std::chrono::milliseconds timeout);

// A registered function, type-erased: a plain one maps its input to its output;
// a coroutine one makes the root coroutine for an input. Neither: declared,
// not yet defined.
struct FunctionEntry {
  std::function<nlohmann::json(const nlohmann::json&)> plain;
  std::function<Task<nlohmann::json>(const nlohmann::json&)> start;
  OnDivergence on_divergence = OnDivergence::kRestart;
};
void register_function(DispatchCore& core, const std::string& name, FunctionEntry entry);
void declare_function(DispatchCore& core, const std::string& name);
void define_function(DispatchCore& core, const std::string& name, FunctionEntry entry);

template <typename... A>
nlohmann::json pack_arguments(const A&... args) {
  if constexpr (sizeof...(A) == 0) {
    return nullptr;
  } else if constexpr (sizeof...(A) == 1) {
    return nlohmann::json(args...);
  } else {
    return nlohmann::json::array({nlohmann::json(args)...});
  }
}

template <typename... A, std::size_t... I>
std::tuple<A...> unpack_array(const nlohmann::json& input, std::index_sequence<I...>) {
  return std::tuple<A...>(input.at(I).template get<A>()...);
}

template <typename... A>
std::tuple<A...> unpack_arguments(const nlohmann::json& input) {
  try {
    if constexpr (sizeof...(A) == 0) {
      return {};
    } else if constexpr (sizeof...(A) == 1) {
      return std::tuple<A...>(input.template get<A>()...);
    } else {
      if (!input.is_array() || input.size() != sizeof...(A)) {
        throw InvalidArgumentError(
            "the input does not match the function's parameters: "
            "expected an array of " +
            std::to_string(sizeof...(A)) + " arguments, got " + input.dump());
      }
      return unpack_array<A...>(input, std::index_sequence_for<A...>{});
    }
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(e);
  }
}

template <typename... A>
struct TypeList {};

// The signature of a callable with exactly one (a lambda that is not generic,
// a function pointer, a functor with one operator()); no members otherwise.
template <typename T, typename = void>
struct CallableTraits {};
template <typename T>
struct CallableTraits<T, std::void_t<decltype(&T::operator())>>
    : CallableTraits<decltype(&T::operator())> {};
template <typename R, typename... A>
struct CallableTraits<R (*)(A...), void> {
  using result = R;
  using args = TypeList<std::decay_t<A>...>;
  // A non-const lvalue reference parameter would bind to the SDK's copy of the
  // input, not to anything of the caller's: refused (take it by value).
  static constexpr bool takes_mutable_reference =
      ((std::is_lvalue_reference_v<A> && !std::is_const_v<std::remove_reference_t<A>>) || ...);
};
template <typename R, typename... A>
struct CallableTraits<R (*)(A...) noexcept, void> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...), void> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) const, void> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) noexcept, void> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) const noexcept, void> : CallableTraits<R (*)(A...)> {};

template <typename F>
concept HasOneSignature = requires {
  typename CallableTraits<std::decay_t<F>>::result;
};

// The checks every registered callable passes, with messages that say what to do.
template <typename F>
constexpr bool check_callable() {
  static_assert(HasOneSignature<F>,
                "ratchet: a durable function needs parameters of fixed types: not a generic "
                "lambda (auto parameters) nor an overloaded functor");
  if constexpr (HasOneSignature<F>) {
    static_assert(!CallableTraits<std::decay_t<F>>::takes_mutable_reference,
                  "ratchet: a durable function takes its parameters by value (or const&): it "
                  "receives copies of its inputs, never its caller's objects");
  }
  return true;
}

template <typename R>
struct ResultOf {
  using type = R;
};
template <typename T>
struct ResultOf<Task<T>> {
  using type = T;
};

// The root coroutine of a durable call: runs the user's coroutine, then turns
// its result into JSON.
template <typename T, typename F, typename... A>
Task<nlohmann::json> run_root(F* fn, std::tuple<A...> args) {
  if constexpr (std::is_void_v<T>) {
    co_await std::apply(*fn, std::move(args));
    co_return nlohmann::json();
  } else {
    co_return nlohmann::json(co_await std::apply(*fn, std::move(args)));
  }
}

template <typename R, typename F, typename... A>
FunctionEntry make_entry(F fn, TypeList<A...>, FunctionOptions options = {}) {
  auto shared = std::make_shared<F>(std::move(fn));
  FunctionEntry entry;
  entry.on_divergence = options.on_divergence;
  if constexpr (is_task<R>::value) {
    using T = typename is_task<R>::value_type;
    entry.start = [shared](const nlohmann::json& input) {
      return run_root<T>(shared.get(), unpack_arguments<A...>(input));
    };
  } else {
    entry.plain = [shared](const nlohmann::json& input) -> nlohmann::json {
      auto args = unpack_arguments<A...>(input);
      if constexpr (std::is_void_v<R>) {
        std::apply(*shared, std::move(args));
        return nullptr;
      } else {
        return nlohmann::json(std::apply(*shared, std::move(args)));
      }
    };
  }
  return entry;
}

}  // namespace detail

template <typename Signature>
class Function;

template <typename R, typename... Args>
class Function<R(Args...)> {
 public:
  using result_type = R;

  Function(detail::DispatchCore* core, std::string name) : core_(core), name_(std::move(name)) {}

  const std::string& name() const { return name_; }
  const CallOptions& options() const { return options_; }

  // This function with `options` for the calls and dispatches made through
  // the copy (call_options.hpp).
  [[nodiscard]] Function with(CallOptions options) const {
    Function copy = *this;
    copy.options_ = std::move(options);
    return copy;
  }

  // A call to this function, to co_await inside a durable coroutine (or to add
  // to a Batch).
  Call<R> operator()(Args... args) const {
    return Call<R>(detail::CallSpec{name_, detail::pack_arguments(args...), options_});
  }

  // Starts a new root call on the server; returns its handle.
  Handle<R> dispatch(Args... args) const {
    std::vector<detail::CallSpec> calls;
    calls.push_back(detail::CallSpec{name_, detail::pack_arguments(args...), options_});
    return Handle<R>(detail::dispatch_calls(*core_, std::move(calls)).at(0));
  }
  Handle<R> dispatch(RunKey key, Args... args) const {
    return with(options_.run_key(std::move(key.value))).dispatch(std::move(args)...);
  }

  // The result of the root call `handle`, blocking until it has one; raises
  // its error (a TimeoutError is a call that timed out on the server), or
  // WaitTimeoutError when `timeout` passes first (the call goes on).
  R wait(const Handle<R>& handle,
         std::chrono::milliseconds timeout = std::chrono::minutes(10)) const {
    return detail::value_of<R>(detail::wait_for_result(*core_, handle.id(), timeout), 0);
  }

  // dispatch() then wait().
  R run(Args... args) const { return wait(dispatch(std::move(args)...)); }

 private:
  detail::DispatchCore* core_;
  std::string name_;
  CallOptions options_;
};

}  // namespace ratchet
