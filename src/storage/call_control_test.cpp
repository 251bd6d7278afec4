// The store's side of issue 10, on both backends: claims queue by queue,
// cancellation of a call tree, retry now, expiry, and each call's bounded
// history.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "storage/store_test_support.hpp"

namespace ratchet {
namespace {

class CallControlTest : public BackendTest {
 protected:
  static NewCall call(const std::string& function, const std::string& endpoint = "http://a") {
    NewCall c;
    c.function = function;
    c.endpoint = endpoint;
    c.input = "in";
    return c;
  }

  // Runs `f` in one transaction and returns what it produced.
  template <typename F>
  auto in_tx(F&& f) {
    using T = std::remove_cvref_t<decltype(*f(std::declval<CallTransaction&>()))>;
    T value{};
    Status status = store_->calls([&](CallTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(value, f(tx));
      return Status::ok();
    });
    EXPECT_TRUE(status.is_ok()) << status.message();
    return value;
  }

  std::string dispatch(const NewCall& c) {
    return in_tx([&](CallTransaction& tx) { return tx.dispatch(c); });
  }
  std::vector<ClaimedCall> claim_all() {
    return in_tx(
        [&](CallTransaction& tx) { return testing::claim_due(tx, "me", lease_until(), 1000); });
  }
  Micros lease_until() const { return clock_.now() + 60 * kMicrosPerSecond; }
  CallRecord find(const std::string& id) { return **store_->find_call(id); }
};

RATCHET_ON_BOTH_BACKENDS(CallControlTest);

TEST_P(CallControlTest, DueQueuesListsEachQueueOnceStartingAfterTheCursor) {
  for (int i = 0; i < 5; ++i) dispatch(call("A"));
  dispatch(call("B"));
  dispatch(call("C", "http://b"));
  auto all = in_tx([&](CallTransaction& tx) { return tx.due_queues({}, 10); });
  EXPECT_EQ(all, (std::vector<QueueKey>{{"http://a", "A"}, {"http://a", "B"}, {"http://b", "C"}}));
  auto rotated = in_tx([&](CallTransaction& tx) { return tx.due_queues({"http://a", "A"}, 10); });
  EXPECT_EQ(rotated,
            (std::vector<QueueKey>{{"http://a", "B"}, {"http://b", "C"}, {"http://a", "A"}}));
  auto two = in_tx([&](CallTransaction& tx) { return tx.due_queues({"http://a", "B"}, 2); });
  EXPECT_EQ(two, (std::vector<QueueKey>{{"http://b", "C"}, {"http://a", "A"}}));
}

TEST_P(CallControlTest, AQueueWhoseCallsAreNotDueIsNotListed) {
  std::string id = dispatch(call("A"));
  claim_all();
  ASSERT_TRUE(in_tx([&](CallTransaction& tx) {
    return tx.retry(id, 1, clock_.now() + kMicrosPerSecond, CallError{"E", "later"});
  }));
  EXPECT_TRUE(in_tx([&](CallTransaction& tx) { return tx.due_queues({}, 10); }).empty());
  clock_.advance(kMicrosPerSecond);
  EXPECT_EQ(in_tx([&](CallTransaction& tx) { return tx.due_queues({}, 10); }).size(), 1u);
}

TEST_P(CallControlTest, ClaimQueueTakesOnlyItsQueueOldestFirst) {
  std::string a1 = dispatch(call("A"));
  clock_.advance(1);
  std::string b1 = dispatch(call("B"));
  clock_.advance(1);
  std::string a2 = dispatch(call("A"));
  auto claimed = in_tx([&](CallTransaction& tx) {
    return tx.claim_queue({"http://a", "A"}, "me", lease_until(), 10);
  });
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].call.id, a1);
  EXPECT_EQ(claimed[1].call.id, a2);
  EXPECT_EQ(claimed[0].call.phase, CallPhase::kLeased);
  EXPECT_EQ(find(b1).phase, CallPhase::kReady);
}

TEST_P(CallControlTest, ClaimUrgentTakesExpiredLeasesAndPastDeadlinesNotReadyCalls) {
  std::string leased = dispatch(call("A"));
  claim_all();
  dispatch(call("B"));
  clock_.advance(61 * kMicrosPerSecond);
  auto urgent =
      in_tx([&](CallTransaction& tx) { return tx.claim_urgent("me", lease_until(), 10); });
  ASSERT_EQ(urgent.size(), 1u);
  EXPECT_EQ(urgent[0].call.id, leased);
}

// A parent waiting for `child`, which waits for `grandchild`.
struct Tree {
  std::string parent, child, grandchild;
};

TEST_P(CallControlTest, CancelEndsTheCallAndItsDescendantsAndTellsTheWaitingParent) {
  Tree t;
  t.parent = dispatch(call("parent"));
  claim_all();
  PollState poll{6, "state", 1, 1, clock_.now() + 3600 * kMicrosPerSecond};
  ASSERT_TRUE(in_tx(
      [&](CallTransaction& tx) { return tx.suspend(t.parent, 1, poll, {call("child")}, {}); }));
  auto children = claim_all();
  ASSERT_EQ(children.size(), 1u);
  t.child = children[0].call.id;
  ASSERT_TRUE(in_tx(
      [&](CallTransaction& tx) { return tx.suspend(t.child, 1, poll, {call("grandchild")}, {}); }));
  auto grandchildren = claim_all();
  ASSERT_EQ(grandchildren.size(), 1u);
  t.grandchild = grandchildren[0].call.id;

  auto cancelled = in_tx([&](CallTransaction& tx) { return tx.cancel(t.child, "ann@host"); });
  EXPECT_EQ(cancelled, (std::vector<std::string>{t.child, t.grandchild}));
  for (const auto& id : {t.child, t.grandchild}) {
    auto record = find(id);
    EXPECT_EQ(record.status, RunStatus::kCancelled) << id;
    EXPECT_EQ(record.phase, CallPhase::kDone);
    EXPECT_EQ(record.error->type, kCancelledErrorType);
  }
  // The grandchild's attempt in flight is fenced off.
  EXPECT_FALSE(in_tx([&](CallTransaction& tx) {
    return tx.finish(t.grandchild, 1, CallEnd{true, 1, std::string("late"), {}}, {});
  }));
  EXPECT_EQ(find(t.grandchild).status, RunStatus::kCancelled);
  // The parent wakes with the cancellation as its child's error.
  auto woken = claim_all();
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0].call.id, t.parent);
  ASSERT_EQ(woken[0].results.size(), 1u);
  EXPECT_EQ(woken[0].results[0].child_id, t.child);
  EXPECT_EQ(woken[0].results[0].error->type, kCancelledErrorType);
  EXPECT_NE(woken[0].results[0].error->message.find("ann@host"), std::string::npos);

  // Each call cancelled is an action of the actor's, in call_actions (not the
  // scheduler's history).
  auto actions = store_->call_actions(t.child, 100)->latest;
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].action, "cancel");
  EXPECT_EQ(actions[0].actor, "ann@host");
  EXPECT_EQ(actions[0].at, clock_.now());
  actions = store_->call_actions(t.grandchild, 100)->latest;
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].action, "cancel");
  EXPECT_NE(actions[0].detail.find(t.child), std::string::npos) << "names the ancestor";
  EXPECT_TRUE(store_->call_history(t.grandchild, 100)->empty());
  EXPECT_TRUE(store_->call_actions(t.parent, 100)->latest.empty())
      << "the parent was not cancelled";

  EXPECT_TRUE(in_tx([&](CallTransaction& tx) { return tx.cancel(t.child, "ann@host"); }).empty())
      << "a done call is not cancelled again";
  Status unknown =
      store_->calls([&](CallTransaction& tx) { return tx.cancel("nope", "x").status(); });
  EXPECT_EQ(unknown.code(), Code::kNotFound);
}

TEST_P(CallControlTest, RetryNowMakesACallInBackoffDueAndIsRecorded) {
  std::string id = dispatch(call("A"));
  claim_all();
  ASSERT_TRUE(in_tx([&](CallTransaction& tx) {
    return tx.retry(id, 1, clock_.now() + 3600 * kMicrosPerSecond, CallError{"E", "later"});
  }));
  EXPECT_TRUE(claim_all().empty());
  EXPECT_TRUE(in_tx([&](CallTransaction& tx) { return tx.retry_now(id, "api-key:1234"); }));
  EXPECT_EQ(claim_all().size(), 1u);
  EXPECT_FALSE(in_tx([&](CallTransaction& tx) { return tx.retry_now(id, "x"); }))
      << "a running call has no backoff to skip";
  auto actions = store_->call_actions(id, 100)->latest;
  ASSERT_EQ(actions.size(), 1u) << "the refused retry now is not recorded";
  EXPECT_EQ(actions[0].action, "retry-now");
  EXPECT_EQ(actions[0].actor, "api-key:1234");
}

TEST_P(CallControlTest, ExpireFailsLiveCallsPastTheirExpirationAndTellsTheParent) {
  std::string parent = dispatch(call("parent"));
  claim_all();
  NewCall child = call("child");
  child.expires_at = clock_.now() + kMicrosPerSecond;
  PollState poll{6, "state", 1, 1, clock_.now() + 3600 * kMicrosPerSecond};
  ASSERT_TRUE(in_tx([&](CallTransaction& tx) { return tx.suspend(parent, 1, poll, {child}, {}); }));
  auto leased = claim_all();  // the child is in flight
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(in_tx([&](CallTransaction& tx) { return tx.next_expiry(); }), child.expires_at);
  CallEnd timeout{false, 2, {}, CallError{"TIMEOUT", "the call expired"}};
  EXPECT_TRUE(in_tx([&](CallTransaction& tx) { return tx.expire(timeout, 10); }).empty());
  clock_.advance(kMicrosPerSecond);
  auto expired = in_tx([&](CallTransaction& tx) { return tx.expire(timeout, 10); });
  ASSERT_EQ(expired.size(), 1u);
  auto record = find(expired[0]);
  EXPECT_EQ(record.status, RunStatus::kFailed);
  EXPECT_EQ(record.call_status, 2);
  EXPECT_FALSE(in_tx([&](CallTransaction& tx) {
    return tx.finish(expired[0], 1, CallEnd{true, 1, std::string("late"), {}}, {});
  })) << "the reply of the attempt in flight is ignored";
  auto woken = claim_all();
  ASSERT_EQ(woken.size(), 1u);
  ASSERT_EQ(woken[0].results.size(), 1u);
  EXPECT_EQ(woken[0].results[0].error->type, "TIMEOUT");
  EXPECT_FALSE(in_tx([&](CallTransaction& tx) { return tx.next_expiry(); }).has_value());
}

TEST_P(CallControlTest, HistoryKeepsItsHeadAndTailOfAManyAttemptCall) {
  std::string id = dispatch(call("A"));
  constexpr int kEvents = 1000;
  std::vector<HistoryEvent> events;
  for (int i = 1; i <= kEvents; ++i) {
    events.push_back(HistoryEvent{id, "attempt", 0, i, 5, i, 6, "retry", "E: boom", 0, 0});
  }
  ASSERT_TRUE(
      store_->calls([&](CallTransaction& tx) { return tx.record_history(events); }).is_ok());
  auto history = *store_->call_history(id, kEvents);
  ASSERT_EQ(history.size(), static_cast<std::size_t>(kHistoryHead + kHistoryTail));
  EXPECT_EQ(history.front().number, 1);
  EXPECT_EQ(history[kHistoryHead - 1].number, kHistoryHead);
  EXPECT_EQ(history[kHistoryHead].number, kEvents - kHistoryTail + 1);
  EXPECT_EQ(history.back().number, kEvents);
  EXPECT_EQ(history.back().attempt, kEvents);
  EXPECT_EQ(history.back().duration, 5);
}

// Events of several calls, interleaved within a turn and across turns, are
// numbered per call in the order they came.
TEST_P(CallControlTest, HistoryNumbersEachCallsEventsInOrderWhenTheyInterleave) {
  std::string a = dispatch(call("A"));
  std::string b = dispatch(call("B"));
  auto event = [](const std::string& id, int attempt) {
    return HistoryEvent{id, "attempt", 0, attempt, 5, attempt, 6, "retry", "E", 0, 0};
  };
  for (const auto& turn : {std::vector<HistoryEvent>{event(a, 1), event(b, 1), event(a, 2)},
                           std::vector<HistoryEvent>{event(a, 3), event(a, 4), event(b, 2)}}) {
    ASSERT_TRUE(
        store_->calls([&](CallTransaction& tx) { return tx.record_history(turn); }).is_ok());
  }
  for (const auto& [id, count] : {std::pair{a, 4}, std::pair{b, 2}}) {
    auto history = *store_->call_history(id, 10);
    ASSERT_EQ(history.size(), static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(history[i].number, i + 1);
      EXPECT_EQ(history[i].attempt, i + 1) << "call " << id << ", event " << i + 1;
    }
  }
}

// The dashboard's timeline reads only what it shows: a call's latest events
// and actions, oldest first, and how many actions there are in all.
TEST_P(CallControlTest, HistoryAndActionsReadOnlyTheLatestAskedForOldestFirst) {
  std::string id = dispatch(call("A"));
  std::vector<HistoryEvent> events;
  for (int i = 1; i <= 5; ++i) {
    events.push_back(HistoryEvent{id, "attempt", 0, i, 5, i, 6, "retry", "E", 0, 0});
  }
  ASSERT_TRUE(
      store_->calls([&](CallTransaction& tx) { return tx.record_history(events); }).is_ok());
  auto latest = store_->call_history(id, 2);
  ASSERT_TRUE(latest.is_ok()) << latest.status().message();
  ASSERT_EQ(latest->size(), 2u);
  EXPECT_EQ((*latest)[0].number, 4);
  EXPECT_EQ((*latest)[1].number, 5);
  EXPECT_EQ((*latest)[1].attempt, 5);
  EXPECT_EQ(store_->call_history(id, 100)->size(), 5u);

  for (int i = 0; i < 3; ++i) {
    auto claimed = claim_all();
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_TRUE(in_tx([&](CallTransaction& tx) {
      return tx.retry(id, claimed[0].call.lease_epoch, clock_.now() + 3600 * kMicrosPerSecond,
                      CallError{"E", "later"});
    }));
    ASSERT_TRUE(
        in_tx([&](CallTransaction& tx) { return tx.retry_now(id, "actor-" + std::to_string(i)); }));
    clock_.advance(1);
  }
  auto actions = store_->call_actions(id, 2);
  ASSERT_TRUE(actions.is_ok()) << actions.status().message();
  EXPECT_EQ(actions->total, 3);
  ASSERT_EQ(actions->latest.size(), 2u);
  EXPECT_EQ(actions->latest[0].actor, "actor-1");
  EXPECT_EQ(actions->latest[1].actor, "actor-2");
  EXPECT_EQ(store_->call_actions(id, 100)->latest.size(), 3u);
  EXPECT_EQ(store_->call_actions("no-such-call", 100)->total, 0);
}

TEST_P(CallControlTest, ALongErrorIsCutInTheHistory) {
  std::string id = dispatch(call("A"));
  HistoryEvent e{id, "attempt", 0, 1, 1, 1, 6, "retry", std::string(100'000, 'x'), 0, 0};
  ASSERT_TRUE(store_->calls([&](CallTransaction& tx) { return tx.record_history({e}); }).is_ok());
  EXPECT_LT((*store_->call_history(id, 1))[0].detail.size(), 2000u);
}

}  // namespace
}  // namespace ratchet
