// Safe deploys in the runtime: Runtime::check (what `--ratchet-check` runs for
// each open coroutine), patched(), and holding a call whose replay diverged.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/test_support.hpp"
#include "ratchet/ratchet.hpp"
#include "ratchet/v1/journal_service.pb.h"
#include "sdk/runtime.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using namespace ratchet::testing;

// The journal of pipeline(msg) = transform(msg), then transform(a + "?"),
// suspended on its second call.
google::protobuf::Any old_journal() {
  Dispatch old_code(test_options());
  auto transform =
      old_code.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
  old_code.function("pipeline", [transform](std::string msg) -> Task<std::string> {
    std::string a = co_await transform(msg);
    co_return co_await transform(a + "?");
  });
  auto answer = run(old_code, first_run("pipeline", "hello"));
  answer = run(old_code, resume("pipeline", answer.poll(), {ok_result(1, "A")}));
  EXPECT_TRUE(answer.has_poll());
  return answer.poll().typed_coroutine_state();
}

sdk::CheckOutcome check(const detail::FunctionEntry& entry) {
  sdk::Runtime runtime({});
  return runtime.check(entry, "pipeline", old_journal());
}

TEST(Check, TheSameCodeResumesWhereTheJournalEnds) {
  Function<std::string(std::string)> transform(nullptr, "transform");
  auto same = detail::make_entry<Task<std::string>>(
      [transform](std::string msg) -> Task<std::string> {
        std::string a = co_await transform(msg);
        co_return co_await transform(a + "?");
      },
      detail::TypeList<std::string>{});
  sdk::CheckOutcome outcome = check(same);
  EXPECT_TRUE(outcome.resumes) << outcome.message;
  EXPECT_EQ(outcome.message, "its 2 recorded steps replay; it waits for the result of step 2");
}

TEST(Check, ChangedCodeDivergesAtTheStepSayingWhatDiffers) {
  Function<std::string(std::string)> transform(nullptr, "transform");
  Function<std::string(std::string)> shout(nullptr, "shout");
  auto changed = detail::make_entry<Task<std::string>>(
      [transform, shout](std::string msg) -> Task<std::string> {
        std::string a = co_await transform(msg);
        co_return co_await shout(a);
      },
      detail::TypeList<std::string>{});
  sdk::CheckOutcome outcome = check(changed);
  EXPECT_FALSE(outcome.resumes);
  EXPECT_EQ(outcome.step, 2u);
  EXPECT_EQ(outcome.message,
            "step 2 diverged: the code now runs a call to shout where the journal recorded a "
            "call to transform");
}

TEST(Check, RunsNoStepPastTheJournal) {
  Function<std::string(std::string)> transform(nullptr, "transform");
  auto ran = std::make_shared<std::atomic<int>>(0);
  auto more = detail::make_entry<Task<std::string>>(
      [transform, ran](std::string msg) -> Task<std::string> {
        std::string a = co_await transform(msg);
        // Step 2 is pending in the journal: the replay suspends there. A
        // first step of new code would be this local step: it must not run.
        auto side_effect = [ran] { ++*ran; };  // named: see ratchet::step on GCC 12
        co_await ratchet::step("side effect", side_effect);
        co_return a;
      },
      detail::TypeList<std::string>{});
  sdk::CheckOutcome outcome = check(more);
  EXPECT_FALSE(outcome.resumes) << "step 2 was a call; a local step is there now";
  EXPECT_EQ(outcome.step, 2u);
  EXPECT_EQ(*ran, 0);

  auto appended = detail::make_entry<Task<std::string>>(
      [transform, ran](std::string msg) -> Task<std::string> {
        std::string a = co_await transform(msg);
        std::string b = co_await transform(a + "?");
        auto side_effect = [ran] { ++*ran; };  // named: see ratchet::step on GCC 12
        co_await ratchet::step("side effect", side_effect);
        co_return b;
      },
      detail::TypeList<std::string>{});
  // Give step 2 its result: the replay then reaches the new local step.
  sdk::Runtime runtime({});
  auto journal = sdk::decode_journal(old_journal());
  ASSERT_TRUE(journal.is_ok());
  auto& step = *journal->mutable_steps(1);
  sdk::complete_with_output(*journal, step, packed("B"));
  outcome = runtime.check(appended, "pipeline", sdk::encode_journal(*journal));
  EXPECT_TRUE(outcome.resumes) << outcome.message;
  EXPECT_EQ(outcome.message, "its 2 recorded steps replay; its next step, 3, is new");
  EXPECT_EQ(*ran, 0) << "a check runs no step";
}

// pipeline cut short: it returns after its first call, where the journal
// recorded a second (a saga's step that a deploy dropped, whose work would
// never be compensated).
Task<std::string> shortened(Function<std::string(std::string)> transform, std::string msg) {
  co_return co_await transform(msg);
}

TEST(Check, CodeThatFinishesBeforeItsRecordedStepsDiverges) {
  Function<std::string(std::string)> transform(nullptr, "transform");
  auto entry = detail::make_entry<Task<std::string>>(
      [transform](std::string msg) { return shortened(transform, std::move(msg)); },
      detail::TypeList<std::string>{});
  sdk::CheckOutcome outcome = check(entry);
  EXPECT_FALSE(outcome.resumes) << outcome.message;
  EXPECT_EQ(outcome.step, 2u);
  EXPECT_EQ(outcome.message,
            "step 2 diverged: the code now finishes where the journal recorded a call to "
            "transform");
}

// pipeline with a patch at its second step: the new path calls shout.
struct Patched {
  Dispatch dispatch{test_options()};
  Function<std::string(std::string)> transform =
      dispatch.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
  Function<std::string(std::string)> shout =
      dispatch.function("shout", [](std::string m) { return m + "!"; });
  Function<std::string(std::string)> pipeline = dispatch.function(
      "pipeline", [t = transform, s = shout](std::string msg) -> Task<std::string> {
        std::string a = co_await t(msg);
        if (ratchet::patched("shout-instead")) co_return co_await s(a);
        co_return co_await t(a + "?");
      });
};

// An open coroutine as ListOpen lists it: `function`'s, with the journal of
// pipeline suspended on its second call.
::ratchet::v1::OpenCoroutine listed(const std::string& id, const std::string& function) {
  ::ratchet::v1::OpenCoroutine coroutine;
  coroutine.set_dispatch_id(id);
  coroutine.set_function(function);
  coroutine.set_phase("WAITING");
  coroutine.set_endpoint("http://127.0.0.1:8000");
  *coroutine.mutable_typed_state() = old_journal();
  return coroutine;
}

// An HTTP 200 answer with a ListOpenResponse.
std::string answer(const ::ratchet::v1::ListOpenResponse& response) {
  const std::string body = response.SerializeAsString();
  return "HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A service with pipeline (which resumes old_journal()), asked for --ratchet-check.
struct CheckRun {
  std::optional<int> code;
  std::string out;
  std::string err;
};

CheckRun run_check(const std::string& api_url) {
  Options options = test_options();
  options.api_url = api_url;
  Dispatch dispatch(options);
  auto transform =
      dispatch.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
  dispatch.function("pipeline", [transform](std::string msg) -> Task<std::string> {
    std::string a = co_await transform(msg);
    co_return co_await transform(a + "?");
  });
  const char* argv[] = {"service", "--ratchet-check"};
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  CheckRun run;
  run.code = dispatch.check_main(2, argv);
  run.out = ::testing::internal::GetCapturedStdout();
  run.err = ::testing::internal::GetCapturedStderr();
  return run;
}

// Sets an environment variable for the test's lifetime.
class ScopedVariable {
 public:
  ScopedVariable(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedVariable() { unsetenv(name_); }

 private:
  const char* name_;
};

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The server lists at most 1,000 open coroutines at once and says when there
// are more; the check asks for the next page after the last id until none is
// left, and checks them all: here pages of 1 (RATCHET_CHECK_PAGE_SIZE), and the
// last page's coroutine, of a function this build lacks, decides the exit.
TEST(Check, APagingServerIsFollowedToTheEndAndEveryPageChecked) {
  const std::vector<::ratchet::v1::OpenCoroutine> open = {
      listed("a", "pipeline"), listed("b", "pipeline"), listed("c", "gone")};
  std::mutex mutex;
  std::vector<std::pair<std::string, std::uint32_t>> asked;  // after, limit
  http::testing::ScriptedPeer server([&](const std::string& request) {
    ::ratchet::v1::ListOpenRequest list;
    std::size_t body = request.find("\r\n\r\n");
    EXPECT_TRUE(body != std::string::npos && list.ParseFromString(request.substr(body + 4)));
    {
      std::lock_guard<std::mutex> lock(mutex);
      asked.emplace_back(list.after(), list.limit());
    }
    ::ratchet::v1::ListOpenResponse page;
    for (const auto& coroutine : open) {
      if (coroutine.dispatch_id() <= list.after()) continue;
      if (page.coroutines_size() == static_cast<int>(list.limit())) {
        page.set_truncated(true);
        break;
      }
      *page.add_coroutines() = coroutine;
    }
    return answer(page);
  });
  ScopedVariable page_size("RATCHET_CHECK_PAGE_SIZE", "1");
  CheckRun run = run_check(server.url());
  ASSERT_TRUE(run.code.has_value());
  EXPECT_EQ(*run.code, 1) << "c is not in this build\n" << run.out << run.err;
  EXPECT_TRUE(has(run.out, "a pipeline (WAITING): resumes:")) << run.out;
  EXPECT_TRUE(has(run.out, "b pipeline (WAITING): resumes:")) << run.out;
  EXPECT_TRUE(has(run.out, "c gone (WAITING): not in this build")) << run.out;
  EXPECT_TRUE(has(run.out,
                  "ratchet-check: 3 open coroutines, 2 resume, 0 diverge, 1 not in "
                  "this build\n"))
      << run.out;
  EXPECT_EQ(run.err, "") << "nothing left unchecked";
  std::lock_guard<std::mutex> lock(mutex);
  using Asked = std::pair<std::string, std::uint32_t>;
  EXPECT_EQ(asked, (std::vector<Asked>{{"", 1}, {"a", 1}, {"b", 1}}));
}

// A page size the check cannot use is a configuration error: exit 2, no request.
TEST(Check, APageSizeOutOfRangeIsRefusedBeforeAnyRequest) {
  http::testing::ScriptedPeer server(answer(::ratchet::v1::ListOpenResponse()));
  ScopedVariable page_size("RATCHET_CHECK_PAGE_SIZE", "1001");
  CheckRun run = run_check(server.url());
  ASSERT_TRUE(run.code.has_value());
  EXPECT_EQ(*run.code, 2) << run.out << run.err;
  EXPECT_TRUE(has(run.err, "RATCHET_CHECK_PAGE_SIZE must be a number from 1 to 1000")) << run.err;
  EXPECT_EQ(server.connections(), 0);
}

// A server older than paging ignores `after` and answers its first page again
// (oldest first, so not in id order: its first id may well sort after the
// cursor). Those past the first page were never checked, so the deploy check
// must not pass (it did, with exit 0, when the first 1,000 resumed), and it
// does not check the same page twice.
TEST(Check, ATruncatedListingFromAServerThatCannotPageStopsTheDeploy) {
  ::ratchet::v1::ListOpenResponse listing;
  listing.set_truncated(true);
  *listing.add_coroutines() = listed("second", "pipeline");
  *listing.add_coroutines() = listed("first", "pipeline");
  http::testing::ScriptedPeer server(answer(listing));
  CheckRun run = run_check(server.url());
  ASSERT_TRUE(run.code.has_value());
  EXPECT_EQ(*run.code, 2) << run.out << run.err;
  EXPECT_TRUE(has(run.out, "first pipeline (WAITING): resumes")) << run.out;
  EXPECT_TRUE(has(run.out, "ratchet-check: 2 open coroutines, 2 resume, 0 diverge\n")) << run.out;
  EXPECT_EQ(server.connections(), 2) << "the first page, and the same again";
  EXPECT_TRUE(has(run.err,
                  "the server listed the first 2 open coroutines and cannot list those "
                  "after them"))
      << run.err;
  EXPECT_TRUE(has(run.err, "not checked, so this check cannot pass")) << run.err;
}

TEST(Patched, ARunRecordedBeforeThePatchKeepsTheOldPath) {
  Patched code;
  pb::Poll old_poll;
  *old_poll.mutable_typed_coroutine_state() = old_journal();
  auto answer = run(code.dispatch, resume("pipeline", old_poll, {ok_result(2, "B")}));
  ASSERT_TRUE(answer.has_exit()) << answer.DebugString();
  EXPECT_EQ(answer.status(), pb::STATUS_OK) << answer.exit().result().error().message();
  EXPECT_EQ(unpacked(answer.exit().result().output()), "B");
}

TEST(Patched, ANewRunRecordsThePatchAndKeepsTheNewPathOnReplay) {
  Patched code;
  auto answer = run(code.dispatch, first_run("pipeline", "hello"));
  answer = run(code.dispatch, resume("pipeline", answer.poll(), {ok_result(1, "A")}));
  ASSERT_TRUE(answer.has_poll());
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(answer.poll().calls(0).function(), "shout");
  EXPECT_EQ(answer.poll().calls(0).correlation_id(), 3u) << "step 2 is the patch's marker";
  auto journal = sdk::decode_journal(answer.poll().typed_coroutine_state());
  ASSERT_TRUE(journal.is_ok());
  EXPECT_EQ(journal->steps(1).kind(), sdk::jv1::STEP_KIND_PATCH);

  // A replay by another process takes the same path.
  sdk::Runtime runtime({});
  Function<std::string(std::string)> t(nullptr, "transform");
  Function<std::string(std::string)> s(nullptr, "shout");
  auto entry = detail::make_entry<Task<std::string>>(
      [t, s](std::string msg) -> Task<std::string> {
        std::string a = co_await t(msg);
        if (ratchet::patched("shout-instead")) co_return co_await s(a);
        co_return co_await t(a + "?");
      },
      detail::TypeList<std::string>{});
  sdk::CheckOutcome outcome =
      runtime.check(entry, "pipeline", answer.poll().typed_coroutine_state());
  EXPECT_TRUE(outcome.resumes) << outcome.message;
}

TEST(OnDivergence, AHoldingFunctionAsksTheServerToHoldTheCall) {
  Dispatch new_code(test_options());
  auto transform =
      new_code.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
  auto shout = new_code.function("shout", [](std::string m) { return m; });
  new_code.function(
      "pipeline",
      [transform, shout](std::string msg) -> Task<std::string> {
        std::string a = co_await transform(msg);
        co_return co_await shout(a);
      },
      FunctionOptions{.on_divergence = OnDivergence::kHold});
  pb::Poll poll;
  *poll.mutable_typed_coroutine_state() = old_journal();
  auto held = run(new_code, resume("pipeline", poll, {ok_result(2, "B")}));
  EXPECT_EQ(held.status(), pb::STATUS_INCOMPATIBLE_STATE);
  EXPECT_TRUE(held.exit().hold());
  EXPECT_NE(held.exit().result().error().message().find("step 2 diverged"), std::string::npos);
  EXPECT_NE(held.exit().result().error().message().find("held for an operator"), std::string::npos)
      << held.exit().result().error().message();
}

TEST(OnDivergence, CodeThatFinishesBeforeItsRecordedStepsIsHeldOrRestarted) {
  for (OnDivergence choice : {OnDivergence::kHold, OnDivergence::kRestart}) {
    Dispatch new_code(test_options());
    auto transform =
        new_code.function("transform", [](std::string m) -> Task<std::string> { co_return m; });
    new_code.function(
        "pipeline", [transform](std::string msg) { return shortened(transform, std::move(msg)); },
        FunctionOptions{.on_divergence = choice});
    pb::Poll poll;
    *poll.mutable_typed_coroutine_state() = old_journal();
    auto answer = run(new_code, resume("pipeline", poll, {ok_result(2, "B")}));
    EXPECT_EQ(answer.status(), pb::STATUS_INCOMPATIBLE_STATE) << answer.DebugString();
    EXPECT_EQ(answer.exit().hold(), choice == OnDivergence::kHold);
    EXPECT_NE(answer.exit().result().error().message().find(
                  "step 2 diverged: the code now finishes where the journal recorded a call to "
                  "transform"),
              std::string::npos)
        << answer.exit().result().error().message();
  }
}

TEST(OnDivergence, ByDefaultTheCallRestartsFromItsInput) {
  Dispatch new_code(test_options());
  auto shout = new_code.function("shout", [](std::string m) { return m; });
  new_code.function(
      "pipeline", [shout](std::string msg) -> Task<std::string> { co_return co_await shout(msg); });
  pb::Poll poll;
  *poll.mutable_typed_coroutine_state() = old_journal();
  auto restarted = run(new_code, resume("pipeline", poll, {ok_result(2, "B")}));
  EXPECT_EQ(restarted.status(), pb::STATUS_INCOMPATIBLE_STATE);
  EXPECT_FALSE(restarted.exit().hold());
  EXPECT_NE(restarted.exit().result().error().message().find("restarts from its input"),
            std::string::npos);
}

}  // namespace
}  // namespace ratchet
