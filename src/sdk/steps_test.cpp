// Local steps, durable sleeps, now()/random() and current(), driven through
// Dispatch::handle with hand-built RunRequests (as the server sends them) and
// a fake clock: what each records in the journal, what a replay (another
// process, or no frame cache) does with the record, and divergence.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "ratchet/ratchet.hpp"
#include "sdk/journal.hpp"
#include "sdk/test_support.hpp"

namespace ratchet {
namespace {

using nlohmann::json;
using namespace ratchet::testing;
using namespace std::chrono_literals;
using Time = std::chrono::system_clock::time_point;

// 2026-01-01T00:00:00Z, and a clock the test moves.
constexpr std::int64_t kStartUs = 1'767'225'600'000'000;
struct FakeWallClock {
  std::atomic<std::int64_t> micros{kStartUs};
  Time now() const { return Time(std::chrono::microseconds(micros.load())); }
  void advance(std::chrono::microseconds by) { micros += by.count(); }
};

Options options_with(FakeWallClock& clock, std::size_t frame_cache = 1024) {
  Options options = test_options();
  options.clock = [&clock] { return clock.now(); };
  options.frame_cache_size = frame_cache;
  return options;
}

sdk::jv1::Journal journal_of(const pb::Poll& poll) {
  auto journal = sdk::decode_journal(poll.typed_coroutine_state());
  EXPECT_TRUE(journal.is_ok()) << journal.status().message();
  return journal.is_ok() ? *journal : sdk::jv1::Journal();
}

std::int64_t max_wait_us(const pb::Poll& poll) {
  return poll.max_wait().seconds() * 1'000'000 + poll.max_wait().nanos() / 1000;
}

// A coroutine with two local steps around a durable call; counts how often
// each step's function ran in this "process".
struct Steps {
  Dispatch dispatch;
  std::atomic<int> a_runs{0};
  std::atomic<int> b_runs{0};

  explicit Steps(Options options = test_options()) : dispatch(options) {
    auto work = dispatch.function("work", [](int x) { return x * 10; });
    dispatch.function("steps", [this, work](int x) -> Task<int> {
      int a = co_await step("a", [&] {
        ++a_runs;
        return x + 1;
      });
      int w = co_await work(a);
      int b = co_await step("b", [&] {
        ++b_runs;
        return w + 1;
      });
      co_return a + b;
    });
  }
};

TEST(Steps, ALocalStepRunsAtOnceAndTravelsInTheJournalOfTheNextPoll) {
  Steps p;
  auto answer = run(p.dispatch, first_run("steps", 1));
  ASSERT_TRUE(answer.has_poll());
  EXPECT_EQ(p.a_runs, 1);
  ASSERT_EQ(answer.poll().calls_size(), 1);
  EXPECT_EQ(answer.poll().calls(0).correlation_id(), 2u) << "the step took number 1";
  EXPECT_EQ(unpacked(answer.poll().calls(0).input()), 2);
  auto journal = journal_of(answer.poll());
  ASSERT_EQ(journal.steps_size(), 2);
  EXPECT_EQ(journal.steps(0).kind(), sdk::jv1::STEP_KIND_LOCAL);
  EXPECT_EQ(sdk::step_function(journal, 1), "a");
  EXPECT_EQ(unpacked(sdk::step_output(journal, journal.steps(0))), 2);

  answer = run(p.dispatch, resume("steps", answer.poll(), {ok_result(2, 20)}));
  ASSERT_TRUE(answer.has_exit());
  EXPECT_EQ(unpacked(answer.exit().result().output()), 2 + 21);
  EXPECT_EQ(p.a_runs, 1);
  EXPECT_EQ(p.b_runs, 1);
}

// Another process (or no frame cache) replays the journal: a recorded step
// returns its recorded value and its function does not run again.
TEST(Steps, ARecordedStepDoesNotRunAgainOnReplay) {
  Steps first;
  auto answer = run(first.dispatch, first_run("steps", 1));
  Steps second;  // another process: same code, empty cache
  answer = run(second.dispatch, resume("steps", answer.poll(), {ok_result(2, 20)}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 23);
  EXPECT_EQ(second.a_runs, 0) << "step a was recorded by the Poll: it must not run again";
  EXPECT_EQ(second.b_runs, 1);
}

// Until a Poll carries it, a step is not recorded: the server's retry of the
// same state runs it again (at least once).
TEST(Steps, AStepNotYetInAPollRunsAgainWhenTheAttemptIsRetried) {
  Options no_cache = test_options();
  no_cache.frame_cache_size = 0;
  Steps p(no_cache);
  auto first = run(p.dispatch, first_run("steps", 1));
  auto request = resume("steps", first.poll(), {ok_result(2, 20)});
  run(p.dispatch, request);
  run(p.dispatch, request);  // the reply to the first attempt was lost: retried
  EXPECT_EQ(p.a_runs, 1) << "recorded with the first Poll";
  EXPECT_EQ(p.b_runs, 2) << "ran after the last Poll, in both attempts";
}

// "failing": a step that (when `throws`) fails with a refused connection,
// caught as the TcpError it stands for, then a durable call.
void define_failing(Dispatch& dispatch, std::atomic<int>& runs, bool throws) {
  auto work = dispatch.function("work", [](int x) { return x; });
  dispatch.function("failing", [&runs, throws, work]() -> Task<std::string> {
    std::string seen;
    try {
      co_await step("refused", [&]() -> int {
        ++runs;
        if (throws) {
          throw std::system_error(std::make_error_code(std::errc::connection_refused), "pay");
        }
        return 0;
      });
    } catch (const TcpError& e) {
      seen = e.type() + ": " + e.what();
    }
    co_await work(1);
    co_return seen;
  });
}

TEST(Steps, AStepsExceptionIsRecordedAndRaisedAgainWithItsStatus) {
  std::atomic<int> runs{0};
  Dispatch dispatch(test_options());
  define_failing(dispatch, runs, true);
  auto answer = run(dispatch, first_run("failing", nullptr));
  ASSERT_TRUE(answer.has_poll());
  auto journal = journal_of(answer.poll());
  ASSERT_TRUE(journal.steps(0).has_error());
  EXPECT_EQ(journal.steps(0).error().status(), static_cast<int>(CallStatus::kTcpError));

  Options no_cache = test_options();
  no_cache.frame_cache_size = 0;
  Dispatch other(no_cache);  // replays: the recorded exception, the same class
  define_failing(other, runs, false);
  answer = run(other, resume("failing", answer.poll(), {ok_result(2, 1)}));
  ASSERT_TRUE(answer.has_exit());
  std::string seen = unpacked(answer.exit().result().output()).get<std::string>();
  EXPECT_EQ(seen.rfind("std::system_error: pay", 0), 0u) << seen;
  EXPECT_EQ(runs, 1);
}

TEST(Steps, ALocalStepWhereTheJournalHasAnotherIsIncompatibleState) {
  Steps old_code;
  auto answer = run(old_code.dispatch, first_run("steps", 1));
  Dispatch new_code(test_options());
  auto work = new_code.function("work", [](int x) { return x; });
  new_code.function("steps", [work](int x) -> Task<int> {
    int a = co_await step("renamed", [&] { return x; });
    co_return co_await work(a);
  });
  auto diverged = run(new_code, resume("steps", answer.poll(), {ok_result(2, 20)}));
  EXPECT_EQ(diverged.status(), pb::STATUS_INCOMPATIBLE_STATE);
  EXPECT_NE(diverged.exit().result().error().message().find(
                "step 1 diverged: the code now runs local step renamed where the journal "
                "recorded local step a"),
            std::string::npos)
      << diverged.exit().result().error().message();
}

// A coroutine that sleeps, then reads the (recorded) time.
struct Sleeper {
  Dispatch dispatch;
  std::atomic<int> starts{0};

  explicit Sleeper(Options options) : dispatch(options) {
    dispatch.function("nap", [this](int seconds) -> Task<std::int64_t> {
      ++starts;
      Time before = co_await now();
      co_await sleep(std::chrono::seconds(seconds));
      Time after = co_await now();
      co_return std::chrono::duration_cast<std::chrono::microseconds>(after - before).count();
    });
  }
};

TEST(Sleep, SuspendsWithAPollOfNoCallsAndTheMaxWaitUntilItsTime) {
  FakeWallClock clock;
  Sleeper s(options_with(clock));
  auto answer = run(s.dispatch, first_run("nap", 10));
  ASSERT_TRUE(answer.has_poll());
  EXPECT_EQ(answer.poll().calls_size(), 0);
  EXPECT_EQ(max_wait_us(answer.poll()), 10'000'000);
  auto journal = journal_of(answer.poll());
  ASSERT_EQ(journal.steps_size(), 2);
  EXPECT_EQ(journal.steps(1).kind(), sdk::jv1::STEP_KIND_SLEEP);
  EXPECT_EQ(journal.steps(1).wake_at_us(), kStartUs + 10'000'000);
  EXPECT_TRUE(sdk::is_pending(journal.steps(1)));
}

// Woken early (the server's clock runs ahead, or a straggling result of an
// earlier race arrived), the coroutine sleeps again for what is left; from the
// live frame and by replay alike.
TEST(Sleep, AnEarlyResumePollsAgainForWhatIsLeftThenGoesOnWhenDue) {
  for (std::size_t cache : {std::size_t{1024}, std::size_t{0}}) {
    FakeWallClock clock;
    Sleeper s(options_with(clock, cache));
    auto answer = run(s.dispatch, first_run("nap", 10));
    clock.advance(4s);
    answer = run(s.dispatch, resume("nap", answer.poll(), {}));
    ASSERT_TRUE(answer.has_poll()) << "cache " << cache;
    EXPECT_EQ(max_wait_us(answer.poll()), 6'000'000) << "cache " << cache;
    clock.advance(6s);
    answer = run(s.dispatch, resume("nap", answer.poll(), {}));
    ASSERT_TRUE(answer.has_exit()) << "cache " << cache;
    EXPECT_EQ(unpacked(answer.exit().result().output()), 10'000'000) << "cache " << cache;
  }
}

// The wake time is fixed when the coroutine first reaches the sleep: another
// process resuming it late does not sleep again.
TEST(Sleep, AnotherProcessResumingLateGoesOnAtOnce) {
  FakeWallClock clock;
  Sleeper first(options_with(clock));
  auto answer = run(first.dispatch, first_run("nap", 10));
  clock.advance(1h);  // the first process is gone; a second resumes much later
  Sleeper second(options_with(clock));
  answer = run(second.dispatch, resume("nap", answer.poll(), {}));
  ASSERT_TRUE(answer.has_exit());
  EXPECT_EQ(unpacked(answer.exit().result().output()),
            std::chrono::duration_cast<std::chrono::microseconds>(1h).count());
  EXPECT_EQ(second.starts, 1);
}

TEST(Sleep, ASleepOfZeroIsACheckpointThatRecordsTheStepsBeforeIt) {
  FakeWallClock clock;
  Dispatch dispatch(options_with(clock));
  std::atomic<int> runs{0};
  dispatch.function("checkpoint", [&]() -> Task<int> {
    int a = co_await step("a", [&] { return ++runs; });
    co_await sleep(0s);
    co_return a;
  });
  auto answer = run(dispatch, first_run("checkpoint", nullptr));
  ASSERT_TRUE(answer.has_poll()) << "a sleep suspends once, even of 0";
  EXPECT_EQ(max_wait_us(answer.poll()), 1) << "at least 1 us: 0 means the server's default";
  EXPECT_TRUE(journal_of(answer.poll()).steps(0).has_output());
  answer = run(dispatch, resume("checkpoint", answer.poll(), {}));
  EXPECT_EQ(unpacked(answer.exit().result().output()), 1);
}

TEST(Sleep, SleepUntilWakesAtThatTime) {
  FakeWallClock clock;
  Dispatch dispatch(options_with(clock));
  dispatch.function("alarm", []() -> Task<void> {
    Time start = co_await now();
    co_await sleep_until(start + 90s);
  });
  auto answer = run(dispatch, first_run("alarm", nullptr));
  EXPECT_EQ(max_wait_us(answer.poll()), 90'000'000);
  EXPECT_EQ(journal_of(answer.poll()).steps(1).wake_at_us(), kStartUs + 90'000'000);
}

// A std::uint64_t above INT64_MAX (half of what random() gives) is a value
// like any other: a step records it, a replay reads it back, and it is a
// coroutine's result (a google.protobuf.UInt64Value, which dispatch-py reads).
TEST(NowAndRandom, AnUnsignedAboveInt64MaxIsAStepsValueAndAResult) {
  constexpr std::uint64_t kBig = std::numeric_limits<std::uint64_t>::max() - 1;
  Options no_cache = test_options();
  no_cache.frame_cache_size = 0;  // the resume replays the recorded value
  Dispatch dispatch(no_cache);
  dispatch.function("draw", []() -> Task<std::uint64_t> {
    std::uint64_t drawn = co_await step("draw", [] { return kBig; });
    co_await sleep(0s);
    co_return drawn;
  });
  auto answer = run(dispatch, first_run("draw", nullptr));
  ASSERT_TRUE(answer.has_poll()) << answer.DebugString();
  answer = run(dispatch, resume("draw", answer.poll(), {}));
  ASSERT_EQ(answer.status(), pb::STATUS_OK) << answer.DebugString();
  EXPECT_EQ(answer.exit().result().output().type_url(),
            "type.googleapis.com/google.protobuf.UInt64Value");
  EXPECT_EQ(unpacked(answer.exit().result().output()).get<std::uint64_t>(), kBig);
}

// A duration or time too large for microseconds since the epoch (a "sleep
// forever" of hours::max()) sleeps until the end of time, not at once: the
// conversion saturates instead of overflowing to a time in the past.
TEST(Sleep, AnEndlessSleepSaturatesInsteadOfWakingAtOnce) {
  FakeWallClock clock;
  Dispatch dispatch(options_with(clock));
  dispatch.function("forever", [](int how) -> Task<void> {
    if (how == 0) co_await sleep(std::chrono::hours::max());
    if (how == 1) {
      co_await sleep_until(
          std::chrono::time_point<std::chrono::system_clock, std::chrono::hours>::max());
    }
    if (how == 2) co_await sleep(std::chrono::duration<double>(1e300));
  });
  for (int how : {0, 1, 2}) {
    auto answer = run(dispatch, first_run("forever", how));
    ASSERT_TRUE(answer.has_poll()) << "form " << how << ": " << answer.DebugString();
    EXPECT_EQ(journal_of(answer.poll()).steps(0).wake_at_us(),
              std::numeric_limits<std::int64_t>::max())
        << "form " << how;
    EXPECT_GT(max_wait_us(answer.poll()), 0) << "form " << how;
  }
  EXPECT_NO_THROW((void)CallOptions().expiration(std::chrono::hours::max()));
  EXPECT_EQ(CallOptions().expiration(std::chrono::hours::max()).expiration(),
            std::chrono::microseconds::max());
}

TEST(NowAndRandom, AReplayGetsTheRecordedValues) {
  FakeWallClock clock;
  auto define = [](Dispatch& dispatch) {
    auto work = dispatch.function("work", [](int x) { return x; });
    dispatch.function("draw", [work]() -> Task<json> {
      Time t = co_await now();
      std::uint64_t r = co_await random();
      co_await work(1);
      auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
      co_return json{{"t", micros.count()}, {"r", std::to_string(r)}};
    });
  };
  Dispatch first(options_with(clock));
  define(first);
  auto poll = run(first, first_run("draw", nullptr)).poll();
  auto done = run(first, resume("draw", poll, {ok_result(3, 1)}));
  ASSERT_TRUE(done.has_exit()) << done.DebugString();
  ASSERT_EQ(done.status(), pb::STATUS_OK) << done.DebugString();
  json fresh = unpacked(done.exit().result().output());
  EXPECT_EQ(fresh["t"], kStartUs);

  clock.advance(5min);  // another process, later: it replays the same values
  Dispatch second(options_with(clock));
  define(second);
  json replayed =
      unpacked(run(second, resume("draw", poll, {ok_result(3, 1)})).exit().result().output());
  EXPECT_EQ(replayed, fresh) << "the replay read the journal, not the clock or the device";
}

TEST(Current, GivesTheCallInPlainFunctionsAndCoroutines) {
  Dispatch dispatch(test_options());
  dispatch.function("plain", []() {
    const CallInfo& call = current();
    return json{{"id", call.dispatch_id},
                {"root", call.root_dispatch_id},
                {"parent", call.parent_dispatch_id},
                {"function", call.function},
                {"attempt", call.attempt}};
  });
  auto work = dispatch.function("work", [](int x) { return x; });
  dispatch.function("coroutine", [work]() -> Task<json> {
    co_await work(1);
    co_return json{{"id", current().dispatch_id}, {"attempt", current().attempt}};
  });
  auto request = first_run("plain", nullptr, "child-7");
  request.set_root_dispatch_id("root-1");
  request.set_parent_dispatch_id("parent-3");
  request.set_attempt(2);
  EXPECT_EQ(unpacked(run(dispatch, request).exit().result().output()), (json{{"id", "child-7"},
                                                                             {"root", "root-1"},
                                                                             {"parent", "parent-3"},
                                                                             {"function", "plain"},
                                                                             {"attempt", 2}}));

  auto answer = run(dispatch, first_run("coroutine", nullptr, "co-1"));
  auto resumed = resume("coroutine", answer.poll(), {ok_result(1, 1)}, "co-1");
  resumed.set_attempt(4);  // the live frame sees the attempt of the resume
  EXPECT_EQ(unpacked(run(dispatch, resumed).exit().result().output()),
            (json{{"id", "co-1"}, {"attempt", 4}}));
}

TEST(Current, OutsideAFunctionRunByDispatchIsALogicError) {
  EXPECT_THROW(current(), std::logic_error);
}

}  // namespace
}  // namespace ratchet
