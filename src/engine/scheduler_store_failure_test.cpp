// The scheduler when its store fails (a full disk): capped exponential
// backoff of the turns, nothing unrecorded sent again, dispatches refused,
// one log line per change of state, recovery by itself. In fake time, with a
// store whose commits fail on demand (testing::ControlledStore).
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "engine/scheduler.hpp"
#include "engine/test_support.hpp"

namespace ratchet::engine {
namespace {

using namespace testing;

// Captures the default logger's lines while it lives.
class CapturedLog {
 public:
  CapturedLog()
      : previous_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink_));
  }
  ~CapturedLog() {
    spdlog::set_default_logger(previous_);
    spdlog::drop("captured");
  }
  std::vector<std::string> lines() { return sink_->last_formatted(); }
  int count(const std::string& needle) {
    int n = 0;
    for (const auto& line : lines()) n += line.find(needle) != std::string::npos;
    return n;
  }
  std::string text() {
    std::string all;
    for (const auto& line : lines()) all += line;
    return all;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

class SchedulerStoreFailureTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    options_.store_retry_initial = 50 * kMicrosPerMilli;
    options_.store_retry_max = 2 * kMicrosPerSecond;
    real_ = open();
    store_ = std::make_unique<ControlledStore>(*real_, clock_);
  }

  // Drives fake time until the store has seen `n` more transactions.
  bool drive_transactions(const FakeEndpoint& endpoint, std::size_t n) {
    std::size_t target = store_->transactions().size() + n;
    return drive(clock_, {&endpoint}, 1, [&] { return store_->transactions().size() >= target; });
  }

  // Dispatches as a client does while the store may still fail: again after
  // each refusal, once the scheduler has tried the store again.
  std::vector<std::string> dispatch_until_accepted(Scheduler& scheduler, const NewCall& c,
                                                   const FakeEndpoint& endpoint) {
    for (int i = 0; i < 100; ++i) {
      auto ids = try_dispatch(scheduler, {c});
      if (ids.is_ok()) return *ids;
      EXPECT_EQ(ids.status().code(), Code::kUnavailable) << ids.status().message();
      if (!drive_transactions(endpoint, 1)) break;
    }
    ADD_FAILURE() << "the dispatch was never accepted";
    return {""};
  }

  std::unique_ptr<Store> real_;
  std::unique_ptr<ControlledStore> store_;
};

TEST_F(SchedulerStoreFailureTest, FailedTurnsAreRetriedWithCappedExponentialBackoff) {
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  await(scheduler, dispatch(scheduler, {call("f", 0)})[0], {&endpoint});

  store_->failing = true;
  auto refused = try_dispatch(scheduler, {call("f", 1)});  // this turn fails
  ASSERT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.status().code(), Code::kUnavailable) << refused.status().message();
  std::size_t first = store_->transactions().size() - 1;
  ASSERT_TRUE(drive_transactions(endpoint, 9));
  auto times = store_->transactions();
  std::vector<Micros> gaps;
  for (std::size_t i = first + 1; i < first + 10; ++i) gaps.push_back(times[i] - times[i - 1]);
  std::vector<Micros> expected = {50, 100, 200, 400, 800, 1600, 2000, 2000, 2000};
  for (auto& ms : expected) ms *= kMicrosPerMilli;
  EXPECT_EQ(gaps, expected) << "the turns back off exponentially to the cap, and no faster";

  store_->failing = false;
  auto again = dispatch_until_accepted(scheduler, call("f", 2), endpoint);
  EXPECT_EQ(await(scheduler, again[0], {&endpoint}).status, RunStatus::kSucceeded)
      << "the scheduler recovers by itself";
}

TEST_F(SchedulerStoreFailureTest, DispatchesAreRefusedAtOnceWhileTheStoreFails) {
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  store_->failing = true;
  ASSERT_FALSE(try_dispatch(scheduler, {call("f", 0)}).is_ok());
  std::size_t transactions = store_->transactions().size();
  for (int i = 0; i < 100; ++i) {
    auto refused = try_dispatch(scheduler, {call("f", i)});
    ASSERT_FALSE(refused.is_ok());
    EXPECT_EQ(refused.status().code(), Code::kUnavailable) << refused.status().message();
    EXPECT_NE(refused.status().message().find("nothing was recorded"), std::string::npos)
        << refused.status().message();
  }
  EXPECT_EQ(store_->transactions().size(), transactions)
      << "refused without waiting for a turn, and without waking one";
}

TEST_F(SchedulerStoreFailureTest, NothingClaimedWhileTheStoreFailsIsSentAgainUntilRecorded) {
  // Every call fails twice, then succeeds: after its first attempt it is READY,
  // due again after its backoff, when the store is failing.
  std::mutex mutex;
  std::map<std::string, int> runs;
  FakeEndpoint endpoint(clock_, answer([&](const pb::RunRequest& r) {
                          std::lock_guard lock(mutex);
                          return ++runs[r.dispatch_id()] <= 2
                                     ? fail_with(pb::STATUS_TEMPORARY_ERROR, "again")
                                     : exit_with(7);
                        }));
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  auto ids = dispatch(scheduler, {call("f", 0), call("f", 1), call("f", 2)});
  ASSERT_TRUE(endpoint.wait_for_requests(3));
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1, [&] {
    for (const auto& id : ids) {
      if (find(id).phase != CallPhase::kReady) return false;
    }
    return true;
  }));
  store_->failing = true;
  // A minute of failed turns.
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1, [&] {
    return clock_.now() >= store_->transactions().front() + 60 * kMicrosPerSecond;
  }));
  EXPECT_GT(store_->transactions().size(), 30u);
  for (const auto& id : ids) {
    // The first attempt, and at most one unrecorded send by the turn that
    // found the store failing.
    EXPECT_LE(endpoint.received_for(id).size(), 2u) << "call " << id << " was sent in a loop";
  }
  store_->failing = false;
  for (const auto& id : ids) {
    auto done = await(scheduler, id, {&endpoint});
    EXPECT_EQ(done.status, RunStatus::kSucceeded);
    EXPECT_EQ(*done.output, any_int(7));
  }
}

TEST_F(SchedulerStoreFailureTest, RepliesArrivingWhileTheStoreFailsAreRecordedOnceItWorks) {
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest&) { return std::nullopt; });
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  auto ids = dispatch(scheduler, {call("f", 0), call("f", 1)});
  ASSERT_TRUE(endpoint.wait_for_requests(2));
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1, [&] { return endpoint.held() == 2; }));
  store_->failing = true;
  endpoint.answer_held(
      [](const pb::RunRequest& r) { return std::optional(exit_with(int_of(r.input()))); });
  ASSERT_TRUE(drive_transactions(endpoint, 10));
  EXPECT_EQ(find(ids[0]).phase, CallPhase::kLeased) << "nothing recorded while the store fails";
  store_->failing = false;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto done = await(scheduler, ids[i], {&endpoint});
    EXPECT_EQ(done.status, RunStatus::kSucceeded);
    EXPECT_EQ(*done.output, any_int(static_cast<int>(i)));
    EXPECT_EQ(done.attempts, 1)
        << "the reply kept in memory was recorded; the call did not run again";
  }
  EXPECT_EQ(endpoint.received().size(), 2u);
}

// A send by a turn whose commit failed was never recorded: its reply is
// ignored, but it frees room at its endpoint all the same, and must wake the
// loop, as a recorded reply does. Here the call itself waits for that room (a
// limit of 1): no timer would send it before the safety poll.
TEST_F(SchedulerStoreFailureTest, TheIgnoredReplyOfAnUnrecordedSendWakesTheLoopForItsRoom) {
  FakeEndpoint endpoint(clock_, [](const pb::RunRequest&) { return std::nullopt; });
  options_.aimd.initial = 1;
  options_.aimd.max = 1;
  std::string id;
  ASSERT_TRUE(real_
                  ->calls([&](CallTransaction& tx) -> Status {
                    ASSIGN_OR_RETURN(id, tx.dispatch(call("f", 0)));
                    return Status::ok();
                  })
                  .is_ok());
  // The first turn claims the call and sends it before its commit, which fails.
  store_->failing = true;
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  ASSERT_TRUE(endpoint.wait_for_requests(1));
  ASSERT_TRUE(asleep(endpoint));
  // The store works again: the next turn commits, and claims nothing, as the
  // unrecorded send fills the endpoint until its reply comes.
  store_->failing = false;
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1, [&] { return !scheduler.figures().store_failing; }));
  ASSERT_TRUE(asleep(endpoint));
  ASSERT_EQ(endpoint.received().size(), 1u);
  EXPECT_EQ(find(id).phase, CallPhase::kReady) << "the failed turn's claim is not recorded";

  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  ASSERT_TRUE(asleep(endpoint));
  auto received = endpoint.received();
  ASSERT_EQ(received.size(), 2u) << "the ignored reply freed the room and the loop slept on";
  EXPECT_EQ(received[1].dispatch_id, id);
  EXPECT_EQ(received[1].at, clock_.now()) << "it waited for a timer";
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(2)); });
  auto done = await(scheduler, id, {&endpoint});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(2)) << "the ignored reply was not recorded";
}

TEST_F(SchedulerStoreFailureTest, TheLogSaysOnceThatTheStoreFailsAndOnceThatItWorksAgain) {
  CapturedLog log;
  FakeEndpoint endpoint(clock_, answer([](const pb::RunRequest&) { return exit_with(1); }));
  Scheduler scheduler(*store_, clock_, endpoint, options_);
  scheduler.start();
  store_->failing = true;
  ASSERT_FALSE(try_dispatch(scheduler, {call("f", 0)}).is_ok());
  ASSERT_TRUE(drive_transactions(endpoint, 20));
  store_->failing = false;
  auto ids = dispatch_until_accepted(scheduler, call("f", 1), endpoint);
  await(scheduler, ids[0], {&endpoint});
  EXPECT_EQ(log.count("the store fails: the disk of the store is full (test)"), 1) << log.text();
  EXPECT_EQ(log.count("the store works again after"), 1) << log.text();
  EXPECT_EQ(log.lines().size(), 2u) << log.text();
}

}  // namespace
}  // namespace ratchet::engine
