// How the scheduler's turns gather work into commits, in fake time: replies
// that arrive while a commit is in progress go into the next turn together (one
// transaction, one fsync); a lone reply is recorded at once, without waiting
// for company; and a reply's times count from when it came, not from the turn
// that records it. A ControlledStore stops a transaction before its commit, as
// a slow fsync would.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <thread>

#include "engine/scheduler.hpp"
#include "engine/test_support.hpp"

namespace ratchet::engine {
namespace {

using namespace testing;

class SchedulerCommitTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    real_ = open();
    store_ = std::make_unique<ControlledStore>(*real_, clock_);
  }

  // Polls `ready` until it holds, 30 s of real time at most: for what
  // notifies no one (the endpoint going idle, a figure moving).
  static bool eventually(const std::function<bool()>& ready) {
    auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!ready()) {
      if (std::chrono::steady_clock::now() > bound) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }

  // Blocks until the endpoint answered `n` requests and is idle (30 s at most).
  static bool answered(const FakeEndpoint& endpoint, std::size_t n) {
    return endpoint.wait_for_requests(n) && eventually([&] { return endpoint.idle(); });
  }

  // Lets held commits go when a test ends early, before its scheduler stops.
  struct ResumeAtExit {
    ControlledStore& store;
    ~ResumeAtExit() { store.resume_commits(); }
  };
  struct ResumeSyncsAtExit {
    ControlledStore& store;
    ~ResumeSyncsAtExit() { store.resume_syncs(); }
  };

  // A Dispatch whose answer comes through `answered` (its ids or why not).
  struct Answered {
    std::shared_ptr<std::promise<Result<std::vector<std::string>>>> ids =
        std::make_shared<std::promise<Result<std::vector<std::string>>>>();
    std::shared_ptr<std::promise<DispatchRelease>> release =
        std::make_shared<std::promise<DispatchRelease>>();
    std::future<Result<std::vector<std::string>>> answer = ids->get_future();
  };
  static void dispatch_into(Scheduler& scheduler, std::vector<NewCall> calls, Answered& to) {
    scheduler.dispatch(std::move(calls),
                       [ids = to.ids, release = to.release](auto result, DispatchRelease r) {
                         release->set_value(std::move(r));
                         ids->set_value(std::move(result));
                       });
  }
  // Holds "slow" until answer_held(); anything else returns 2 at once.
  static std::optional<pb::RunResponse> slow_held(const pb::RunRequest& r) {
    if (r.function() == "slow") return std::nullopt;
    return exit_with(2);
  }
  static bool ready(std::future<Result<std::vector<std::string>>>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }

  std::unique_ptr<Store> real_;
  std::unique_ptr<ControlledStore> store_;
};

TEST_F(SchedulerCommitTest, RepliesThatArriveDuringACommitAreRecordedTogetherByTheNextTurn) {
  FakeEndpoint endpoint(
      clock_, answer([](const pb::RunRequest& r) { return exit_with(int_of(r.input())); }));
  options_.aimd.initial = 32;  // room for the 20 at once
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  ResumeAtExit resume{*store_};
  scheduler.start();
  auto batch = dispatch_unanswered(scheduler, std::vector<NewCall>(20, call("echo", 1)));
  ASSERT_EQ(batch.ids.size(), 20u);
  // The 20 calls go with the next turn, just before its transaction, which
  // then stops before its commit while the endpoint answers all of them.
  store_->hold_commits();
  batch.release.written();
  ASSERT_TRUE(store_->wait_for_held_commit());
  ASSERT_TRUE(answered(endpoint, 20));
  std::size_t held = store_->transactions().size();
  store_->resume_commits();

  // Watched through the figures, which make no turn of their own.
  ASSERT_TRUE(eventually([&] { return scheduler.figures().attempts >= 20u; }))
      << "the replies were never recorded";
  EXPECT_EQ(store_->transactions().size(), held + 1)
      << "the 20 replies that came during one commit are recorded by one transaction";
  for (const auto& id : batch.ids) EXPECT_EQ(find(id).status, RunStatus::kSucceeded);
}

TEST_F(SchedulerCommitTest, ALoneReplyIsRecordedAtOnceWithoutWaitingForMore) {
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  Micros dispatched = clock_.now();
  auto id = dispatch(scheduler, {call("echo", 1)})[0];
  // await() moves the fake clock to any timer the scheduler waits for: a
  // turn that waited to gather more replies would show as time passed.
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  ASSERT_TRUE(done.finished_at.has_value());
  EXPECT_EQ(*done.finished_at, dispatched) << "recorded with no wait at all";
}

TEST_F(SchedulerCommitTest, ASleepCountsFromItsReplyNotFromTheTurnThatRecordsIt) {
  // A Poll with no calls and max_wait 10 s: a sleep.
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest& r) {
                          if (!r.has_input()) return exit_with(7);
                          pb::RunResponse response;
                          response.mutable_poll()->set_coroutine_state("s");
                          response.mutable_poll()->mutable_max_wait()->set_seconds(10);
                          return response;
                        }));
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  ResumeAtExit resume{*store_};
  scheduler.start();
  auto batch = dispatch_unanswered(scheduler, {call("sleeper", 0)});
  ASSERT_EQ(batch.ids.size(), 1u);
  // The reply comes during a commit that takes a whole second (a busy
  // server): the turn that records it starts a second after it came.
  store_->hold_commits();
  batch.release.written();
  ASSERT_TRUE(store_->wait_for_held_commit());
  ASSERT_TRUE(answered(endpoint, 1));
  clock_.advance(kMicrosPerSecond);
  store_->resume_commits();

  auto done = await(scheduler, batch.ids[0], {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  auto runs = endpoint.received_for(batch.ids[0]);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].at - runs[0].at, 10 * kMicrosPerSecond)
      << "woke 10 s after it asked to sleep, not 10 s after the busy turn";
}

// With a store whose commits return before the disk has them, the scheduler
// acknowledges nothing (here: Wait's answer) until a sync after the commit
// returns, while the work itself goes on: the next step's call and the
// parent's resume are sent with the disk's flush still in progress.
TEST_F(SchedulerCommitTest, AnAnswerWaitsForTheDiskButTheNextStepsDoNot) {
  // "parent" makes two sequential steps (children "work"), then returns.
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest& r) {
                          if (r.function() == "work") return exit_with(1);
                          int steps =
                              r.has_input() ? 0 : std::stoi(r.poll_result().coroutine_state());
                          if (steps == 2) return exit_with(2);
                          pb::RunResponse response;
                          response.mutable_poll()->set_coroutine_state(std::to_string(steps + 1));
                          response.mutable_poll()->add_calls()->set_function("work");
                          return response;
                        }));
  store_->deferring = true;
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  ResumeSyncsAtExit resume{*store_};
  scheduler.start();
  auto batch = dispatch_unanswered(scheduler, {call("parent", 0)});
  ASSERT_EQ(batch.ids.size(), 1u);
  // Held before the Wait, which lets the call go (AnswerGate::waited).
  store_->hold_syncs();
  auto outcome = std::make_shared<std::promise<CallOutcome>>();
  auto wait_answer = outcome->get_future();
  scheduler.wait(batch.ids[0], kMaxMicros,
                 [outcome](CallOutcome o) { outcome->set_value(std::move(o)); });
  // parent, work, parent, work, parent: every request goes, none waits for a sync.
  ASSERT_TRUE(answered(endpoint, 5)) << "a step waited for the disk";
  ASSERT_TRUE(eventually([&] { return find(batch.ids[0]).status == RunStatus::kSucceeded; }))
      << "the call's end was never committed";
  ASSERT_TRUE(store_->wait_for_held_sync());
  EXPECT_EQ(wait_answer.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "Wait was answered before the commit it read was on disk";

  store_->resume_syncs();
  ASSERT_EQ(wait_answer.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "Wait was never answered once the disk had the commit";
  auto done = wait_answer.get();
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_EQ(done->status, RunStatus::kSucceeded);
}

// A call recorded by one turn and claimed by a later one (no room before)
// while its Dispatch's answer waits for the disk is held until the answer is
// out, as any newly dispatched call: its caller does not have its id yet.
TEST_F(SchedulerCommitTest, ACallClaimedBeforeItsDispatchIsAnsweredWaitsForTheAnswer) {
  FakeEndpoint endpoint(clock_, slow_held);
  options_.max_in_flight = 1;
  store_->deferring = true;
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  ResumeSyncsAtExit resume{*store_};
  scheduler.start();
  auto slow = dispatch_unanswered(scheduler, {call("slow", 0)});
  ASSERT_EQ(slow.ids.size(), 1u);
  slow.release.read();
  ASSERT_TRUE(endpoint.wait_for_requests(1));

  store_->hold_syncs();
  Answered fast;
  dispatch_into(scheduler, {call("fast", 1)}, fast);  // recorded; no room to claim it
  ASSERT_TRUE(store_->wait_for_held_sync());
  // Slow's reply frees the one slot: the turn that records it claims fast.
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  ASSERT_TRUE(eventually([&] { return find(slow.ids[0]).status == RunStatus::kSucceeded; }))
      << "slow's end was never committed";
  // Calls go before their turn's commit: had fast gone, it would be here.
  for (const auto& r : endpoint.received()) {
    EXPECT_NE(r.function, "fast") << "sent before its Dispatch was answered";
  }
  EXPECT_FALSE(ready(fast.answer)) << "answered before its commit was on disk";

  store_->resume_syncs();
  ASSERT_EQ(fast.answer.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_TRUE(fast.answer.get().is_ok());
  fast.release->get_future().get().read();
  ASSERT_TRUE(endpoint.wait_for_requests(2)) << "fast never went once answered";
}

// Another writer (a second server, `ratchet cancel`) can commit after the
// flush in progress began: the Wait answer read after that waits for a flush
// that begins after the read, not for the one in progress.
TEST_F(SchedulerCommitTest, AnAnswerReadAfterAFlushBeganWaitsForTheNextFlush) {
  FakeEndpoint endpoint(clock_, slow_held);
  store_->deferring = true;
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  ResumeSyncsAtExit resume{*store_};
  scheduler.start();
  auto x = dispatch_unanswered(scheduler, {call("slow", 0)});
  ASSERT_EQ(x.ids.size(), 1u);
  x.release.read();
  ASSERT_TRUE(endpoint.wait_for_requests(1));
  auto outcome = std::make_shared<std::promise<CallOutcome>>();
  auto wait_answer = outcome->get_future();
  scheduler.wait(x.ids[0], kMaxMicros,
                 [outcome](CallOutcome o) { outcome->set_value(std::move(o)); });
  ASSERT_TRUE(eventually([&] { return clock_.idle_sleepers() >= 1; }));

  store_->hold_syncs();
  Answered other;
  dispatch_into(scheduler, {call("other", 1)}, other);
  ASSERT_TRUE(store_->wait_for_held_sync());
  // The flush has begun; another connection now ends x.
  auto writer = open();
  ASSERT_TRUE(writer
                  ->calls([&](CallTransaction& tx) -> Status {
                    return tx.cancel(x.ids[0], "test").status();
                  })
                  .is_ok());
  const int begun = store_->syncs_begun;
  // The safety poll reads x, with no commit of the scheduler's own before it.
  ASSERT_TRUE(eventually([&] { return clock_.idle_sleepers() >= 1; }));
  clock_.advance(options_.safety_poll);
  ASSERT_TRUE(eventually([&] { return clock_.idle_sleepers() >= 1; }));
  store_->resume_syncs();

  ASSERT_EQ(wait_answer.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the Wait was never answered";
  EXPECT_GT(store_->syncs_begun.load(), begun)
      << "answered from a read made after the flush in progress began, with no flush after it";
  auto done = wait_answer.get();
  ASSERT_TRUE(done.is_ok()) << done.status().message();
  EXPECT_EQ(done->status, RunStatus::kCancelled);
}

// A flush that fails leaves what waited for it unacknowledged, also when the
// scheduler stops meanwhile (a second fdatasync could succeed, the pages lost).
TEST_F(SchedulerCommitTest, WhatAFailedFlushWasForIsRefusedEvenAsTheSchedulerStops) {
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  store_->deferring = true;
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  ResumeSyncsAtExit resume{*store_};
  scheduler.start();
  store_->hold_syncs();
  Answered dispatched;
  dispatch_into(scheduler, {call("f", 1)}, dispatched);
  ASSERT_TRUE(store_->wait_for_held_sync());
  store_->failing_syncs = 1;
  std::thread stopper([&] { scheduler.stop(); });
  store_->resume_syncs();
  stopper.join();
  ASSERT_EQ(dispatched.answer.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto ids = dispatched.answer.get();
  EXPECT_FALSE(ids.is_ok()) << "acknowledged although the flush of its commit failed";
  if (!ids.is_ok()) {
    EXPECT_EQ(ids.status().code(), Code::kUnavailable);
  }
}

}  // namespace
}  // namespace ratchet::engine
