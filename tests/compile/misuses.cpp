// Misuses of the SDK that must not compile: the compile.misuse.* tests build
// this file once per case (-DMISUSE_<CASE>) and expect the error each names.
// Without a case it compiles, which the compile.misuses_baseline test checks,
// so that each failure is the case's own and not a typo here.
#include <ratchet/ratchet.hpp>
#include <string>

int main() {
  ratchet::Dispatch dispatch;
  auto add = dispatch.function("add", [](int a, int b) { return a + b; });
  auto greet = dispatch.function("greet", [](std::string name) { return "hi " + name; });
  (void)add;
  (void)greet;

#if defined(MISUSE_WAIT_ON_ANOTHER_FUNCTIONS_HANDLE)
  // A Handle<int> is not a Handle<std::string>: greet's result cannot be read from add's call.
  std::string text = greet.wait(add.dispatch(1, 2));
#elif defined(MISUSE_WAIT_ON_A_RAW_ID)
  // An id string is not a handle: wrap a stored id as ratchet::Handle<R>(id), deliberately.
  std::string text = greet.wait(std::string("3f2a..."));
#elif defined(MISUSE_GENERIC_LAMBDA)
  dispatch.function("twice", [](auto x) { return x + x; });
#elif defined(MISUSE_MUTABLE_REFERENCE_PARAMETER)
  dispatch.function("append", [](std::string& out) { out += "!"; });
#elif defined(MISUSE_COROUTINE_AS_A_STEP)
  dispatch.function("outer", []() -> ratchet::Task<int> {
    co_return co_await ratchet::step("inner", []() -> ratchet::Task<int> { co_return 1; });
  });
#elif defined(MISUSE_STEP_WITH_ARGUMENTS)
  dispatch.function("outer", []() -> ratchet::Task<int> {
    co_return co_await ratchet::step("inner", [](int x) { return x; });
  });
#elif defined(MISUSE_STEP_LAMBDA_OWNING_ITS_CAPTURES)
  dispatch.function("outer", []() -> ratchet::Task<std::string> {
    std::string key = "k";
    co_return co_await ratchet::step("inner", [key] { return key; });
  });
#elif defined(MISUSE_DEFINE_WITH_OTHER_PARAMETERS)
  auto later = dispatch.declare<int(int)>("later");
  dispatch.define(later, [](std::string s) { return static_cast<int>(s.size()); });
#elif defined(MISUSE_DEFINE_WITH_OTHER_RESULT)
  auto later = dispatch.declare<int(int)>("later");
  dispatch.define(later, [](int x) { return std::to_string(x); });
#elif defined(MISUSE_DISCARDED_CALL)
  // Built and dropped: nothing runs (flagged by -Werror's unused-result).
  dispatch.function("outer", [greet]() -> ratchet::Task<void> {
    greet("nobody");
    co_return;
  });
#elif defined(MISUSE_DISCARDED_OPTIONS)
  // A setter returns new options: this one changes nothing.
  ratchet::CallOptions options;
  options.max_attempts(3);
#elif defined(MISUSE_RECURSION_WITHOUT_DECLARE)
  // The newcomer's error, why Dispatch::declare exists.
  auto countdown = dispatch.function("countdown", [&](int n) -> ratchet::Task<int> {
    co_return n == 0 ? 0 : co_await countdown(n - 1);
  });
#elif defined(MISUSE_CO_AWAIT_IN_A_HANDLER)
  // The language's rule, why docs/sdk.md shows the catch pattern.
  dispatch.function("outer", [greet]() -> ratchet::Task<std::string> {
    try {
      co_return co_await greet("a");
    } catch (const ratchet::Error&) {
      co_return co_await greet("b");
    }
  });
#endif
  return 0;
}
