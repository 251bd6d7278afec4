// The deploy check, `my_service --ratchet-check` (Dispatch::check,
// check_main): the open coroutines of this build's functions and of its
// endpoint URL, each replayed against the new code without running any
// step (Runtime::check), so that a deploy that would break runs in flight is
// stopped before it ships. docs/sdk.md, "Safe deploys".
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/journal_delta.hpp"
#include "sdk/core.hpp"

namespace ratchet {

namespace {

// A coroutine the check cannot replay: why, or nullopt when it can.
std::optional<sdk::CheckOutcome> unreplayable(const ::ratchet::v1::OpenCoroutine& coroutine,
                                              const detail::FunctionEntry* entry,
                                              const std::string& endpoint, CheckResult& result) {
  const auto& type = coroutine.typed_state().type_url();
  if (type == protocol::kBrokenJournalType) {
    result.broken_journal = true;
    return sdk::CheckOutcome{false, 0, coroutine.typed_state().value()};
  }
  if (entry == nullptr || !detail::is_defined(*entry)) {
    result.not_in_build = true;
    return sdk::CheckOutcome{false, 0,
                             "function " + coroutine.function() +
                                 " has no definition here; its open coroutines cannot resume"};
  }
  if (coroutine.typed_state().Is<::ratchet::sdk::v1::Journal>()) return std::nullopt;
  result.not_cpp = true;
  // ListOpen lists the coroutines of this build's function names at any
  // endpoint: one at another endpoint is another service's, never sent here.
  result.another_service = !endpoint.empty() && coroutine.endpoint() != endpoint;
  if (result.another_service) {
    return sdk::CheckOutcome{false, 0,
                             "its state is not a C++ journal and its call names " +
                                 coroutine.endpoint() +
                                 ", not this service's endpoint; not checked"};
  }
  return sdk::CheckOutcome{false, 0,
                           "its state is another SDK's, and this build cannot resume it (it "
                           "would restart from its input)"};
}

// What check() found, and whether the server listed every open coroutine.
struct Checked {
  std::vector<CheckResult> results;
  // More were open than the server lists at once (1,000), and it cannot page:
  // those past the first page were not checked.
  bool truncated = false;
};

CheckResult check_one(detail::DispatchCore& core, const ::ratchet::v1::OpenCoroutine& coroutine,
                      const std::string& endpoint) {
  CheckResult result;
  result.dispatch_id = coroutine.dispatch_id();
  result.function = coroutine.function();
  result.phase = coroutine.phase();
  result.endpoint = coroutine.endpoint();
  const detail::FunctionEntry* entry = core.find(coroutine.function());
  auto outcome = unreplayable(coroutine, entry, endpoint, result);
  if (!outcome) {
    outcome = core.runtime().check(*entry, coroutine.function(), coroutine.typed_state());
  }
  result.resumes = outcome->resumes;
  result.step = outcome->step;
  result.message = std::move(outcome->message);
  return result;
}

// How many coroutines a page asks for: RATCHET_CHECK_PAGE_SIZE (1 to 1000;
// tests page through a few), else 0, the server's limit (1,000).
std::uint32_t page_size() {
  const char* text = std::getenv("RATCHET_CHECK_PAGE_SIZE");
  if (text == nullptr || *text == '\0') return 0;
  std::uint32_t size = 0;
  auto [end, error] = std::from_chars(text, text + std::strlen(text), size);
  if (error != std::errc() || *end != '\0' || size < 1 || size > 1000) {
    throw ConfigurationError("RATCHET_CHECK_PAGE_SIZE must be a number from 1 to 1000");
  }
  return size;
}

// Whether each dispatch id of `page` sorts after the one before it, the first
// after `after` (byte order, as the server's): a server that ignores `after`
// answers the first page again, which holds `after` itself.
bool follows(const ::ratchet::v1::ListOpenResponse& page, const std::string& after) {
  const std::string* previous = &after;
  for (const auto& coroutine : page.coroutines()) {
    if (coroutine.dispatch_id() <= *previous) return false;
    previous = &coroutine.dispatch_id();
  }
  return true;
}

Checked check_open(detail::DispatchCore& core) {
  std::vector<std::string> functions = core.coroutines();
  // The endpoint's coroutines too: those of a function this build removed or
  // renamed would otherwise go unseen, and fail for good once it is deployed.
  const std::string endpoint = core.endpoint_url();
  if (endpoint.empty()) {
    std::fprintf(stderr,
                 "ratchet-check: DISPATCH_ENDPOINT_URL is not set, so only the coroutines of "
                 "this build's functions are checked (set it to the URL the server calls this "
                 "service at to find those of functions this build no longer has)\n");
  }
  Checked checked;
  if (functions.empty() && endpoint.empty()) return checked;
  const std::uint32_t limit = page_size();
  // Page by page, each after the last dispatch id of the one before, until the
  // server says none is left. The first page is taken in any order: an older
  // server lists it oldest first, and lists all when it is not truncated.
  std::string after;
  while (true) {
    auto page = detail::list_open_coroutines(core, functions, endpoint, after, limit);
    if (!after.empty() && !follows(page, after)) break;
    for (const auto& coroutine : page.coroutines()) {
      checked.results.push_back(check_one(core, coroutine, endpoint));
    }
    if (!page.truncated()) return checked;
    if (page.coroutines().empty()) break;  // nothing to page after
    after = page.coroutines(page.coroutines_size() - 1).dispatch_id();
  }
  checked.truncated = true;
  std::fprintf(stderr,
               "ratchet-check: the server listed the first %zu open coroutines and cannot list "
               "those after them (it ignores ListOpen's `after`: a server older than paging); "
               "the others are not checked\n",
               checked.results.size());
  return checked;
}

}  // namespace

std::vector<CheckResult> Dispatch::check() { return check_open(*core_).results; }

namespace {

// What a check found for one coroutine; the order of the flags' precedence.
enum Kind { kResumes, kBroken, kNotInBuild, kElsewhere, kForeign, kDiverges, kKinds };

Kind kind_of(const CheckResult& result) {
  if (result.resumes) return kResumes;
  if (result.broken_journal) return kBroken;
  if (result.not_in_build) return kNotInBuild;
  if (result.another_service) return kElsewhere;
  if (result.not_cpp) return kForeign;
  return kDiverges;
}

// None but a divergence has a step to diverge at: each is said as what it is.
std::string verdict(const CheckResult& result) {
  switch (kind_of(result)) {
    case kResumes:
      return "resumes: " + result.message;
    case kBroken:
      return "broken journal: " + result.message + "; repair it with `ratchet rewind --job-id " +
             result.dispatch_id + " --to-step N` (docs/sdk.md, \"Operator repair\")";
    case kNotInBuild:
      return "not in this build: " + result.message;
    case kElsewhere:
      return "another service's: " + result.message;
    case kForeign:
      return "not a C++ coroutine: " + result.message;
    default:
      return "diverges at step " + std::to_string(result.step) + ": " + result.message;
  }
}

// ", N what" when N > 0: the kinds that are rare are counted only when present.
std::string count_of(std::size_t n, const char* what) {
  return n == 0 ? "" : ", " + std::to_string(n) + " " + what;
}

}  // namespace

std::optional<int> Dispatch::check_main(int argc, const char* const* argv) {
  bool asked = false;
  for (int i = 1; i < argc; ++i) asked = asked || std::string_view(argv[i]) == "--ratchet-check";
  if (!asked) return std::nullopt;
  Checked checked;
  try {
    checked = check_open(*core_);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ratchet-check: %s\n", e.what());
    return 2;
  }
  const std::vector<CheckResult>& results = checked.results;
  std::size_t count[kKinds] = {};
  for (const auto& result : results) {
    std::printf("%s\n", (result.dispatch_id + " " + result.function + " (" + result.phase +
                         "): " + verdict(result))
                            .c_str());
    ++count[kind_of(result)];
  }
  std::string counts = "ratchet-check: " + std::to_string(results.size()) + " open coroutine" +
                       (results.size() == 1 ? "" : "s") + ", " + std::to_string(count[kResumes]) +
                       " resume, " + std::to_string(count[kDiverges]) + " diverge" +
                       count_of(count[kBroken], "with a broken journal") +
                       count_of(count[kNotInBuild], "not in this build") +
                       count_of(count[kForeign], "not a C++ coroutine") +
                       count_of(count[kElsewhere], "of another service");
  std::printf("%s\n", counts.c_str());
  std::fflush(stdout);
  if (checked.truncated) {
    // The unlisted ones may diverge: a check that saw only some cannot pass a deploy.
    std::fprintf(stderr,
                 "ratchet-check: more coroutines are open than the server lists at once "
                 "(1,000) and it cannot page: those past them were not checked, so this check "
                 "cannot pass; upgrade the server, or end or repair open runs until fewer are "
                 "open\n");
    return 2;
  }
  // Whatever this build would get and could not resume as it was recorded
  // stops the deploy; another service's coroutine is not this deploy's.
  return count[kResumes] + count[kElsewhere] == results.size() ? 0 : 1;
}

}  // namespace ratchet
