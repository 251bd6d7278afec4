// Issue 10 in fake time: fair claims, adaptive limits per endpoint,
// cancellation and retry now, history, expiry and durable sleep.
#include <gtest/gtest.h>

#include "engine/scheduler.hpp"
#include "engine/test_support.hpp"

namespace ratchet::engine {
namespace {

using namespace testing;

// A coroutine that dispatches one `child` and ends with what it got.
std::optional<pb::RunResponse> parent_of(const pb::RunRequest& r, const std::string& child) {
  if (r.has_input()) {
    pb::RunResponse response;
    response.mutable_poll()->set_coroutine_state("s");
    response.mutable_poll()->add_calls()->set_function(child);
    return response;
  }
  const auto& result = r.poll_result().results(0);
  if (result.has_error()) {
    return fail_with(pb::STATUS_PERMANENT_ERROR,
                     "child: " + result.error().type() + ": " + result.error().message());
  }
  return exit_with(int_of(result.output()));
}

class SchedulerFairnessTest : public SchedulerTest {
 protected:
  // Records `calls` straight into the store, as a flood dispatched earlier.
  std::vector<std::string> record(Store& store, const std::vector<NewCall>& calls) {
    std::vector<std::string> ids;
    EXPECT_TRUE(store
                    .calls([&](CallTransaction& tx) -> Status {
                      for (const auto& c : calls) {
                        ASSIGN_OR_RETURN(auto id, tx.dispatch(c));
                        ids.push_back(id);
                      }
                      return Status::ok();
                    })
                    .is_ok());
    return ids;
  }
  std::vector<HistoryEvent> history(const std::string& id) {
    if (!reader_) reader_ = open();
    auto events = reader_->call_history(id, 1000);
    EXPECT_TRUE(events.is_ok());
    return events.is_ok() ? *events : std::vector<HistoryEvent>{};
  }
  std::vector<CallAction> actions(const std::string& id) {
    if (!reader_) reader_ = open();
    auto done = reader_->call_actions(id, 1000);
    EXPECT_TRUE(done.is_ok());
    return done.is_ok() ? done->latest : std::vector<CallAction>{};
  }
  // Waits (bounded, in real time) for `ready`, driving fake time meanwhile.
  bool until(const std::vector<const FakeEndpoint*>& endpoints,
             const std::function<bool()>& ready) {
    return drive(clock_, endpoints, 1, ready);
  }
  // Moves the clock to every timer the loop sets up to the safety poll from
  // now, once it sleeps each time: false if it did not (30 s of real time).
  bool through_timers(const FakeEndpoint& endpoint) {
    const Micros start = clock_.now();
    if (!asleep(endpoint)) return false;
    for (auto next = clock_.earliest_deadline(); next && *next < start + options_.safety_poll;
         next = clock_.earliest_deadline()) {
      clock_.set(*next);
      if (!asleep(endpoint)) return false;
    }
    return true;
  }
  // Records one call of each function in `at_a` at http://a and one of g at
  // http://b, which comes after them in the store's (endpoint, function)
  // order; a turn reads 2 due queues, and an endpoint takes one call at a time.
  std::vector<std::string> queues_past_a_batch(Store& store, const std::vector<std::string>& at_a) {
    std::vector<NewCall> calls;
    for (const auto& function : at_a) {
      calls.push_back(call(function, 0));
      calls.back().endpoint = "http://a";
    }
    calls.push_back(call("g", 0));
    calls.back().endpoint = "http://b";
    options_.aimd.initial = 1;
    options_.aimd.max = 1;
    options_.due_queue_batch = 2;
    return record(store, calls);
  }
};

// An endpoint's handler that holds every request (FakeEndpoint::answer_held).
std::optional<pb::RunResponse> never_answers(const pb::RunRequest&) { return std::nullopt; }

TEST_F(SchedulerFairnessTest, TenCallsOfBDispatchedAfterFiftyThousandOfAStartInTheFirstTurn) {
  auto store = open();
  std::vector<NewCall> flood(50'000, call("A", 0));
  record(*store, flood);
  clock_.advance(1);
  auto b = record(*store, std::vector<NewCall>(10, call("B", 0)));
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  options_.max_in_flight = 64;
  options_.aimd.initial = 64;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  for (const auto& id : b) await(scheduler, id, {&endpoint});
  auto received = endpoint.received();
  std::size_t last_b = 0;
  for (std::size_t i = 0; i < received.size(); ++i) {
    if (received[i].function == "B") last_b = i;
  }
  EXPECT_LT(last_b, 64u) << "B's calls were sent in the first turn, not after A's flood";
}

TEST_F(SchedulerFairnessTest, ASlowEndpointHoldsOnlyItsLimitAndDoesNotSlowAnother) {
  auto store = open();
  // "slow" never answers; "fast" answers at once.
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "slow") return std::nullopt;
    return exit_with(2);
  });
  options_.aimd.initial = 8;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  NewCall slow = call("slow", 0);
  slow.endpoint = "http://slow";
  NewCall fast = call("fast", 0);
  fast.endpoint = "http://fast";
  dispatch(scheduler, std::vector<NewCall>(100, slow));
  auto fast_ids = dispatch(scheduler, std::vector<NewCall>(100, fast));
  for (const auto& id : fast_ids)
    EXPECT_EQ(await(scheduler, id, {&endpoint}).status, RunStatus::kSucceeded);
  EXPECT_EQ(endpoint.held(), 8u)
      << "only the slow endpoint's limit was sent; the rest wait in the store";
  auto figures = scheduler.figures();
  bool seen = false;
  for (const auto& e : figures.endpoints) {
    if (e.endpoint != "http://slow") continue;
    seen = true;
    EXPECT_EQ(e.in_flight, 8);
    EXPECT_EQ(e.limit, 8);
  }
  EXPECT_TRUE(seen);
}

// A full endpoint's due calls wait for room, which only the replies of its
// calls in flight bring, and each reply wakes the loop: no timer turns it
// meanwhile, and each way room comes back sends the next call at once, at the
// same fake time: a reply; a failed send or a timeout (replies too, made by the
// endpoint client); the reply of a call cancelled while it ran (recorded,
// and refused by the store's fence).
TEST_F(SchedulerFairnessTest, AFullEndpointsNextCallGoesAsSoonAsRoomAppearsAndNoTimerTurnsTheLoop) {
  auto store = open();
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest&) -> std::optional<pb::RunResponse> {
    return std::nullopt;  // held until the test answers
  });
  options_.aimd.initial = 1;
  options_.aimd.max = 1;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  // The first alone, so that the other three go in their order (calls
  // dispatched together keep the limit too: the test below).
  auto ids = dispatch(scheduler, {call("f", 0)});
  ASSERT_TRUE(endpoint.wait_for_requests(1));
  for (const auto& id : dispatch(scheduler, std::vector<NewCall>(3, call("f", 0)))) {
    ids.push_back(id);
  }
  auto turns = [&] { return scheduler.figures().commit_seconds.count; };

  // Every timer the loop sets, up to the safety poll: none, as nothing changes.
  ASSERT_TRUE(asleep(endpoint));
  const std::uint64_t quiet_from = turns();
  ASSERT_TRUE(through_timers(endpoint));
  EXPECT_EQ(turns(), quiet_from) << "the loop turned while the endpoint stayed full";
  ASSERT_EQ(endpoint.received().size(), 1u);

  auto sent_now = [&](std::size_t n, const std::string& id) {
    ASSERT_TRUE(endpoint.wait_for_requests(n)) << "the next call did not go";
    Received next = endpoint.received()[n - 1];
    EXPECT_EQ(next.dispatch_id, id);
    EXPECT_EQ(next.at, clock_.now()) << "it waited for a timer";
  };
  auto is = [](const std::string& id) {
    return [id](const pb::RunRequest& r) { return r.dispatch_id() == id; };
  };
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  sent_now(2, ids[1]);
  endpoint.fail_held(is(ids[1]), protocol::DispatchStatus::kTimeout);
  sent_now(3, ids[2]);
  std::promise<void> cancelled;
  scheduler.cancel(ids[2], "test", [&](auto) { cancelled.set_value(); });
  ASSERT_EQ(cancelled.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_TRUE(asleep(endpoint));
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  sent_now(4, ids[3]);
}

// Calls dispatched together are claimed before their Dispatch is answered and
// wait in the answer gate; each one held there is counted in its endpoint's
// room from its claim on, so an endpoint with a limit of 1 has one of them in
// flight, and the other goes after its reply, not beside it when the gate
// lets them go.
TEST_F(SchedulerFairnessTest, CallsDispatchedTogetherToAnEndpointWithALimitOfOneGoOneAtATime) {
  auto store = open();
  FakeEndpoint endpoint(clock_, never_answers);
  options_.aimd.initial = 1;
  options_.aimd.max = 1;
  options_.answer_grace = 20 * kMicrosPerMilli;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto dispatched = dispatch_unanswered(scheduler, {call("f", 0), call("f", 1)});
  ASSERT_EQ(dispatched.ids.size(), 2u);
  ASSERT_TRUE(asleep(endpoint));
  EXPECT_TRUE(endpoint.received().empty()) << "a call went before its Dispatch was answered";
  int held_at_endpoint = 0;
  for (const auto& e : scheduler.figures().endpoints) held_at_endpoint += e.in_flight;
  EXPECT_EQ(held_at_endpoint, 1) << "the call the gate holds takes its endpoint's room";

  // The answer is out: every timer the loop sets, up to the safety poll.
  dispatched.release.written();
  ASSERT_TRUE(through_timers(endpoint));
  ASSERT_EQ(endpoint.received().size(), 1u) << "two calls in flight at an endpoint limited to 1";
  const std::string first = endpoint.received()[0].dispatch_id;
  EXPECT_EQ(endpoint.held(), 1u);

  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  ASSERT_TRUE(endpoint.wait_for_requests(2)) << "the second call did not go after the reply";
  const std::string second = endpoint.received()[1].dispatch_id;
  EXPECT_NE(second, first);
  EXPECT_TRUE(second == dispatched.ids[0] || second == dispatched.ids[1]) << second;
}

// A turn reads at most a batch of due queues (1,000; 2 here). While an endpoint
// in the batch is full, the loop sleeps until a reply or what falls due later;
// a due queue past the batch, at an endpoint with room, is not left for that:
// the turn that claimed from a full batch turns again at once and reads on.
TEST_F(SchedulerFairnessTest, ADueQueuePastAFullBatchGoesInTheNextTurnNotAfterAReply) {
  auto store = open();
  // a/f1 and a/f2 fill the first batch, b/g is past it.
  auto ids = queues_past_a_batch(*store, {"f1", "f2"});
  FakeEndpoint endpoint(clock_, never_answers);
  Scheduler scheduler(*store, clock_, endpoint, options_);
  const Micros start = clock_.now();
  scheduler.start();
  ASSERT_TRUE(endpoint.wait_for_requests(1));
  ASSERT_TRUE(asleep(endpoint)) << "the loop keeps turning";
  auto received = endpoint.received();
  ASSERT_EQ(received.size(), 2u) << "b/g waits for a reply (none comes), or a/f2 went beside a/f1";
  EXPECT_EQ(received[0].dispatch_id, ids[0]);
  EXPECT_EQ(received[1].dispatch_id, ids[2]);
  EXPECT_EQ(received[1].at, start) << "b/g waited for a timer";
}

// When a whole batch of due queues has no room (their endpoint is full, its
// call hangs), the rotation passes them: a due queue past them, at an endpoint
// with room, goes at the next turn (the safety poll here), not once a reply of
// the full endpoint comes (none does).
TEST_F(SchedulerFairnessTest, ABatchOfDueQueuesWithNoRoomIsPassedForTheQueuesPastIt) {
  auto store = open();
  auto ids = queues_past_a_batch(*store, {"f0", "f1", "f2"});
  FakeEndpoint endpoint(clock_, never_answers);
  Scheduler scheduler(*store, clock_, endpoint, options_);
  const Micros start = clock_.now();
  scheduler.start();
  // a/f0 goes and fills a; the next batch, a/f1 and a/f2, has no room.
  ASSERT_TRUE(until({&endpoint}, [&] { return endpoint.received().size() >= 2; }))
      << "b/g waits for a reply of a that never comes";
  ASSERT_TRUE(asleep(endpoint));
  auto received = endpoint.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].dispatch_id, ids[0]);
  EXPECT_EQ(received[1].dispatch_id, ids[3]);
  EXPECT_LE(received[1].at, start + options_.safety_poll);
}

TEST_F(SchedulerFairnessTest, AThrottlingEndpointsLimitIsCut) {
  auto store = open();
  std::atomic<int> calls{0};
  FakeEndpoint endpoint(clock_, answer([&](const pb::RunRequest&) {
                          return ++calls <= 40 ? fail_with(pb::STATUS_THROTTLED, "slow down")
                                               : exit_with(1);
                        }));
  options_.aimd.initial = 16;
  options_.retry.max_attempts = 100;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto ids = dispatch(scheduler, std::vector<NewCall>(16, call("t", 0)));
  for (const auto& id : ids) await(scheduler, id, {&endpoint});
  auto figures = scheduler.figures();
  ASSERT_EQ(figures.endpoints.size(), 1u) << "a cut endpoint is remembered";
  EXPECT_LT(figures.endpoints[0].limit, 16);
  EXPECT_GE(figures.retries, 40u);
}

TEST_F(SchedulerFairnessTest, CancelEndsTheTreeTellsTheParentAndIgnoresTheReplyInFlight) {
  auto store = open();
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "grandparent") return parent_of(r, "parent");
    if (r.function() == "parent") return parent_of(r, "child");
    return std::nullopt;  // the child hangs
  });
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto root = dispatch(scheduler, {call("grandparent", 0)})[0];
  ASSERT_TRUE(endpoint.wait_for_requests(3));
  std::string parent_id, child_id;
  for (const auto& r : endpoint.received()) {
    if (r.function == "parent") parent_id = r.dispatch_id;
    if (r.function == "child") child_id = r.dispatch_id;
  }
  std::promise<Result<std::vector<std::string>>> answered;
  scheduler.cancel(parent_id, "ann@host", [&](auto ids) { answered.set_value(std::move(ids)); });
  auto cancelled = answered.get_future().get();
  ASSERT_TRUE(cancelled.is_ok()) << cancelled.status().message();
  EXPECT_EQ(*cancelled, (std::vector<std::string>{parent_id, child_id}));

  auto done = await(scheduler, root, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_NE(done.error->message.find("child: CancelledError"), std::string::npos)
      << done.error->message;
  EXPECT_EQ(find(child_id).status, RunStatus::kCancelled);

  // The child's reply comes after all: it is recorded as lost, not applied.
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(9)); });
  ASSERT_TRUE(until({&endpoint}, [&] {
    auto events = history(child_id);
    return !events.empty() && events.back().outcome == "lost";
  })) << "the late reply was never recorded";
  EXPECT_EQ(find(child_id).status, RunStatus::kCancelled);
  EXPECT_FALSE(find(child_id).output.has_value());
  auto events = history(child_id);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome, "lost");
  auto cancels = actions(child_id);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].action, "cancel");
  EXPECT_EQ(cancels[0].actor, "ann@host");
  EXPECT_EQ(scheduler.figures().cancelled, 2u);
}

TEST_F(SchedulerFairnessTest, RetryNowRunsACallInBackoffAtOnce) {
  auto store = open();
  std::atomic<int> calls{0};
  FakeEndpoint endpoint(clock_, answer([&](const pb::RunRequest&) {
                          return ++calls == 1 ? fail_with(pb::STATUS_TEMPORARY_ERROR, "flaky")
                                              : exit_with(1);
                        }));
  options_.retry.initial_backoff = 3600 * kMicrosPerSecond;
  options_.retry.max_backoff = 3600 * kMicrosPerSecond;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto id = dispatch(scheduler, {call("f", 0)})[0];
  ASSERT_TRUE(until({&endpoint}, [&] { return history(id).size() == 1; }));
  Micros failed_at = clock_.now();
  std::promise<Result<std::vector<std::string>>> answered;
  scheduler.retry_now(id, "api-key:ab12", [&](auto ids) { answered.set_value(std::move(ids)); });
  auto skipped = answered.get_future().get();
  ASSERT_TRUE(skipped.is_ok());
  EXPECT_EQ(*skipped, std::vector<std::string>{id});
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.finished_at, failed_at) << "no backoff was waited out";
  auto events = history(id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].outcome, "retry");
  EXPECT_EQ(events[1].outcome, "succeeded");
  EXPECT_EQ(events[1].detail, "retry");
  auto done_by = actions(id);
  ASSERT_EQ(done_by.size(), 1u);
  EXPECT_EQ(done_by[0].action, "retry-now");
  EXPECT_EQ(done_by[0].actor, "api-key:ab12");
}

TEST_F(SchedulerFairnessTest, EveryAttemptAndPollIsInTheHistory) {
  auto store = open();
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "parent") return parent_of(r, "child");
    return exit_with(4);
  });
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  auto id = dispatch(scheduler, {call("parent", 0)})[0];
  EXPECT_EQ(await(scheduler, id, {&endpoint}).status, RunStatus::kSucceeded);
  auto events = history(id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, "attempt");
  EXPECT_EQ(events[0].outcome, "suspended");
  EXPECT_EQ(events[0].detail, "dispatched");
  EXPECT_EQ(events[1].kind, "poll");
  EXPECT_EQ(events[1].children, 1);
  EXPECT_EQ(events[2].kind, "attempt");
  EXPECT_EQ(events[2].outcome, "succeeded");
  EXPECT_EQ(events[2].detail, "results");
  EXPECT_EQ(events[2].results, 1);
  EXPECT_EQ(events[2].call_status, pb::STATUS_OK);
}

TEST_F(SchedulerFairnessTest, AnExpiredChildFailsAtItsExpirationAndItsParentGetsTheError) {
  auto store = open();
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "parent" && r.has_input()) {
      pb::RunResponse response;
      response.mutable_poll()->set_coroutine_state("s");
      auto* child = response.mutable_poll()->add_calls();
      child->set_function("child");
      child->mutable_expiration()->set_seconds(5);
      return response;
    }
    if (r.function() == "parent") return parent_of(r, "");
    return std::nullopt;  // the child hangs past its expiration
  });
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  Micros started = clock_.now();
  auto id = dispatch(scheduler, {call("parent", 0)})[0];
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_NE(done.error->message.find("child: STATUS_TIMEOUT"), std::string::npos)
      << done.error->message;
  EXPECT_EQ(*done.finished_at, started + 5 * kMicrosPerSecond)
      << "the child failed at its expiration, not at the end of its lease";
}

TEST_F(SchedulerFairnessTest, ADurableSleepWakesAtItsTimeAndHoldsNoThread) {
  auto store = open();
  // A Poll with no calls and max_wait 1 h: a sleep.
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest& r) {
                          if (r.has_input()) {
                            pb::RunResponse response;
                            response.mutable_poll()->set_coroutine_state("s");
                            response.mutable_poll()->mutable_max_wait()->set_seconds(3600);
                            return response;
                          }
                          return exit_with(7);
                        }));
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  Micros started = clock_.now();
  auto ids = dispatch(scheduler, std::vector<NewCall>(100, call("sleeper", 0)));
  for (const auto& id : ids) {
    auto done = await(scheduler, id, {&endpoint});
    EXPECT_EQ(done.status, RunStatus::kSucceeded);
    auto runs = endpoint.received_for(id);
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[1].at - started, 3600 * kMicrosPerSecond) << "woke at its time";
  }
  EXPECT_EQ(scheduler.figures().in_flight, 0) << "nothing is held while they sleep";
}

TEST_F(SchedulerFairnessTest, FiguresShowQueueDepthPerFunctionAndSleepingCoroutines) {
  auto store = open();
  // "slow" never answers; "sleeper" sleeps an hour (a Poll with no calls).
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "slow") return std::nullopt;
    pb::RunResponse response;
    response.mutable_poll()->set_coroutine_state("s");
    response.mutable_poll()->mutable_max_wait()->set_seconds(3600);
    return response;
  });
  options_.aimd.initial = 2;
  Scheduler scheduler(*store, clock_, endpoint, options_);
  scheduler.start();
  dispatch(scheduler, std::vector<NewCall>(10, call("slow", 0)));
  NewCall sleeper = call("sleeper", 0);
  sleeper.endpoint = "http://sleep";
  dispatch(scheduler, std::vector<NewCall>(3, sleeper));
  SchedulerFigures figures;
  EXPECT_TRUE(until({&endpoint},
                    [&] {
                      figures = scheduler.figures();
                      return figures.queue_depth["slow"] == 8 && figures.waiting == 3;
                    }))
      << "queue depth of slow: " << figures.queue_depth["slow"] << ", waiting " << figures.waiting;
  EXPECT_EQ(figures.calls_dispatched, 13u);
  EXPECT_EQ(figures.in_flight, 2) << "the slow endpoint's limit";
  EXPECT_EQ(figures.queue_depth.count("sleeper"), 0u) << "a sleeping coroutine is not queued";
  EXPECT_GT(figures.commit_seconds.count, 0u);
  EXPECT_GT(figures.turn_size.count, 0u);
}

}  // namespace
}  // namespace ratchet::engine
