// The deploy check, `my_service --ratchet-check` (Dispatch::check,
// check_main): the open coroutines of this build's functions and of its
// endpoint URL, each replayed against the new code without running any
// step (Runtime::check), so that a deploy that would break runs in flight is
// stopped before it ships. docs/sdk.md, "Safe deploys".
#include <cstdio>
#include <string>
#include <string_view>

#include "protocol/journal_delta.hpp"
#include "sdk/core.hpp"

namespace ratchet {

std::vector<CheckResult> Dispatch::check() {
  std::vector<std::string> functions = core_->coroutines();
  // The endpoint's coroutines too: those of a function this build removed or
  // renamed would otherwise go unseen, and fail for good once it is deployed.
  const std::string endpoint = core_->endpoint_url();
  if (endpoint.empty()) {
    std::fprintf(stderr,
                 "ratchet-check: DISPATCH_ENDPOINT_URL is not set, so only the coroutines of "
                 "this build's functions are checked (set it to the URL the server calls this "
                 "service at to find those of functions this build no longer has)\n");
  }
  std::vector<CheckResult> results;
  if (functions.empty() && endpoint.empty()) return results;
  auto open = detail::list_open_coroutines(*core_, functions, endpoint);
  if (open.truncated()) {
    std::fprintf(stderr,
                 "ratchet-check: the server listed only the first %d open coroutines; the "
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
    if (coroutine.typed_state().type_url() == protocol::kBrokenJournalType) {
      result.broken_journal = true;
      outcome = {false, 0, coroutine.typed_state().value()};
    } else if (entry == nullptr || !detail::is_defined(*entry)) {
      outcome = {false, 0, "function " + coroutine.function() + " is not in this build"};
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
  } else if (result.broken_journal) {
    // No step diverges: the journal is not there to replay.
    line += "broken journal: " + result.message + "; repair it with `ratchet rewind --job-id " +
            result.dispatch_id + " --to-step N` (docs/sdk.md, \"Operator repair\")";
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
    std::fprintf(stderr, "ratchet-check: %s\n", e.what());
    return 2;
  }
  std::size_t diverging = 0;
  std::size_t broken = 0;
  for (const auto& result : results) {
    print_result(result);
    if (result.broken_journal) {
      ++broken;
    } else if (!result.resumes) {
      ++diverging;
    }
  }
  std::string counts = "ratchet-check: " + std::to_string(results.size()) + " open coroutine" +
                       (results.size() == 1 ? "" : "s") + ", " +
                       std::to_string(results.size() - diverging - broken) + " resume, " +
                       std::to_string(diverging) + " diverge";
  if (broken > 0) counts += ", " + std::to_string(broken) + " with a broken journal";
  std::printf("%s\n", counts.c_str());
  std::fflush(stdout);
  // A broken journal stops the deploy as a divergence does: that run cannot go on as it is.
  return diverging + broken == 0 ? 0 : 1;
}

}  // namespace ratchet
