// `ratchet check` (Dispatch::check, check_main): the open coroutines of this
// build's functions, each replayed against the new code without running any
// step (Runtime::check), so that a deploy that would break runs in flight is
// stopped before it ships. docs/sdk.md, "Safe deploys".
#include <cstdio>
#include <string_view>

#include "sdk/core.hpp"

namespace ratchet {

std::vector<CheckResult> Dispatch::check() {
  std::vector<std::string> functions = core_->coroutines();
  std::vector<CheckResult> results;
  if (functions.empty()) return results;
  auto open = detail::list_open_coroutines(*core_, functions);
  if (open.truncated()) {
    std::fprintf(stderr,
                 "ratchet check: the server listed only the first %d open coroutines; the "
                 "others are not checked\n",
                 open.coroutines_size());
  }
  for (const auto& coroutine : open.coroutines()) {
    CheckResult result;
    result.dispatch_id = coroutine.dispatch_id();
    result.function = coroutine.function();
    result.phase = coroutine.phase();
    const detail::FunctionEntry* entry = core_->find(coroutine.function());
    sdk::CheckOutcome outcome;
    if (entry == nullptr) {
      outcome = {false, 0, coroutine.function() + " is not registered in this build"};
    } else if (!coroutine.has_typed_state()) {
      outcome = {false, 0, "its state is not a C++ journal (another SDK's coroutine)"};
    } else {
      outcome = core_->runtime().check(*entry, coroutine.function(), coroutine.typed_state());
    }
    result.resumes = outcome.resumes;
    result.step = outcome.step;
    result.message = std::move(outcome.message);
    results.push_back(std::move(result));
  }
  return results;
}

namespace {

void print_result(const CheckResult& result) {
  std::string line = result.dispatch_id + " " + result.function + " (" + result.phase + "): ";
  if (result.resumes) {
    line += "resumes: " + result.message;
  } else {
    line += "diverges at step " + std::to_string(result.step) + ": " + result.message;
  }
  std::printf("%s\n", line.c_str());
}

}  // namespace

std::optional<int> Dispatch::check_main(int argc, const char* const* argv) {
  bool asked = false;
  for (int i = 1; i < argc; ++i) asked = asked || std::string_view(argv[i]) == "--ratchet-check";
  if (!asked) return std::nullopt;
  std::vector<CheckResult> results;
  try {
    results = check();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ratchet check: %s\n", e.what());
    return 2;
  }
  int diverging = 0;
  for (const auto& result : results) {
    print_result(result);
    if (!result.resumes) ++diverging;
  }
  std::printf("ratchet check: %zu open coroutines, %zu resume, %d diverge\n", results.size(),
              results.size() - static_cast<std::size_t>(diverging), diverging);
  std::fflush(stdout);
  return diverging == 0 ? 0 : 1;
}

}  // namespace ratchet
