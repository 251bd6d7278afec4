// Held calls, the open-coroutine listing and operator repairs
// (storage/repair.hpp), on each backend.
#include <gtest/gtest.h>

#include "storage/store_test_support.hpp"
#include "storage/testing.hpp"

namespace ratchet {
namespace {

class RepairStoreTest : public BackendTest {
 protected:
  NewCall call(const std::string& function, std::uint64_t correlation = 0) {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = "input";
    c.correlation_id = correlation;
    return c;
  }

  std::vector<ClaimedCall> claim() {
    std::vector<ClaimedCall> claimed;
    EXPECT_TRUE(store_
                    ->calls([&](CallTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(claimed,
                                       tx.claim("server-a", clock_.now() + kMicrosPerSecond, 100));
                      return Status::ok();
                    })
                    .is_ok());
    return claimed;
  }

  template <typename F>
  bool apply(F&& f) {
    bool applied = false;
    EXPECT_TRUE(store_
                    ->calls([&](CallTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(applied, f(tx));
                      return Status::ok();
                    })
                    .is_ok());
    return applied;
  }

  // A coroutine `function` suspended with state "journal-1" on children of
  // correlation ids 1 and 2, both claimed (running); its id, the children's.
  std::pair<std::string, std::vector<std::string>> suspended(const std::string& function) {
    std::string id = testing::dispatch_call(*store_, call(function));
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

  CallRecord find(const std::string& id) { return **store_->find_call(id); }
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
  auto open = store_->open_coroutines({"order"}, 10);
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

  auto actions = store_->call_actions(id);
  ASSERT_TRUE(actions.is_ok()) << actions.status().message();
  ASSERT_EQ(actions->size(), 1u);
  EXPECT_EQ((*actions)[0].actor, "alice@host");
  EXPECT_EQ((*actions)[0].action, "rewind");
  EXPECT_EQ((*actions)[0].detail, "from journal-1 to journal-2");
  EXPECT_EQ((*actions)[0].at, clock_.now());
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
  EXPECT_TRUE(store_->call_actions(id)->empty());
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
  EXPECT_TRUE(store_->call_actions(id)->empty());
}

TEST_P(RepairStoreTest, OpenCoroutinesAreThoseOfTheGivenFunctionsOldestFirst) {
  auto first = suspended("order").first;
  clock_.advance(1);
  auto second = suspended("order").first;
  clock_.advance(1);
  suspended("refund");
  auto open = store_->open_coroutines({"order", "ship"}, 10);
  ASSERT_TRUE(open.is_ok()) << open.status().message();
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].id, first);
  EXPECT_EQ((*open)[1].id, second);
  EXPECT_EQ(store_->open_coroutines({"order"}, 1)->size(), 1u);
}

}  // namespace
}  // namespace ratchet
