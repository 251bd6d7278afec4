// The scheduler in fake time: a FakeClock drives backoff, leases, expiration
// and max_wait, moved by testing::drive() to the next timer whenever
// everything waits for it. No test sleeps for time to pass.
#include "engine/scheduler.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <set>

#include "engine/test_support.hpp"
#include "protocol/journal_delta.hpp"

namespace ratchet::engine {
namespace {

using namespace testing;

TEST_F(SchedulerTest, RunsADispatchedCallToItsResult) {
  auto store = open();
  FakeEndpoint endpoint(
      clock_, answer([](const pb::RunRequest& r) { return exit_with(int_of(r.input()) * 2); }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto ids = dispatch(scheduler, {call("double", 21)});
  auto done = await(scheduler, ids[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(42));
  EXPECT_EQ(done.attempts, 1);
}

TEST_F(SchedulerTest, RetriesTemporaryErrorsWithCappedExponentialBackoffAndJitter) {
  auto store = open();
  options_.retry.max_attempts = 7;
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) {
                          return fail_with(pb::STATUS_TEMPORARY_ERROR, "flaky");
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto id = dispatch(scheduler, {call("flaky", 0)})[0];
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 7);
  EXPECT_NE(done.error->message.find("gave up after 7 attempts"), std::string::npos);

  auto attempts = endpoint.received_for(id);
  ASSERT_EQ(attempts.size(), 7u);
  // Attempt k+1 comes after a delay in [d/2, d], d = min(100 ms * 2^(k-1), 1 s).
  std::set<Micros> gaps;
  Micros ceiling = 100 * kMicrosPerMilli;
  for (std::size_t k = 1; k < attempts.size(); ++k) {
    Micros gap = attempts[k].at - attempts[k - 1].at;
    EXPECT_GE(gap, ceiling / 2) << "attempt " << k + 1 << " came early";
    EXPECT_LE(gap, ceiling) << "attempt " << k + 1 << " came late";
    gaps.insert(gap);
    ceiling = std::min(ceiling * 2, kMicrosPerSecond);
  }
  EXPECT_GT(gaps.size(), 3u) << "jitter spreads the delays";
}

// dispatch-py matches results to the ids its Dispatch answered: a call that ran
// before its caller had its id lost its result.
TEST_F(SchedulerTest, ADispatchedCallIsSentOnlyOnceItsDispatchIsAnswered) {
  auto store = open();
  FakeEndpoint endpoint(
      clock_, answer([](const pb::RunRequest& r) { return exit_with(int_of(r.input())); }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto [first, release] = dispatch_unanswered(scheduler, {call("first", 1)});  // not out yet
  ASSERT_EQ(first.size(), 1u);
  // A call dispatched after it, and answered at once, runs to its end...
  auto second = await(scheduler, dispatch(scheduler, {call("second", 2)})[0], {&endpoint});
  EXPECT_EQ(second.status, RunStatus::kSucceeded);
  // ...while the first was not sent, however long it waited (fake time moved
  // past every grace): the endpoint serves requests in order, so it would
  // have had it before the second.
  EXPECT_EQ(endpoint.received().size(), 1u);
  release.written();
  auto done = await(scheduler, first[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(1));
  ASSERT_EQ(endpoint.received().size(), 2u);
  EXPECT_EQ(endpoint.received()[1].function, "first");
}

TEST_F(SchedulerTest, RetriesTemporaryErrorsThenSucceeds) {
  auto store = open();
  std::atomic<int> calls{0};
  FakeEndpoint endpoint(clock_, answer([&](const pb::RunRequest&) {
                          return ++calls < 3 ? fail_with(pb::STATUS_TEMPORARY_ERROR, "flaky")
                                             : exit_with(1);
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, dispatch(scheduler, {call("flaky", 0)})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(done.attempts, 3);
}

TEST_F(SchedulerTest, GivesUpAfterMaxAttempts) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) {
                          return fail_with(pb::STATUS_THROTTLED, "slow down");
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, dispatch(scheduler, {call("busy", 0)})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 5);
  EXPECT_EQ(done.call_status, pb::STATUS_THROTTLED);
  EXPECT_NE(done.error->message.find("gave up after 5 attempts"), std::string::npos);
}

TEST_F(SchedulerTest, ACallsOwnMaxAttemptsWinsOverTheServers) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) {
                          return fail_with(pb::STATUS_THROTTLED, "slow down");
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);  // 5 attempts
  scheduler.start();
  NewCall fewer = call("busy", 0);
  fewer.max_attempts = 2;
  NewCall more = call("busy", 1);
  more.max_attempts = 7;
  NewCall once = call("busy", 2);
  once.max_attempts = 1;
  auto ids = dispatch(scheduler, {fewer, more, once});
  auto done = await(scheduler, ids[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 2);
  EXPECT_NE(done.error->message.find("gave up after 2 attempts"), std::string::npos);
  EXPECT_EQ(await(scheduler, ids[1], {&endpoint}).attempts, 7);
  auto single = await(scheduler, ids[2], {&endpoint});
  EXPECT_EQ(single.attempts, 1);
  EXPECT_NE(single.error->message.find("(gave up after 1 attempt)"), std::string::npos)
      << single.error->message;
}

TEST_F(SchedulerTest, PermanentErrorEndsTheCallAtOnce) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) {
                          return fail_with(pb::STATUS_PERMANENT_ERROR, "no");
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, dispatch(scheduler, {call("fails", 0)})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.error->type, "RuntimeError");
  EXPECT_EQ(done.error->message, "no");
}

TEST_F(SchedulerTest, RetriesStopAtTheCallsExpirationWhichEndsItWithTimeout) {
  auto store = open();
  options_.retry.max_attempts = 100;
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) {
                          return fail_with(pb::STATUS_TEMPORARY_ERROR, "no");
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  NewCall expiring = call("expiring", 0);
  Micros dispatched = clock_.now();
  expiring.expires_at = dispatched + 3 * kMicrosPerSecond;
  auto done = await(scheduler, dispatch(scheduler, {expiring})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.call_status, pb::STATUS_TIMEOUT);
  EXPECT_EQ(done.error->message, "the call expired (last error: RuntimeError: no)");
  EXPECT_LT(done.attempts, 10);
  EXPECT_LT(endpoint.received().back().at, *expiring.expires_at)
      << "no attempt starts after the expiration";
  EXPECT_EQ(*done.finished_at, *expiring.expires_at)
      << "the call failed at its expiration, not at its next attempt";
}

TEST_F(SchedulerTest, ACallWhoseExpirationPassedBeforeItRanFailsWithTimeout) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  NewCall late = call("late", 0);
  late.expires_at = clock_.now() + kMicrosPerSecond;
  std::string id;
  ASSERT_TRUE(store
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(id, tx.dispatch(late));
                    return Status::ok();
                  })
                  .is_ok());
  clock_.advance(2 * kMicrosPerSecond);  // the server was down until after the expiration
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.call_status, pb::STATUS_TIMEOUT);
  EXPECT_TRUE(endpoint.received().empty());
}

// A coroutine "sum" fans out N "leaf" children, then adds up their results;
// its state is the running total, which travels through the server opaquely.
pb::RunResponse sum_of_children(const pb::RunRequest& request, int children) {
  if (request.function() == "leaf") return exit_with(int_of(request.input()));
  if (request.has_input()) {
    pb::RunResponse response;
    auto* poll = response.mutable_poll();
    poll->set_coroutine_state("0");
    poll->set_min_results(children);
    poll->set_max_results(children);
    for (int i = 0; i < children; ++i) {
      auto* child = poll->add_calls();
      child->set_function("leaf");
      child->set_correlation_id(static_cast<std::uint64_t>(i));
      child->mutable_input()->ParseFromString(any_int(i + 1));
    }
    return response;
  }
  std::int64_t total = std::stoll(request.poll_result().coroutine_state());
  std::set<std::uint64_t> correlations;
  for (const auto& result : request.poll_result().results()) {
    total += int_of(result.output());
    correlations.insert(result.correlation_id());
  }
  EXPECT_EQ(correlations.size(), static_cast<std::size_t>(request.poll_result().results_size()));
  return exit_with(total);
}

TEST_F(SchedulerTest, FansOutAThousandChildrenAndDeliversEachResultOnce) {
  auto store = open();
  const int n = 1000;
  FakeEndpoint endpoint(clock_,
                        answer([&](const pb::RunRequest& r) { return sum_of_children(r, n); }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, dispatch(scheduler, {call("sum", 0)})[0], {&endpoint});
  ASSERT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(n * (n + 1) / 2));
}

TEST_F(SchedulerTest, AChildsErrorReachesItsParent) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest& r) {
                          if (r.function() == "child") {
                            return fail_with(pb::STATUS_PERMANENT_ERROR, "child broke");
                          }
                          if (r.has_input()) {
                            pb::RunResponse response;
                            response.mutable_poll()->set_coroutine_state("s");
                            response.mutable_poll()->add_calls()->set_function("child");
                            return response;
                          }
                          const auto& result = r.poll_result().results(0);
                          return fail_with(pb::STATUS_PERMANENT_ERROR,
                                           "parent saw: " + result.error().message());
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, dispatch(scheduler, {call("parent", 0)})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.error->message, "parent saw: child broke");
}

TEST_F(SchedulerTest, ACoroutineResumesAtMaxWaitWithTheResultsThatArrived) {
  auto store = open();
  // "parent" waits for 2 children for at most 10 s; "hang" never answers.
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "hang") return std::nullopt;
    if (r.function() == "quick") return exit_with(5);
    if (r.has_input()) {
      pb::RunResponse response;
      auto* poll = response.mutable_poll();
      poll->set_coroutine_state("s");
      poll->set_min_results(2);
      poll->set_max_results(2);
      poll->mutable_max_wait()->set_seconds(10);
      poll->add_calls()->set_function("quick");
      poll->add_calls()->set_function("hang");
      return response;
    }
    return exit_with(r.poll_result().results_size());
  });
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  Micros started = clock_.now();
  auto id = dispatch(scheduler, {call("parent", 0)})[0];
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(1)) << "resumed with the one result that arrived";
  auto runs = endpoint.received_for(id);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].at - started, 10 * kMicrosPerSecond) << "resumed at max_wait, not before";
}

TEST_F(SchedulerTest, AHugeChildExpirationSaturatesInsteadOfFailingTheChild) {
  auto store = open();
  FakeEndpoint endpoint(
      clock_, answer([](const pb::RunRequest& r) {
        if (r.function() == "child") return exit_with(3);
        if (r.has_input()) {
          pb::RunResponse response;
          response.mutable_poll()->set_coroutine_state("s");
          auto* child = response.mutable_poll()->add_calls();
          child->set_function("child");
          child->mutable_expiration()->set_seconds(9'300'000'000'000LL);
          response.mutable_poll()->mutable_max_wait()->set_seconds(9'300'000'000'000LL);
          return response;
        }
        return exit_with(int_of(r.poll_result().results(0).output()));
      }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto done = await(scheduler, dispatch(scheduler, {call("parent", 0)})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded) << (done.error ? done.error->message : "");
  EXPECT_EQ(*done.output, any_int(3)) << "the child ran instead of expiring at once";
}

TEST_F(SchedulerTest, WaitForAnUnknownCallIsNotFound) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(0); }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  std::promise<CallOutcome> outcome;
  scheduler.wait("no-such-id", clock_.now() + kMicrosPerSecond,
                 [&](CallOutcome o) { outcome.set_value(std::move(o)); });
  auto future = outcome.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto result = future.get();
  ASSERT_FALSE(result.is_ok());
  EXPECT_EQ(result.status().code(), Code::kNotFound);
}

TEST_F(SchedulerTest, AWaitEndsAtItsDeadlineInFakeTime) {
  auto store = open();
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest&) { return std::nullopt; });
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto id = dispatch(scheduler, {call("hang", 0)})[0];
  auto outcome = std::make_shared<std::promise<CallOutcome>>();
  auto future = outcome->get_future();
  Micros deadline = clock_.now() + 5 * kMicrosPerSecond;
  scheduler.wait(id, deadline, [outcome](CallOutcome o) { outcome->set_value(std::move(o)); });
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1, [&] {
    return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }));
  EXPECT_EQ(clock_.now(), deadline);
  EXPECT_EQ(future.get().status().code(), Code::kDeadlineExceeded);
}

TEST_F(SchedulerTest, WorkAnnouncedByAnotherServerRunsWithoutWaitingForTheSafetyPoll) {
  auto store = open();
  ControlledStore announcing(*store, clock_);
  FakeEndpoint endpoint(
      clock_, answer([](const pb::RunRequest& r) { return exit_with(int_of(r.input())); }));
  options_.safety_poll = 3600 * kMicrosPerSecond;  // it would sleep an hour
  Scheduler scheduler(announcing, clock_, endpoint, options_);
  scheduler.start();
  await(scheduler, dispatch(scheduler, {call("first", 1)})[0], {&endpoint});
  auto other = open();  // another server of the fleet records a call
  std::string id;
  ASSERT_TRUE(other
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(id, tx.dispatch(call("f", 2)));
                    return Status::ok();
                  })
                  .is_ok());
  Micros announced = clock_.now();
  announcing.announce();
  ASSERT_TRUE(endpoint.wait_for_requests(2)) << "the scheduler slept through the announcement";
  EXPECT_EQ(endpoint.received_for(id).at(0).at, announced) << "run without the clock moving";
}

// The client is not the scheduler's: a reply it gives after the scheduler
// is destroyed (a test's endpoint outliving it, a client stopped later) is
// dropped, not delivered to freed memory (AddressSanitizer sees that).
TEST_F(SchedulerTest, AReplyThatComesAfterTheSchedulerIsGoneIsDropped) {
  auto store = open();
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest&) { return std::nullopt; });
  {
    Scheduler scheduler(*store, clock_, endpoint, options_);
    scheduler.start();
    dispatch(scheduler, {call("held", 0)});
    // Counted and held in one step of the endpoint: seen, it is held.
    ASSERT_TRUE(endpoint.wait_for_requests(1));
    ASSERT_EQ(endpoint.held(), 1u);
  }
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  EXPECT_EQ(endpoint.held(), 0u);
}

// ---- Journal deltas: a process that does not hold the frame ----

namespace jv1 = ::ratchet::sdk::v1;

// A coroutine that Polls with a whole journal (revision 1), then with a delta
// (revision 2), each with a child "quick"; given the delta back it answers
// JournalNotHeld, as a process that restarted between the Polls does.
// `revisions` gets the type and revision of each state it was sent.
FakeEndpoint::Handler forgetful_coroutine(std::vector<std::string>& received) {
  return answer([&received](const pb::RunRequest& r) {
    if (r.function() == "quick") return exit_with(1);
    auto poll_with = [](const google::protobuf::Message& state) {
      pb::RunResponse response;
      auto* poll = response.mutable_poll();
      poll->mutable_typed_coroutine_state()->PackFrom(state);
      poll->set_min_results(1);
      poll->set_max_results(1);
      poll->mutable_max_wait()->set_seconds(60);
      poll->add_calls()->set_function("quick");
      return response;
    };
    if (r.has_input()) {
      received.push_back("input");
      jv1::Journal journal;
      journal.set_revision(1);
      return poll_with(journal);
    }
    const auto& state = r.poll_result().typed_coroutine_state();
    jv1::Journal journal;
    jv1::JournalDelta delta;
    if (state.UnpackTo(&delta)) {
      received.push_back("delta " + std::to_string(delta.changes().revision()));
      pb::RunResponse response;
      response.set_status(pb::STATUS_TEMPORARY_ERROR);
      auto* error = response.mutable_exit()->mutable_result()->mutable_error();
      error->set_type(std::string(protocol::kJournalNotHeld));
      error->set_message("this process does not hold the coroutine");
      return response;
    }
    state.UnpackTo(&journal);
    received.push_back("journal " + std::to_string(journal.revision()));
    if (journal.revision() == 1) {
      jv1::JournalDelta next;
      next.set_base_revision(1);
      next.mutable_changes()->set_revision(2);
      return poll_with(next);
    }
    return exit_with(static_cast<std::int64_t>(journal.revision()));
  });
}

// The frame-cache miss costs no attempt and no backoff: the server sends the
// whole journal at once, so a call with a limit of one attempt still ends.
TEST_F(SchedulerTest, AJournalNotHeldAnswerToADeltaIsResentWholeAtOnceAsTheSameAttempt) {
  auto store = open();
  std::vector<std::string> received;
  FakeEndpoint endpoint(clock_, forgetful_coroutine(received));
  std::string id;
  auto done = run_coroutine(*store, endpoint, 1, &id);
  EXPECT_EQ(done.status, RunStatus::kSucceeded) << (done.error ? done.error->message : "");
  EXPECT_EQ(received, (std::vector<std::string>{"input", "journal 1", "delta 2", "journal 2"}));
  auto runs = endpoint.received_for(id);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[3].at, runs[2].at) << "the whole journal went at once, with no backoff";
}

// A JournalNotHeld to a whole journal is an ordinary temporary error: a
// process that answers it whatever it gets cannot make the server loop.
TEST_F(SchedulerTest, AJournalNotHeldAnswerToAWholeJournalIsAnOrdinaryError) {
  auto store = open();
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) {
                          pb::RunResponse response = fail_with(pb::STATUS_TEMPORARY_ERROR, "no");
                          response.mutable_exit()->mutable_result()->mutable_error()->set_type(
                              std::string(protocol::kJournalNotHeld));
                          return response;
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  NewCall twice = call("coroutine", 0);
  twice.max_attempts = 2;
  auto done = await(scheduler, dispatch(scheduler, {twice})[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 2);
}

// A Poll whose state has the delta's type but does not read as one (a body
// corrupted on the way, or a hostile process) is refused as a delta, and the
// attempt retried. Stored as if it were a whole journal, it went back as a
// delta that no process holds: each JournalNotHeld re-sent it at once,
// uncounted, without end.
TEST_F(SchedulerTest, APollWithADeltaThatDoesNotReadIsRefusedNotStoredAsTheJournal) {
  auto store = open();
  std::atomic<int> runs = 0;
  FakeEndpoint endpoint(
      clock_, answer([&runs](const pb::RunRequest& r) {
        if (r.function() == "quick") return exit_with(1);
        // Bounded, so that the loop ends (and the test fails) quickly.
        if (++runs > 50) return exit_with(0);
        if (r.has_input() && runs == 1) {
          pb::RunResponse response;
          auto* poll = response.mutable_poll();
          poll->mutable_typed_coroutine_state()->set_type_url(
              std::string(protocol::kJournalDeltaType));
          poll->mutable_typed_coroutine_state()->set_value("\xff");
          poll->set_min_results(1);
          poll->set_max_results(1);
          poll->add_calls()->set_function("quick");
          return response;
        }
        // As the SDK answers any delta it is sent without its frame.
        if (r.poll_result().typed_coroutine_state().type_url() == protocol::kJournalDeltaType) {
          pb::RunResponse response = fail_with(pb::STATUS_TEMPORARY_ERROR, "no");
          response.mutable_exit()->mutable_result()->mutable_error()->set_type(
              std::string(protocol::kJournalNotHeld));
          return response;
        }
        return exit_with(7);
      }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto id = dispatch(scheduler, {call("coroutine", 0)})[0];
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(runs.load(), 2) << "the Poll refused, then a run from the input";
}

// A process that answers every resume with a delta on a revision the store
// does not hold (a broken SDK): each refused Poll is an attempt like any
// failed one, so the call's limit of attempts ends it, after backoffs.
TEST_F(SchedulerTest, ADeltaRefusedAgainAndAgainEndsAtTheCallsLimitOfAttempts) {
  auto store = open();
  std::atomic<int> runs = 0;
  FakeEndpoint endpoint(clock_, answer([&runs](const pb::RunRequest& r) {
                          if (r.function() == "quick") return exit_with(1);
                          // Bounded, so that the loop ends (and the test fails) quickly.
                          if (++runs > 50) return exit_with(0);
                          pb::RunResponse response;
                          auto* poll = response.mutable_poll();
                          if (r.has_input()) {
                            jv1::Journal journal;
                            journal.set_revision(1);
                            poll->mutable_typed_coroutine_state()->PackFrom(journal);
                          } else {
                            jv1::JournalDelta delta;
                            delta.set_base_revision(5);
                            delta.mutable_changes()->set_revision(6);
                            poll->mutable_typed_coroutine_state()->PackFrom(delta);
                          }
                          poll->set_min_results(1);
                          poll->set_max_results(1);
                          poll->add_calls()->set_function("quick");
                          return response;
                        }));
  auto done = run_coroutine(*store, endpoint, 3);
  EXPECT_EQ(done.status, RunStatus::kFailed);
  ASSERT_TRUE(done.error.has_value());
  EXPECT_EQ(done.error->type, "JournalDeltaRefused");
  EXPECT_EQ(runs.load(), 4) << "the Poll from the input, then 3 attempts refused";
}

// A broken SDK's coroutine, as raw protocol messages: a whole journal
// (revision 1, one step), then on each resume a delta on the revision it was
// given: step 2; then step 10 of a journal of 2 (a gap); then step 1 again,
// up to revision 10, whose child "slow" is held, so that it waits there. The
// Poll of revision 10 is when compaction merges the 8 deltas before it.
FakeEndpoint::Handler coroutine_with_a_gap() {
  return [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "quick") return exit_with(1);
    if (r.function() == "slow") return std::nullopt;
    pb::RunResponse response;
    auto* poll = response.mutable_poll();
    poll->set_min_results(1);
    poll->set_max_results(1);
    poll->mutable_max_wait()->set_seconds(600);
    if (r.has_input()) {
      jv1::Journal journal;
      journal.set_version(2);
      journal.set_function("coroutine");
      journal.set_revision(1);
      journal.add_steps()->set_argument_hash(100);
      poll->mutable_typed_coroutine_state()->PackFrom(journal);
      poll->add_calls()->set_function("quick");
      return response;
    }
    jv1::JournalDelta given;
    jv1::Journal whole;
    const auto& state = r.poll_result().typed_coroutine_state();
    std::uint64_t base = state.UnpackTo(&given)   ? given.changes().revision()
                         : state.UnpackTo(&whole) ? whole.revision()
                                                  : 0;
    if (base == 0) return fail_with(pb::STATUS_PERMANENT_ERROR, "no journal came back");
    jv1::JournalDelta delta;
    delta.set_base_revision(base);
    delta.mutable_changes()->set_revision(base + 1);
    std::uint64_t step = base == 1 ? 2 : base == 2 ? 10 : 1;
    (*delta.mutable_changes()->mutable_step_updates())[step].set_argument_hash(100 + step);
    poll->mutable_typed_coroutine_state()->PackFrom(delta);
    poll->add_calls()->set_function(base + 1 == 10 ? "slow" : "quick");
    return response;
  };
}

// The last good revision (the base and the deltas before the first that does
// not assemble), which `ratchet rewind` starts from, stays 2 when compaction
// would merge the broken delta with the good one before it.
TEST_F(SchedulerTest, ABrokenSdksDeltasNeverMoveTheLastGoodRevisionBack) {
  auto store = open();
  FakeEndpoint endpoint(clock_, coroutine_with_a_gap());
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  std::string id = dispatch(scheduler, {call("coroutine", 0)})[0];
  auto slow_sent = [&] {
    for (const auto& r : endpoint.received()) {
      if (r.function == "slow") return true;
    }
    return false;
  };
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1, slow_sent)) << "revision 10 was never reached";
  std::uint64_t last_good = 0;
  CoroutineRepair repair;
  repair.call_id = id;
  repair.edit = [&](int, const std::string& state) -> Result<StateEdit> {
    google::protobuf::Any any;
    jv1::Journal journal;
    if (any.ParseFromString(state) && any.UnpackTo(&journal)) last_good = journal.revision();
    return Status(Code::kFailedPrecondition, "only looked");
  };
  repair.action = CallAction{id, 0, "test", "rewind", ""};
  auto looked = open()->repair_coroutine(repair);
  EXPECT_FALSE(looked.is_ok());
  EXPECT_EQ(last_good, 2u) << "the last good revision moved back";
}

}  // namespace
}  // namespace ratchet::engine
