// CallOptions: how the server treats one call, built step by step.
//
//   auto options = ratchet::CallOptions()
//                      .run_key("order-" + id, ratchet::RunKeyScope::kOnceEver)
//                      .expiration(std::chrono::hours(1))
//                      .max_attempts(5);
//   auto handle = place_order.with(options).dispatch(order);     // a root call
//   co_await reserve.with(ratchet::CallOptions().max_attempts(3))(item);  // a child
//
// Each setter returns a new CallOptions (the original is unchanged), so a set
// of options can be shared and refined; the result must be used.
//
// - run_key (dispatches only: a call awaited in a coroutine is made once per
//   journal step already): a dispatch with a key whose call is running
//   (kWhileRunning, the default) or that was ever dispatched (kOnceEver, like
//   jobs' --strict) returns that call instead of starting another. With
//   kOnceEver, waiting on the returned handle gives the finished call's result.
// - expiration: how long after its dispatch the server may keep trying the
//   call; past it, the call fails with TIMEOUT (the protocol's Call.expiration).
// - max_attempts (>= 1): the most attempts the server makes before the call
//   fails with its last error (for a coroutine: per step, since each recorded
//   Poll is progress). A Ratchet extension: other servers ignore it.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "ratchet/detail/micros.hpp"

namespace ratchet {

enum class RunKeyScope {
  kWhileRunning,  // dedupes while the key's call is running (the protocol's default)
  kOnceEver,      // dedupes forever: the key's first call is the only one
};

class CallOptions {
 public:
  [[nodiscard]] CallOptions run_key(std::string key,
                                    RunKeyScope scope = RunKeyScope::kWhileRunning) const {
    CallOptions next = *this;
    next.run_key_ = std::move(key);
    next.scope_ = scope;
    return next;
  }
  template <typename Rep, typename Period>
  [[nodiscard]] CallOptions expiration(std::chrono::duration<Rep, Period> after) const {
    auto micros = detail::saturating_micros(after);
    if (micros.count() <= 0) {
      throw std::invalid_argument("ratchet::CallOptions::expiration must be positive");
    }
    CallOptions next = *this;
    next.expiration_ = micros;
    return next;
  }
  [[nodiscard]] CallOptions max_attempts(int attempts) const {
    if (attempts < 1) {
      throw std::invalid_argument("ratchet::CallOptions::max_attempts must be at least 1, got " +
                                  std::to_string(attempts));
    }
    CallOptions next = *this;
    next.max_attempts_ = attempts;
    return next;
  }

  const std::string& run_key() const noexcept { return run_key_; }  // empty: none
  RunKeyScope run_key_scope() const noexcept { return scope_; }
  std::optional<std::chrono::microseconds> expiration() const noexcept { return expiration_; }
  int max_attempts() const noexcept { return max_attempts_; }  // 0: the server's default

 private:
  std::string run_key_;
  RunKeyScope scope_ = RunKeyScope::kWhileRunning;
  std::optional<std::chrono::microseconds> expiration_;
  int max_attempts_ = 0;
};

}  // namespace ratchet
