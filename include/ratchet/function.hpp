// Function<R(Args...)>: a durable function registered with Dispatch::function.
//
//   auto transform = dispatch.function("transform",
//       [](std::string msg) -> ratchet::Task<std::string> { co_return msg + "!"; });
//   // transform is a ratchet::Function<std::string(std::string)>
//
//   co_await transform("hi");                 // inside a coroutine: a durable step
//   std::string id = transform.dispatch("hi");  // from anywhere: a new root call
//   std::string out = transform.wait(id);       // its result (the server's Wait RPC)
//
// R is the callable's result, or T for a coroutine returning Task<T>. Arguments
// and results travel as JSON-like values (nlohmann::json conversions, so user
// types need to_json/from_json): no argument is null, one argument is its own
// value, several are a JSON array. A Function is a cheap handle: it must not
// outlive the Dispatch that made it.
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
#include "ratchet/detail/runtime.hpp"
#include "ratchet/errors.hpp"
#include "ratchet/task.hpp"

namespace ratchet {

// An idempotency key for a dispatch: while a call dispatched with the same key
// is running, dispatching again returns its id instead of starting another.
struct RunKey {
  std::string value;
};

namespace detail {

class DispatchCore;

struct DispatchItem {
  CallSpec call;
  std::string run_key;
};
// Sends calls to the server in one Dispatch request; their ids in order.
std::vector<std::string> dispatch_calls(DispatchCore& core, std::vector<DispatchItem> items);
// The result of root call `dispatch_id` (the server's Wait RPC), waiting up to `timeout`.
Outcome wait_for_result(DispatchCore& core, const std::string& dispatch_id,
                        std::chrono::milliseconds timeout);

// A registered function, type-erased: a plain one maps its input to its output;
// a coroutine one makes the root coroutine for an input.
struct FunctionEntry {
  std::function<nlohmann::json(const nlohmann::json&)> plain;
  std::function<Task<nlohmann::json>(const nlohmann::json&)> start;
};
void register_function(DispatchCore& core, const std::string& name, FunctionEntry entry);

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

template <typename T>
struct CallableTraits : CallableTraits<decltype(&T::operator())> {};
template <typename R, typename... A>
struct CallableTraits<R (*)(A...)> {
  using result = R;
  using args = TypeList<std::decay_t<A>...>;
};
template <typename R, typename... A>
struct CallableTraits<R (*)(A...) noexcept> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...)> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) const> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) noexcept> : CallableTraits<R (*)(A...)> {};
template <typename C, typename R, typename... A>
struct CallableTraits<R (C::*)(A...) const noexcept> : CallableTraits<R (*)(A...)> {};

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
FunctionEntry make_entry(F fn, TypeList<A...>) {
  auto shared = std::make_shared<F>(std::move(fn));
  FunctionEntry entry;
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
  Function(detail::DispatchCore* core, std::string name) : core_(core), name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // A call to this function, to co_await inside a durable coroutine (or to add
  // to a Batch).
  Call<R> operator()(Args... args) const {
    return Call<R>(detail::CallSpec{name_, detail::pack_arguments(args...)});
  }

  // Starts a new root call on the server; returns its dispatch id.
  std::string dispatch(Args... args) const { return dispatch(RunKey{}, std::move(args)...); }
  std::string dispatch(RunKey key, Args... args) const {
    std::vector<detail::DispatchItem> items;
    items.push_back(
        {detail::CallSpec{name_, detail::pack_arguments(args...)}, std::move(key.value)});
    return detail::dispatch_calls(*core_, std::move(items)).at(0);
  }

  // The result of the root call `dispatch_id`, blocking until it has one;
  // raises its error, or TimeoutError after `timeout`.
  R wait(const std::string& dispatch_id,
         std::chrono::milliseconds timeout = std::chrono::minutes(10)) const {
    return detail::value_of<R>(detail::wait_for_result(*core_, dispatch_id, timeout), 0);
  }

  // dispatch() then wait().
  R run(Args... args) const { return wait(dispatch(std::move(args)...)); }

 private:
  detail::DispatchCore* core_;
  std::string name_;
};

}  // namespace ratchet
