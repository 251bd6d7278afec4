#include <google/protobuf/any.pb.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "protocol/journal_delta.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_store.hpp"
#include "storage/store_test_support.hpp"
#include "storage/testing.hpp"

namespace ratchet {
namespace {

// The Poll state of a whole C++ journal of `steps` pending steps, at `revision`.
PollState whole_journal(std::uint64_t revision, int steps, Micros deadline);

// The call transitions of the Store, on each backend.
class CallStoreTest : public BackendTest {
 protected:
  NewCall call(const std::string& function, std::uint64_t correlation = 0) {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = std::string("in\0put", 6);
    c.correlation_id = correlation;
    return c;
  }

  CallRecord find(const std::string& id) { return **store_->find_call(id); }

  // How many coroutine states the store holds, read by another connection.
  int stored_states() { return static_cast<int>(number("SELECT COUNT(*) FROM coroutine_states")); }

  // Claims call `id`, suspends it with a whole journal of one step at revision
  // 1, due now, and claims it again: what that claim took.
  std::vector<ClaimedCall> suspend_with_whole_journal(const std::string& id) {
    claim();
    Micros now = clock_.now();
    EXPECT_TRUE(apply(
        [&](CallTransaction& tx) { return tx.suspend(id, 1, whole_journal(1, 1, now), {}, {}); }));
    return claim();
  }
};

RATCHET_ON_BOTH_BACKENDS(CallStoreTest);

TEST_P(CallStoreTest, DispatchedCallIsClaimedOnceWithAGrowingEpoch) {
  std::string id = dispatch(call("f"));
  auto first = claim();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].call.id, id);
  EXPECT_EQ(first[0].call.root_id, id);
  EXPECT_EQ(first[0].call.input, std::string("in\0put", 6));
  EXPECT_EQ(first[0].call.lease_epoch, 1);
  EXPECT_EQ(first[0].call.attempts, 1);
  EXPECT_TRUE(claim().empty()) << "a leased call is not claimed again before its lease ends";
  clock_.advance(2 * kMicrosPerSecond);
  auto again = claim();
  ASSERT_EQ(again.size(), 1u) << "an expired lease makes the call claimable";
  EXPECT_EQ(again[0].call.lease_epoch, 2);
  // The first holder's late result is fenced off.
  EXPECT_FALSE(apply([&](CallTransaction& tx) {
    return tx.finish(id, 1, CallEnd{true, 1, std::string("late"), {}}, {});
  }));
  EXPECT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(id, 2, CallEnd{true, 1, std::string("out"), {}}, {});
  }));
  auto done = find(id);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(done.output, "out");
  EXPECT_EQ(done.phase, CallPhase::kDone);
}

TEST_P(CallStoreTest, RunKeyMakesDispatchIdempotentWhileLive) {
  auto c = call("f");
  c.run_key = "k";
  std::string first = dispatch(c);
  EXPECT_EQ(dispatch(c), first);
  auto claimed = claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(first, 1, CallEnd{false, 7, {}, CallError{"E", "boom"}}, {});
  }));
  EXPECT_NE(dispatch(c), first) << "a finished key starts anew";
}

// Like jobs' --strict: a key that has had a call returns that call for good,
// finished or not, and a plain dispatch of the key still starts anew once the
// call is over.
TEST_P(CallStoreTest, AOnceEverRunKeyReturnsTheKeysCallEvenWhenItIsFinished) {
  auto c = call("f");
  c.run_key = "order-42";
  c.run_key_once = true;
  std::string first = dispatch(c);
  EXPECT_EQ(dispatch(c), first);
  claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(first, 1, CallEnd{true, 1, std::string("charged"), {}}, {});
  }));
  EXPECT_EQ(dispatch(c), first) << "once ever: the finished call, not a second charge";
  c.run_key_once = false;
  std::string second = dispatch(c);
  EXPECT_NE(second, first) << "while-running keys start anew once the call is over";
  c.run_key_once = true;
  EXPECT_EQ(dispatch(c), second) << "the key's newest call";
}

// The key's newest call is the one created last: a call dispatched after the
// wall clock stepped back has the earlier started_at, and is still the newest.
TEST_P(CallStoreTest, AOnceEverRunKeyTakesTheCallCreatedLastWhenTheClockSteppedBack) {
  auto c = call("f");
  c.run_key = "order-43";
  std::string first = dispatch(c);
  claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(first, 1, CallEnd{true, 1, std::string("charged"), {}}, {});
  }));
  clock_.advance(-3600 * kMicrosPerSecond);  // NTP or an operator steps the clock back
  std::string second = dispatch(c);
  ASSERT_NE(second, first);
  ASSERT_LT(find(second).started_at, find(first).started_at);
  c.run_key_once = true;
  EXPECT_EQ(dispatch(c), second) << "the call created last, not the latest started_at";
}

TEST_P(CallStoreTest, ACallKeepsItsOwnMaxAttempts) {
  auto c = call("f");
  c.max_attempts = 3;
  std::string limited = dispatch(c);
  std::string plain = dispatch(call("g"));
  EXPECT_EQ(find(limited).max_attempts, 3);
  EXPECT_EQ(find(plain).max_attempts, 0);
}

TEST_P(CallStoreTest, RetryWaitsForItsTime) {
  std::string id = dispatch(call("f"));
  claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.retry(id, 1, clock_.now() + 500 * kMicrosPerMilli, CallError{"TIMEOUT", "slow"});
  }));
  EXPECT_TRUE(claim().empty());
  std::optional<Micros> due;
  ASSERT_TRUE(store_
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(due, tx.next_due());
                    return Status::ok();
                  })
                  .is_ok());
  EXPECT_EQ(due, clock_.now() + 500 * kMicrosPerMilli);
  clock_.advance(500 * kMicrosPerMilli);
  auto claimed = claim();
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].call.attempts, 2);
  EXPECT_EQ(claimed[0].call.error->message, "slow");
}

TEST_P(CallStoreTest, SuspendedCoroutineWakesWithChildResultsExactlyOnce) {
  std::string parent = dispatch(call("parent"));
  claim();
  PollState poll{6, std::string("state\0bytes", 11), 2, 10, clock_.now() + 60 * kMicrosPerSecond};
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(parent, 1, poll, {call("child", 11), call("child", 22), call("child", 33)},
                      {});
  }));
  auto children = claim();
  ASSERT_EQ(children.size(), 3u);
  for (const auto& child : children) {
    EXPECT_EQ(child.call.parent_id, parent);
    EXPECT_EQ(child.call.root_id, parent);
  }
  // One result is not enough for min_results = 2.
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[0].call.id, 1, CallEnd{true, 1, std::string("r0"), {}}, {});
  }));
  EXPECT_TRUE(claim().empty());
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[1].call.id, 1, CallEnd{false, 7, {}, CallError{"ValueError", "x"}},
                     {});
  }));
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].call.id, parent);
  ASSERT_TRUE(resumed[0].call.poll.has_value());
  EXPECT_EQ(resumed[0].call.poll->member, 6);
  EXPECT_EQ(resumed[0].call.poll->state, std::string("state\0bytes", 11));
  ASSERT_EQ(resumed[0].results.size(), 2u);
  EXPECT_EQ(resumed[0].results[0].correlation_id, 11u);
  EXPECT_EQ(resumed[0].results[0].output, "r0");
  EXPECT_EQ(resumed[0].results[1].correlation_id, 22u);
  EXPECT_EQ(resumed[0].results[1].error->type, "ValueError");

  // The parent suspends again, consuming the two results; the third child's
  // result is the only one it receives next.
  std::vector<std::string> delivered{resumed[0].results[0].child_id,
                                     resumed[0].results[1].child_id};
  poll.min_results = 1;
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(parent, resumed[0].call.lease_epoch, poll, {}, delivered);
  }));
  EXPECT_TRUE(claim().empty());
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[2].call.id, 1, CallEnd{true, 1, std::string("r2"), {}}, {});
  }));
  auto last = claim();
  ASSERT_EQ(last.size(), 1u);
  ASSERT_EQ(last[0].results.size(), 1u);
  EXPECT_EQ(last[0].results[0].correlation_id, 33u);
}

TEST_P(CallStoreTest, AFailedAttemptKeepsTheResultsForTheNextOne) {
  std::string parent = dispatch(call("parent"));
  claim();
  PollState poll{1, "s", 1, 5, clock_.now() + kMicrosPerSecond};
  apply([&](CallTransaction& tx) { return tx.suspend(parent, 1, poll, {call("c", 7)}, {}); });
  auto child = claim();
  apply([&](CallTransaction& tx) {
    return tx.finish(child[0].call.id, 1, CallEnd{true, 1, std::string("r"), {}}, {});
  });
  auto first = claim();
  ASSERT_EQ(first[0].results.size(), 1u);
  apply([&](CallTransaction& tx) {
    return tx.retry(parent, first[0].call.lease_epoch, clock_.now(), CallError{"X", "y"});
  });
  auto second = claim();
  ASSERT_EQ(second.size(), 1u);
  ASSERT_EQ(second[0].results.size(), 1u) << "an undelivered result is offered again";
}

// ---- Journal deltas (protocol/journal_delta.hpp) ----

namespace jv1 = ::ratchet::sdk::v1;

PollState whole_journal(std::uint64_t revision, int steps, Micros deadline) {
  jv1::Journal journal;
  journal.set_version(2);
  journal.set_function("parent");
  journal.set_revision(revision);
  for (int i = 0; i < steps; ++i) journal.add_steps()->set_argument_hash(100 + i);
  google::protobuf::Any any;
  any.PackFrom(journal);
  PollState poll{6, any.SerializeAsString(), 1, 5, deadline};
  poll.revision = revision;
  return poll;
}

// The Poll that carries `delta`.
PollState delta_poll(const jv1::JournalDelta& delta, Micros deadline) {
  google::protobuf::Any any;
  any.PackFrom(delta);
  PollState poll{6, any.SerializeAsString(), 1, 5, deadline};
  poll.delta = true;
  poll.revision = delta.base_revision() + 1;
  poll.base_revision = delta.base_revision();
  return poll;
}

// A delta from `base` that adds step `added` (and changes nothing else).
PollState journal_delta(std::uint64_t base, std::uint64_t added, Micros deadline) {
  jv1::JournalDelta delta;
  delta.set_base_revision(base);
  delta.mutable_changes()->set_revision(base + 1);
  (*delta.mutable_changes()->mutable_step_updates())[added].set_argument_hash(100 + added - 1);
  return delta_poll(delta, deadline);
}

jv1::Journal journal_in(const std::string& state) {
  google::protobuf::Any any;
  jv1::Journal journal;
  EXPECT_TRUE(any.ParseFromString(state) && any.UnpackTo(&journal)) << "not a journal";
  return journal;
}

// A Poll's delta is appended; the first attempt after it carries it back as it
// came, a retry the whole journal assembled from the base and the deltas.
TEST_P(CallStoreTest, AJournalDeltaIsEchoedOnTheFirstAttemptAndAssembledOnARetry) {
  std::string id = dispatch(call("parent"));
  Micros now = clock_.now();
  auto first = suspend_with_whole_journal(id);
  ASSERT_EQ(first.size(), 1u);
  PollState delta = journal_delta(1, 2, now);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, first[0].call.lease_epoch, delta, {}, {});
  }));
  EXPECT_EQ(number("SELECT COUNT(*) FROM coroutine_deltas"), 1);
  auto echoed = claim();
  ASSERT_EQ(echoed.size(), 1u);
  EXPECT_EQ(echoed[0].call.poll->state, delta.state) << "the first attempt gets the delta back";

  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.retry(id, echoed[0].call.lease_epoch, clock_.now(), CallError{"X", "y"});
  }));
  auto retried = claim();
  ASSERT_EQ(retried.size(), 1u);
  jv1::Journal whole = journal_in(retried[0].call.poll->state);
  EXPECT_EQ(whole.revision(), 2u);
  ASSERT_EQ(whole.steps_size(), 2);
  EXPECT_EQ(whole.steps(1).argument_hash(), 101u);
  auto shown = store_->coroutine_state(id);
  ASSERT_TRUE(shown.is_ok() && shown->has_value());
  EXPECT_EQ(**shown, retried[0].call.poll->state) << "the dashboard reads the whole journal";

  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(id, retried[0].call.lease_epoch, CallEnd{true, 1, std::string("r"), {}}, {});
  }));
  EXPECT_EQ(number("SELECT COUNT(*) FROM coroutine_deltas"), 0);
}

// A process that did not hold the frame of the echoed delta (JournalNotHeld):
// the call is due now, the next attempt carries the whole journal, and the
// attempt that missed is not counted.
TEST_P(CallStoreTest, AResendAfterJournalNotHeldCarriesTheWholeJournalAsTheSameAttempt) {
  std::string id = dispatch(call("parent"));
  auto first = suspend_with_whole_journal(id);
  ASSERT_EQ(first.size(), 1u);
  PollState delta = journal_delta(1, 2, clock_.now());
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, first[0].call.lease_epoch, delta, {}, {});
  }));
  auto echoed = claim();
  ASSERT_EQ(echoed.size(), 1u);
  ASSERT_EQ(echoed[0].call.poll->state, delta.state);
  ASSERT_TRUE(
      apply([&](CallTransaction& tx) { return tx.resend_whole(id, echoed[0].call.lease_epoch); }));
  auto resent = claim();
  ASSERT_EQ(resent.size(), 1u) << "due at once";
  EXPECT_EQ(resent[0].call.attempts, 1) << "the missed attempt is not counted";
  jv1::Journal whole = journal_in(resent[0].call.poll->state);
  EXPECT_EQ(whole.revision(), 2u);
  EXPECT_EQ(whole.steps_size(), 2);
  // The next Poll's delta applies to it.
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, resent[0].call.lease_epoch, journal_delta(2, 3, clock_.now()), {}, {});
  }));
  EXPECT_FALSE(find(id).error.has_value());
}

// A store written before such Polls were refused may hold a state of the
// delta's type as its whole journal: it goes back alone, and a JournalNotHeld
// to it has no deltas to fold. The attempt then counts, so that the call does
// not go round uncounted for ever.
TEST_P(CallStoreTest, AResendWithNoDeltasToFoldCountsTheAttempt) {
  std::string id = dispatch(call("parent"));
  claim();
  Micros now = clock_.now();
  jv1::JournalDelta unreadable;
  unreadable.set_base_revision(1);
  PollState stored = delta_poll(unreadable, now);
  stored.delta = false;  // as the server stored it
  ASSERT_TRUE(apply([&](CallTransaction& tx) { return tx.suspend(id, 1, stored, {}, {}); }));
  auto sent = claim();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].call.attempts, 1);
  ASSERT_EQ(sent[0].call.poll->state, stored.state);
  ASSERT_TRUE(
      apply([&](CallTransaction& tx) { return tx.resend_whole(id, sent[0].call.lease_epoch); }));
  auto again = claim();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].call.attempts, 2) << "nothing was folded: the attempt counts";
}

// A delta on a revision the store does not hold (here 5, where it holds 1) is
// not stored: the attempt is retried, and the retry carries the whole journal.
TEST_P(CallStoreTest, AJournalDeltaOnAnotherRevisionIsRefusedAndTheAttemptRetried) {
  std::string id = dispatch(call("parent"));
  Micros now = clock_.now();
  auto first = suspend_with_whole_journal(id);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, first[0].call.lease_epoch, journal_delta(5, 2, now), {call("c", 2)}, {});
  }));
  EXPECT_EQ(number("SELECT COUNT(*) FROM coroutine_deltas"), 0);
  CallRecord refused = find(id);
  EXPECT_EQ(refused.phase, CallPhase::kReady);
  ASSERT_TRUE(refused.error.has_value());
  EXPECT_EQ(refused.error->type, "JournalDeltaRefused");
  auto retried = claim();
  ASSERT_EQ(retried.size(), 1u) << "the refused Poll's child was not dispatched";
  EXPECT_EQ(retried[0].call.attempts, 2);
  EXPECT_EQ(journal_in(retried[0].call.poll->state).steps_size(), 1);
}

// What the scheduler asks before it applies a Poll (it retries a refused one
// as a failed attempt): the delta on the latest revision goes, any other not.
TEST_P(CallStoreTest, RefusedDeltaSaysWhyAPollsDeltaCannotBeStored) {
  std::string id = dispatch(call("parent"));
  Micros now = clock_.now();
  auto first = suspend_with_whole_journal(id);
  ASSERT_EQ(first.size(), 1u);
  std::optional<std::string> wrong, right;
  ASSERT_TRUE(store_
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(wrong, tx.refused_delta(id, journal_delta(5, 2, now)));
                    ASSIGN_OR_RETURN(right, tx.refused_delta(id, journal_delta(1, 2, now)));
                    return Status::ok();
                  })
                  .is_ok());
  ASSERT_TRUE(wrong.has_value());
  EXPECT_NE(wrong->find("the server holds revision 1"), std::string::npos) << *wrong;
  EXPECT_FALSE(right.has_value()) << *right;
}

// Deltas that do not assemble (a broken or hostile SDK: a step past the end)
// do not fail the claim: the resume carries a BrokenJournal with the reason,
// which the C++ SDK answers INCOMPATIBLE_STATE.
TEST_P(CallStoreTest, DeltasThatDoNotAssembleDoNotBlockTheClaim) {
  std::string id = dispatch(call("parent"));
  Micros now = clock_.now();
  auto first = suspend_with_whole_journal(id);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(id, first[0].call.lease_epoch, journal_delta(1, 9, now), {}, {});
  }));
  auto echoed = claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.retry(id, echoed[0].call.lease_epoch, clock_.now(), CallError{"X", "y"});
  }));
  auto retried = claim();
  ASSERT_EQ(retried.size(), 1u);
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(retried[0].call.poll->state));
  EXPECT_EQ(any.type_url(), protocol::kBrokenJournalType);
  EXPECT_NE(any.value().find("step 9"), std::string::npos) << any.value();
}

// A delta from `base` that completes step `base` with a result of 97 bytes and
// adds step base + 1, as a coroutine of sequential calls sends.
PollState step_delta(std::uint64_t base, Micros deadline) {
  jv1::JournalDelta delta;
  delta.set_base_revision(base);
  jv1::Journal& changes = *delta.mutable_changes();
  changes.set_revision(base + 1);
  changes.set_completed(base);
  jv1::Step& done = (*changes.mutable_step_updates())[base];
  done.set_argument_hash(100 + base - 1);
  done.mutable_output()->set_value(std::string(88, 'r') + std::to_string(100000000 + base));
  (*changes.mutable_step_updates())[base + 1].set_argument_hash(100 + base);
  return delta_poll(delta, deadline);
}

// Compaction (protocol::merge_from): a coroutine of 2,000 Polls keeps a few
// dozen delta rows at most, every first attempt still gets its Poll's delta
// back byte for byte, and the journal assembles to the same bytes as all its
// deltas on the first base would; the journal (220 KB) is kept in blobs, and
// the blobs of former bases and merged deltas are released.
TEST_P(CallStoreTest, ACoroutineOfThousandsOfPollsKeepsFewDeltaRowsAndTheSameJournal) {
  std::string id = dispatch(call("parent"));
  auto claimed = suspend_with_whole_journal(id);
  const std::string first_base = whole_journal(1, 1, 0).state;
  std::vector<std::string> all_deltas;
  long long most_rows = 0;
  for (std::uint64_t revision = 1; revision < 2000; ++revision) {
    ASSERT_EQ(claimed.size(), 1u) << "at revision " << revision;
    PollState delta = step_delta(revision, clock_.now());
    all_deltas.push_back(delta.state);
    ASSERT_TRUE(apply([&](CallTransaction& tx) {
      return tx.suspend(id, claimed[0].call.lease_epoch, delta, {}, {});
    }));
    claimed = claim();
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_EQ(claimed[0].call.poll->state, delta.state) << "revision " << revision + 1;
    if (revision % 50 == 0) {
      most_rows = std::max<long long>(most_rows, number("SELECT COUNT(*) FROM coroutine_deltas"));
    }
  }
  EXPECT_LE(most_rows, 24) << "at most 8 per level, 3 levels below the base";
  auto expected = protocol::assemble_journal(first_base, all_deltas);
  ASSERT_TRUE(expected.is_ok());
  auto stored = store_->coroutine_state(id);
  ASSERT_TRUE(stored.is_ok() && stored->has_value()) << stored.status().message();
  EXPECT_EQ(**stored, *expected);
  EXPECT_EQ(journal_in(**stored).steps_size(), 2000);
  EXPECT_GE(number("SELECT COUNT(*) FROM blobs"), 1) << "the journal, over 64 KiB, is in blobs";
  EXPECT_EQ(number("SELECT COUNT(*) FROM blobs"),
            number("SELECT COUNT(*) FROM coroutine_states WHERE state_blob IS NOT NULL") +
                number("SELECT COUNT(*) FROM coroutine_deltas WHERE delta_blob IS NOT NULL"))
      << "no blob of a former base or merged delta is left";
}

// A coroutine whose stored delta was broken by hand is listed as broken, with
// the reason, beside the others listed as usual; a repair of it works from its
// last good revision (the base), and the SDK's next delta applies to that.
TEST_P(CallStoreTest, ABrokenDeltaRowBreaksOnlyItsOwnCoroutine) {
  std::string good = dispatch(call("parent"));
  std::string broken = dispatch(call("parent"));
  for (const std::string& id : {good, broken}) {
    auto claimed = suspend_with_whole_journal(id);
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_TRUE(apply([&](CallTransaction& tx) {
      return tx.suspend(id, claimed[0].call.lease_epoch,
                        journal_delta(1, 2, clock_.now() + 60 * kMicrosPerSecond), {}, {});
    }));
  }
  const std::string garbage = postgres() ? "'\\x0aff'::bytea" : "X'0aff'";
  ASSERT_EQ(number("UPDATE coroutine_deltas SET delta = " + garbage + " WHERE call_id = '" +
                   broken + "' RETURNING 1"),
            1);

  auto open = store_->open_coroutines({"parent"}, "", "", 10);
  ASSERT_TRUE(open.is_ok()) << open.status().message();
  ASSERT_EQ(open->size(), 2u);
  // In id order: the good one first or second.
  std::size_t at = (*open)[0].id == good ? 0 : 1;
  ASSERT_EQ((*open)[at].id, good);
  ASSERT_EQ((*open)[1 - at].id, broken);
  EXPECT_EQ(journal_in((*open)[at].state).steps_size(), 2) << "the other coroutine, as usual";
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString((*open)[1 - at].state));
  EXPECT_EQ(any.type_url(), protocol::kBrokenJournalType);
  EXPECT_NE(any.value().find("does not parse"), std::string::npos) << any.value();

  CoroutineRepair repair;
  repair.call_id = broken;
  repair.edit = [](int, const std::string& state) -> Result<StateEdit> {
    EXPECT_EQ(journal_in(state).revision(), 1u) << "the last good revision";
    return StateEdit{state, "rewound to step 1 of 1"};
  };
  repair.action = CallAction{broken, 0, "alice@host", "rewind", ""};
  auto repaired = store_->repair_coroutine(repair);
  ASSERT_TRUE(repaired.is_ok()) << repaired.status().message();
  auto actions = store_->call_actions(broken, 100);
  ASSERT_TRUE(actions.is_ok() && actions->latest.size() == 1u);
  EXPECT_NE(actions->latest[0].detail.find("rewound to step 1 of 1 (on revision 1, the last that "
                                           "assembles"),
            std::string::npos)
      << actions->latest[0].detail;
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0].call.id, broken);
  EXPECT_EQ(journal_in(resumed[0].call.poll->state).revision(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(broken, resumed[0].call.lease_epoch, journal_delta(1, 2, clock_.now()), {},
                      {});
  }));
  EXPECT_FALSE(find(broken).error.has_value()) << "the SDK's next delta is taken";
}

// A broken SDK's Polls: a good delta (step 2), then one that adds step 10 to a
// journal of 2 (a gap), then six more; on the next Poll compaction is due to
// merge those eight into one. The last good revision is 2 (the base and the
// first delta); a merged delta, broken, would take revision 2 down with it,
// and a repair would start from the base. The merge is not made.
TEST_P(CallStoreTest, AMergeNeverMovesABrokenCoroutinesLastGoodRevisionBack) {
  std::string id = dispatch(call("parent"));
  auto claimed = suspend_with_whole_journal(id);
  for (std::uint64_t base = 1; base <= 9; ++base) {
    ASSERT_EQ(claimed.size(), 1u) << "at revision " << base;
    std::uint64_t step = base == 1 ? 2 : base == 2 ? 10 : 1;
    ASSERT_TRUE(apply([&](CallTransaction& tx) {
      return tx.suspend(id, claimed[0].call.lease_epoch, journal_delta(base, step, clock_.now()),
                        {}, {});
    }));
    if (base < 9) claimed = claim();
  }
  auto open = store_->open_coroutines({"parent"}, "", "", 10);
  ASSERT_TRUE(open.is_ok() && open->size() == 1u) << open.status().message();
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString((*open)[0].state));
  EXPECT_EQ(any.type_url(), protocol::kBrokenJournalType);

  std::uint64_t last_good = 0;
  CoroutineRepair repair;
  repair.call_id = id;
  repair.edit = [&](int, const std::string& state) -> Result<StateEdit> {
    last_good = journal_in(state).revision();
    return StateEdit{state, "looked"};
  };
  repair.action = CallAction{id, 0, "alice@host", "rewind", ""};
  auto repaired = store_->repair_coroutine(repair);
  ASSERT_TRUE(repaired.is_ok()) << repaired.status().message();
  EXPECT_EQ(last_good, 2u) << "the last good revision moved back";
}

TEST_P(CallStoreTest, MaxWaitWakesACoroutineWithoutResults) {
  std::string parent = dispatch(call("parent"));
  claim();
  PollState poll{1, "s", 1, 5, clock_.now() + kMicrosPerSecond};
  apply([&](CallTransaction& tx) { return tx.suspend(parent, 1, poll, {}, {}); });
  EXPECT_TRUE(claim().empty());
  clock_.advance(kMicrosPerSecond);
  auto woken = claim();
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_TRUE(woken[0].results.empty());
}

TEST_P(CallStoreTest, TailCallReplacesFunctionAndInputKeepingIdentity) {
  std::string id = dispatch(call("first"));
  auto claimed = claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) { return tx.tail_call(id, 1, "second", "in2", {}); }));
  auto next = claim();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].call.id, id);
  EXPECT_EQ(next[0].call.function, "second");
  EXPECT_EQ(next[0].call.input, "in2");
  EXPECT_EQ(next[0].call.started_at, claimed[0].call.started_at);
}

TEST_P(CallStoreTest, RejectedChildrenResumeTheCallerWithTheError) {
  std::string id = dispatch(call("parent"));
  claim();
  PollState poll{1, "s", 1, 5, clock_.now() + kMicrosPerSecond};
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.reject_children(id, 1, poll, CallError{"InvalidArgument", "bad endpoint"}, {});
  }));
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_TRUE(resumed[0].call.poll_error.has_value());
  EXPECT_EQ(resumed[0].call.poll_error->message, "bad endpoint");
  EXPECT_EQ(resumed[0].call.poll->state, "s");
}

TEST_P(CallStoreTest, RestartForgetsTheCoroutineStateAndKeepsWhy) {
  std::string id = dispatch(call("parent"));
  claim();
  PollState poll{1, "s", 1, 5, clock_.now()};
  apply([&](CallTransaction& tx) { return tx.suspend(id, 1, poll, {}, {}); });
  auto woken = claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.restart(id, woken[0].call.lease_epoch, clock_.now(),
                      CallError{"IncompatibleStateError", "step 2 diverged: shout", ""});
  }));
  auto fresh = claim();
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_FALSE(fresh[0].call.poll.has_value());
  EXPECT_EQ(stored_states(), 0);
  // The dashboard shows where the replay diverged from the last error.
  ASSERT_TRUE(fresh[0].call.error.has_value());
  EXPECT_EQ(fresh[0].call.error->type, "IncompatibleStateError");
  EXPECT_EQ(fresh[0].call.error->message, "step 2 diverged: shout");
}

TEST_P(CallStoreTest, TheLatestStateIsKeptWhileSuspendedAndDroppedAtTheEnd) {
  std::string id = dispatch(call("parent"));
  claim();
  PollState poll{6, "first", 1, 5, clock_.now()};
  apply([&](CallTransaction& tx) { return tx.suspend(id, 1, poll, {}, {}); });
  auto woken = claim();
  ASSERT_EQ(woken.size(), 1u);
  EXPECT_EQ(woken[0].call.poll->state, "first");
  poll.state = std::string(100'000, 'x');  // a long journal
  apply(
      [&](CallTransaction& tx) { return tx.suspend(id, woken[0].call.lease_epoch, poll, {}, {}); });
  EXPECT_EQ(stored_states(), 1);
  EXPECT_EQ(find(id).attempts, 0);  // progress: the next failure starts a fresh count
  auto again = claim();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].call.poll->state, poll.state);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(id, again[0].call.lease_epoch, CallEnd{true, 1, std::string("out"), {}}, {});
  }));
  EXPECT_EQ(stored_states(), 0);
}

// An endpoint's error is kept as the opaque bytes it came as, beside its type and
// message: in the call's record (Wait) and in its parent's inbox (PollResult). A retry's
// reason and an error without bytes keep none.
TEST_P(CallStoreTest, AnEndpointsErrorBytesReachTheRecordAndTheParentsInbox) {
  const std::string encoded("\x0a\x0aValueError\x1a\x04\x80\x04\x00.\x4a\x01z", 22);
  std::string parent = dispatch(call("parent"));
  claim();
  PollState poll{1, "s", 2, 10, clock_.now() + 60 * kMicrosPerSecond};
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.suspend(parent, 1, poll, {call("child", 1), call("child", 2)}, {});
  }));
  auto children = claim();
  ASSERT_EQ(children.size(), 2u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.retry(children[0].call.id, 1, clock_.now(), CallError{"TIMEOUT", "slow"});
  }));
  EXPECT_EQ(find(children[0].call.id).error->encoded, "") << "a retry's reason is the server's";
  auto retried = claim();
  ASSERT_EQ(retried.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    CallEnd end{false, 7, {}, CallError{"ValueError", "boom", encoded}};
    return tx.finish(children[0].call.id, retried[0].call.lease_epoch, end, {});
  }));
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[1].call.id, 1, CallEnd{false, 2, {}, CallError{"TIMEOUT", "t"}}, {});
  }));
  CallRecord failed = find(children[0].call.id);
  EXPECT_EQ(failed.error->type, "ValueError");
  EXPECT_EQ(failed.error->message, "boom");
  EXPECT_EQ(failed.error->encoded, encoded);
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_EQ(resumed[0].results.size(), 2u);
  EXPECT_EQ(resumed[0].results[0].error->encoded, encoded);
  EXPECT_EQ(resumed[0].results[0].error->type, "ValueError");
  EXPECT_EQ(resumed[0].results[1].error->encoded, "");
  EXPECT_EQ(resumed[0].results[1].error->message, "t");
}

// A retried attempt's error keeps its bytes (the dashboard shows its Python
// traceback from them); the call's end replaces them, with none when the server
// made the final error.
TEST_P(CallStoreTest, ARetriedAttemptsErrorBytesStayUntilTheCallEnds) {
  const std::string first("\x0a\x08KeyError\x22\x0bTraceback 1", 23);
  std::string id = dispatch(call("f"));
  claim();
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.retry(id, 1, clock_.now(), CallError{"KeyError", "'x'", first});
  }));
  EXPECT_EQ(find(id).error->encoded, first);
  auto again = claim();
  ASSERT_EQ(again.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    CallEnd end{false, 2, {}, CallError{"TIMEOUT", "gave up"}};
    return tx.finish(id, again[0].call.lease_epoch, end, {});
  }));
  CallRecord failed = find(id);
  EXPECT_EQ(failed.error->message, "gave up");
  EXPECT_EQ(failed.error->encoded, "") << "the server's final error has no Error bytes";
}

// A store of schema version 1 kept coroutine states in the runs table; opening
// it moves them, so a call suspended before the upgrade resumes after it.
TEST_P(CallStoreTest, ReleaseGivesTheCallBackAtOnceUnderItsEpochOnly) {
  std::string id = dispatch(call("f"));
  ASSERT_EQ(claim().size(), 1u);
  EXPECT_FALSE(apply([&](CallTransaction& tx) { return tx.release(id, 7); }))
      << "a release under another epoch changes nothing";
  EXPECT_TRUE(claim().empty());
  EXPECT_TRUE(apply([&](CallTransaction& tx) { return tx.release(id, 1); }));
  CallRecord released = find(id);
  EXPECT_EQ(released.phase, CallPhase::kReady);
  EXPECT_EQ(released.lease_owner, "");
  auto again = claim();
  ASSERT_EQ(again.size(), 1u) << "a released call is claimable at once, not after its lease";
  EXPECT_EQ(again[0].call.lease_epoch, 2);
  EXPECT_FALSE(apply([&](CallTransaction& tx) {
    return tx.finish(id, 1, CallEnd{true, 1, std::string("late"), {}}, {});
  })) << "the releasing holder's late reply is fenced off";
}

// Server instances (storage/instance.hpp): each store below is one server's.
class InstanceStoreTest : public CallStoreTest {
 protected:
  // The store of instance `id` on `host`; its process is alive unless declared dead.
  std::unique_ptr<Store> open_as(const std::string& id, const std::string& host = "host-1") {
    StoreOptions options;
    options.instance = id;
    options.identity = InstanceIdentity{host, id[0], 1};
    options.process_alive = [this](int pid, std::int64_t) { return dead_.count(pid) == 0; };
    return open(clock_, options);
  }
  std::vector<ClaimedCall> claim_by(Store& store, const std::string& owner) {
    std::vector<ClaimedCall> claimed;
    Status status = store.calls([&](CallTransaction& tx) -> Status {
      ASSIGN_OR_RETURN(claimed,
                       testing::claim_due(tx, owner, clock_.now() + 60 * kMicrosPerSecond, 100));
      return Status::ok();
    });
    EXPECT_TRUE(status.is_ok()) << status.message();
    return claimed;
  }
  std::set<int> dead_;
};

RATCHET_ON_BOTH_BACKENDS(InstanceStoreTest);

TEST_P(InstanceStoreTest, TheLeasesOfASilentInstanceAreTakenOverAndItsLateWritesRejected) {
  auto a = open_as("a", "host-1");
  auto b = open_as("b", "host-2");
  std::string id = testing::dispatch_call(*a, call("f"));
  auto first = claim_by(*a, "a");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(claim_by(*b, "b").empty()) << "a is alive: its lease holds";
  // a stops beating (paused, partitioned); its lease has a minute left.
  clock_.advance(9 * kMicrosPerSecond);
  auto taken = claim_by(*b, "b");
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].call.id, id);
  EXPECT_EQ(taken[0].call.lease_epoch, first[0].call.lease_epoch + 1);
  bool late = true;
  ASSERT_TRUE(a->calls([&](CallTransaction& tx) -> Status {
                 ASSIGN_OR_RETURN(late, tx.finish(id, first[0].call.lease_epoch,
                                                  CallEnd{true, 1, std::string("old"), {}}, {}));
                 return Status::ok();
               }).is_ok());
  EXPECT_FALSE(late);
  EXPECT_TRUE(claim_by(*b, "b").empty()) << "b's own lease is live";
}

TEST_P(InstanceStoreTest, AnInstanceThatStopsHandsItsLeasesOverAtOnce) {
  auto a = open_as("a");
  auto b = open_as("b");
  testing::dispatch_call(*a, call("f"));
  ASSERT_EQ(claim_by(*a, "a").size(), 1u);
  EXPECT_TRUE(claim_by(*b, "b").empty());
  a.reset();
  EXPECT_EQ(claim_by(*b, "b").size(), 1u);
}

TEST_P(InstanceStoreTest, AnInstanceOfThisHostWhoseProcessIsGoneHasItsLeasesTakenOverAtOnce) {
  auto a = open_as("a");
  auto c = open_as("c", "host-2");
  EXPECT_TRUE(claim_by(*c, "c").empty());  // c beats once
  testing::dispatch_call(*a, call("f"));
  testing::dispatch_call(*a, call("g"));
  ASSERT_EQ(claim_by(*a, "a").size(), 2u);
  dead_.insert('a');  // killed: its store stays open, nothing marks it gone
  dead_.insert('c');  // another host's pid means nothing here
  auto b = open_as("b");
  auto taken = claim_by(*b, "b");
  EXPECT_EQ(taken.size(), 2u) << "a restarted server runs its predecessor's calls at once";
  EXPECT_EQ(number("SELECT heartbeat_at FROM instances WHERE id = 'a'"), 0) << "marked gone";
  EXPECT_GT(number("SELECT heartbeat_at FROM instances WHERE id = 'c'"), 0)
      << "another host's instance is judged by its heartbeat only";
}

TEST(CallStoreMigration, AVersionOneStoreKeepsItsSuspendedCoroutines) {
  char pattern[] = "/tmp/ratchet-migrate-XXXXXX";
  std::string dir = mkdtemp(pattern);
  std::string path = dir + "/ratchet.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sqlite::migrations().steps[0].sql, nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO runs (id, kind, status, started_at, updated_at, function, "
                         "endpoint, input, root_id, phase, ready_at, state_member, "
                         "coroutine_state, poll_min, poll_max, poll_deadline) VALUES ('c1', "
                         "'call', 'RUNNING', 1, 1, 'f', 'http://127.0.0.1:1', '', 'c1', "
                         "'READY', 1, 6, 'journal bytes', 1, 5, 1); PRAGMA user_version=1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  FakeClock clock;
  auto store = open_sqlite_store(path, clock, {});
  ASSERT_TRUE(store.is_ok()) << store.status().message();
  std::vector<ClaimedCall> claimed;
  ASSERT_TRUE((*store)
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(
                        claimed, testing::claim_due(tx, "a", clock.now() + kMicrosPerSecond, 10));
                    return Status::ok();
                  })
                  .is_ok());
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_TRUE(claimed[0].call.poll.has_value());
  EXPECT_EQ(claimed[0].call.poll->state, "journal bytes");
  // Versions 1 and 2 had no error bytes: such a call's error has none.
  ASSERT_TRUE((*store)
                  ->calls([&](CallTransaction& tx) -> Status {
                    CallEnd end{false, 7, {}, CallError{"E", "m"}};
                    return tx.finish("c1", claimed[0].call.lease_epoch, end, {}).status();
                  })
                  .is_ok());
  auto found = (*store)->find_call("c1");
  ASSERT_TRUE(found.is_ok() && *found);
  EXPECT_EQ((*found)->error->encoded, "");
  store->reset();
  std::filesystem::remove_all(dir);
}

// Held calls, the open-coroutine listing and operator repairs (storage/repair.hpp).
class RepairStoreTest : public CallStoreTest {
 protected:
  // A coroutine `function` suspended with state "journal-1" on children of
  // correlation ids 1 and 2, both claimed (running); its id, the children's.
  std::pair<std::string, std::vector<std::string>> suspended(
      const std::string& function, const std::string& endpoint = "http://127.0.0.1:1") {
    NewCall root = call(function);
    root.endpoint = endpoint;
    std::string id = testing::dispatch_call(*store_, root);
    EXPECT_EQ(claim().size(), 1u);
    PollState poll{6, "journal-1", 2, 2, clock_.now() + 60 * kMicrosPerSecond};
    EXPECT_TRUE(apply([&](CallTransaction& tx) {
      return tx.suspend(id, 1, poll, {call("child", 1), call("child", 2)}, {});
    }));
    std::vector<std::string> children;
    for (auto& child : claim()) children.push_back(child.call.id);
    return {id, children};
  }

  CoroutineRepair repair_of(const std::string& id, std::string new_state) {
    CoroutineRepair repair;
    repair.call_id = id;
    repair.edit = [new_state](int member, const std::string& state) -> Result<StateEdit> {
      EXPECT_EQ(member, 6);
      return StateEdit{new_state, "from " + state + " to " + new_state};
    };
    repair.action = CallAction{id, 0, "alice@host", "rewind", ""};
    return repair;
  }
};

RATCHET_ON_BOTH_BACKENDS(RepairStoreTest);

TEST_P(RepairStoreTest, AHeldCallKeepsItsStateAndIsNeverClaimed) {
  auto [id, children] = suspended("order");
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[0], 1, CallEnd{true, 1, std::string("r1"), {}}, {});
  }));
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[1], 1, CallEnd{true, 1, std::string("r2"), {}}, {});
  }));
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.hold(id, resumed[0].call.lease_epoch,
                   CallError{"IncompatibleStateError", "step 2 diverged"});
  }));
  CallRecord held = find(id);
  EXPECT_EQ(held.phase, CallPhase::kHeld);
  EXPECT_EQ(held.status, RunStatus::kRunning);
  ASSERT_TRUE(held.error.has_value());
  EXPECT_EQ(held.error->message, "step 2 diverged");
  ASSERT_TRUE(held.poll.has_value());
  clock_.advance(3600 * kMicrosPerSecond);  // past every deadline and lease
  EXPECT_TRUE(claim().empty()) << "a held call waits for an operator";
  auto open = store_->open_coroutines({"order"}, "", "", 10);
  ASSERT_TRUE(open.is_ok()) << open.status().message();
  ASSERT_EQ(open->size(), 1u);
  EXPECT_EQ((*open)[0].phase, CallPhase::kHeld);
  EXPECT_EQ((*open)[0].state, "journal-1");

  // The repair resumes it with the new state and the results it had not consumed.
  auto repaired = store_->repair_coroutine(repair_of(id, "journal-2"));
  ASSERT_TRUE(repaired.is_ok()) << repaired.status().message();
  EXPECT_EQ(repaired->phase, CallPhase::kReady);
  EXPECT_FALSE(repaired->error.has_value());
  auto again = claim();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].call.poll->state, "journal-2");
  EXPECT_EQ(again[0].results.size(), 2u) << "the held attempt's results are delivered again";
}

TEST_P(RepairStoreTest, ARepairAbandonsTheChildrenOfItsStepsAndIsRecorded) {
  auto [id, children] = suspended("order");
  CoroutineRepair repair = repair_of(id, "journal-2");
  repair.abandon_from = 2;
  repair.abandon_to = 2;
  clock_.advance(5);
  auto repaired = store_->repair_coroutine(repair);
  ASSERT_TRUE(repaired.is_ok()) << repaired.status().message();
  // Child 2 finishing later never reaches the call; child 1 does.
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[1], 1, CallEnd{true, 1, std::string("late"), {}}, {});
  }));
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.finish(children[0], 1, CallEnd{true, 1, std::string("r1"), {}}, {});
  }));
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_EQ(resumed[0].results.size(), 1u);
  EXPECT_EQ(resumed[0].results[0].correlation_id, 1u);

  auto actions = store_->call_actions(id, 100);
  ASSERT_TRUE(actions.is_ok()) << actions.status().message();
  ASSERT_EQ(actions->latest.size(), 1u);
  EXPECT_EQ(actions->total, 1);
  EXPECT_EQ(actions->latest[0].actor, "alice@host");
  EXPECT_EQ(actions->latest[0].action, "rewind");
  EXPECT_EQ(actions->latest[0].detail, "from journal-1 to journal-2");
  EXPECT_EQ(actions->latest[0].at, clock_.now());
}

TEST_P(RepairStoreTest, ARunningOrFinishedCallIsNotRepaired) {
  auto [id, children] = suspended("order");
  // A child is no coroutine: it has no state.
  auto child = store_->repair_coroutine(repair_of(children[0], "x"));
  EXPECT_EQ(child.status().code(), Code::kFailedPrecondition) << child.status().message();
  clock_.advance(61 * kMicrosPerSecond);  // the poll's deadline: it runs again
  auto running = claim();
  ASSERT_FALSE(running.empty());
  auto leased = store_->repair_coroutine(repair_of(id, "x"));
  EXPECT_EQ(leased.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(leased.status().message().find("LEASED"), std::string::npos);
  auto unknown = store_->repair_coroutine(repair_of("no-such-call", "x"));
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  // A refused edit writes nothing, not even the action.
  EXPECT_TRUE(store_->call_actions(id, 100)->latest.empty());
}

TEST_P(RepairStoreTest, AnEditThatFailsChangesNothing) {
  auto [id, children] = suspended("order");
  CoroutineRepair repair = repair_of(id, "x");
  repair.edit = [](int, const std::string&) -> Result<StateEdit> {
    return invalid_argument("--to-step must be from 1 to 3");
  };
  auto refused = store_->repair_coroutine(repair);
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(find(id).phase, CallPhase::kWaiting);
  EXPECT_TRUE(store_->call_actions(id, 100)->latest.empty());
}

// The ids of `open`, in their order.
std::vector<std::string> ids_of(const Result<std::vector<OpenCoroutine>>& open) {
  std::vector<std::string> ids;
  if (open.is_ok()) {
    for (const auto& coroutine : *open) ids.push_back(coroutine.id);
  }
  return ids;
}

TEST_P(RepairStoreTest, OpenCoroutinesAreThoseOfTheGivenFunctionsInDispatchIdOrder) {
  std::vector<std::string> order = {suspended("order").first, suspended("order").first};
  suspended("refund");
  std::sort(order.begin(), order.end());
  auto open = store_->open_coroutines({"order", "ship"}, "", "", 10);
  ASSERT_TRUE(open.is_ok()) << open.status().message();
  EXPECT_EQ(ids_of(open), order);
  EXPECT_EQ(ids_of(store_->open_coroutines({"order"}, "", "", 1)),
            std::vector<std::string>{order[0]});
}

// ListOpen's pages: three open coroutines (and another function's between
// them), started in the reverse of their ids' order so that a listing oldest
// first would differ; pages of 1, each after the last id of the one before,
// list each once, in id order, and then none.
TEST_P(RepairStoreTest, PagingByAfterListsEachOpenCoroutineOnceInDispatchIdOrder) {
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    order.push_back(suspended("order").first);
    suspended("refund");
  }
  std::sort(order.begin(), order.end());
  for (std::size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(number("UPDATE runs SET started_at = " + std::to_string(100 - i) + " WHERE id = '" +
                     order[i] + "' RETURNING 1"),
              1);
  }
  std::vector<std::string> listed;
  std::string after;
  for (int page = 0; page < 4; ++page) {
    auto open = store_->open_coroutines({"order"}, "", after, 1);
    ASSERT_TRUE(open.is_ok()) << open.status().message();
    if (open->empty()) break;
    ASSERT_EQ(open->size(), 1u);
    after = open->back().id;
    listed.push_back(after);
  }
  EXPECT_EQ(listed, order);
  EXPECT_TRUE(store_->open_coroutines({"order"}, "", order.back(), 1)->empty());
  EXPECT_EQ(ids_of(store_->open_coroutines({"order"}, "", order[0], 10)),
            (std::vector<std::string>{order[1], order[2]}));
}

// A held call waits for its operator: its expiration does not run out while
// it is held, and the time it had left when held counts again from its release.
TEST_P(RepairStoreTest, AHeldCallDoesNotExpireAndItsTimeLeftCountsAgainFromItsRelease) {
  NewCall root = call("order");
  root.expires_at = clock_.now() + 100 * kMicrosPerSecond;
  std::string id = testing::dispatch_call(*store_, root);
  ASSERT_EQ(claim().size(), 1u);
  PollState poll{6, "journal-1", 1, 1, clock_.now() + kMicrosPerSecond};
  ASSERT_TRUE(apply([&](CallTransaction& tx) { return tx.suspend(id, 1, poll, {}, {}); }));
  clock_.advance(kMicrosPerSecond);
  auto resumed = claim();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_TRUE(apply([&](CallTransaction& tx) {
    return tx.hold(id, resumed[0].call.lease_epoch,
                   CallError{"IncompatibleStateError", "step 1 diverged"});
  }));  // 99 s left
  auto expire = [&] {
    std::vector<std::string> expired;
    std::optional<Micros> next;
    EXPECT_TRUE(store_
                    ->calls([&](CallTransaction& tx) -> Status {
                      CallEnd timeout{false, 2, {}, CallError{"TIMEOUT", "the call expired"}};
                      ASSIGN_OR_RETURN(expired, tx.expire(timeout, 10));
                      ASSIGN_OR_RETURN(next, tx.next_expiry());
                      return Status::ok();
                    })
                    .is_ok());
    return std::make_pair(expired, next);
  };
  clock_.advance(3600 * kMicrosPerSecond);
  auto [while_held, next_while_held] = expire();
  EXPECT_TRUE(while_held.empty()) << "a held call expired";
  EXPECT_FALSE(next_while_held.has_value()) << "the scheduler would wake for a held call";
  EXPECT_EQ(find(id).phase, CallPhase::kHeld);

  ASSERT_TRUE(store_->repair_coroutine(repair_of(id, "journal-2")).is_ok());
  EXPECT_EQ(find(id).expires_at, clock_.now() + 99 * kMicrosPerSecond);
  clock_.advance(98 * kMicrosPerSecond);
  EXPECT_TRUE(expire().first.empty());
  clock_.advance(kMicrosPerSecond);
  EXPECT_EQ(expire().first, std::vector<std::string>{id}) << "released, it expires again";
}

// A `--ratchet-check` of a build that no longer has a function: the coroutines its
// endpoint serves are listed whatever their function, those elsewhere are not.
TEST_P(RepairStoreTest, OpenCoroutinesIncludeEveryFunctionAtTheGivenEndpoint) {
  std::vector<std::string> here = {suspended("order").first, suspended("refund").first};
  suspended("refund", "http://127.0.0.1:2");
  std::sort(here.begin(), here.end());
  auto open = store_->open_coroutines({}, "http://127.0.0.1:1", "", 10);
  ASSERT_TRUE(open.is_ok()) << open.status().message();
  EXPECT_EQ(ids_of(open), here);
  EXPECT_TRUE(store_->open_coroutines({}, "http://127.0.0.1:3", "", 10)->empty());
  EXPECT_TRUE(store_->open_coroutines({}, "", "", 10)->empty());
}

}  // namespace
}  // namespace ratchet
