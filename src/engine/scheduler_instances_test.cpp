// Server instances in fake time (their records and heartbeats are the
// store's: storage/instance.hpp): leases that expire, the takeover of an
// instance that is gone, and drain() (a deploy) giving the leases back.
#include <gtest/gtest.h>

#include <future>
#include <set>

#include "engine/scheduler.hpp"
#include "engine/test_support.hpp"

namespace ratchet::engine {
namespace {

using namespace testing;

class SchedulerInstancesTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    options_.lease = 15 * 60 * kMicrosPerSecond;
  }

  // The store of server instance `id`, on `host`, whose process the test
  // declares alive or not (its pid is the id's first letter).
  std::unique_ptr<Store> open_as(const std::string& id, const std::string& host = "host-1") {
    StoreOptions options;
    options.instance = id;
    options.identity = InstanceIdentity{host, id[0], 1};
    options.process_alive = [this](int pid, std::int64_t) {
      std::lock_guard lock(mutex_);
      return dead_.count(pid) == 0;
    };
    return open(options);
  }
  // The scheduler of instance `id`: its leases name the instance its store records.
  SchedulerOptions as(const std::string& id) const {
    SchedulerOptions options = options_;
    options.owner = id;
    return options;
  }
  void declare_dead(const std::string& id) {
    std::lock_guard lock(mutex_);
    dead_.insert(id[0]);
  }

  std::mutex mutex_;
  std::set<int> dead_;
};

FakeEndpoint::Handler hold() {
  return [](const pb::RunRequest&) { return std::nullopt; };
}

TEST_F(SchedulerInstancesTest, AnExpiredLeaseIsClaimedByAnotherServer) {
  auto store_a = open();
  auto store_b = open();
  options_.lease = 60 * kMicrosPerSecond;
  // Stores opened without an instance record none: the lease alone decides.
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  SchedulerOptions busy = options_;
  busy.max_in_flight = 1;  // a's one slot stays taken: it cannot claim the call again itself
  Scheduler a(*store_a, clock_, hanging, busy);
  a.start();
  Micros dispatched = clock_.now();
  auto id = dispatch(a, {call("slow", 0)})[0];
  ASSERT_TRUE(hanging.wait_for_requests(1));
  Scheduler b(*store_b, clock_, healthy, as("b"));
  b.start();
  auto done = await(b, id, {&hanging, &healthy}, 2);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(done.attempts, 2);
  ASSERT_EQ(healthy.received().size(), 1u);
  EXPECT_EQ(healthy.received()[0].at - dispatched, 60 * kMicrosPerSecond)
      << "taken when the lease expired, not before";
}

TEST_F(SchedulerInstancesTest, ARestartTakesOverTheCallsOfItsDeadPredecessorAtOnce) {
  auto store_a = open_as("a");  // kept open: a crash marks nothing gone
  FakeEndpoint hanging(clock_, hold());
  std::string id;
  {
    Scheduler a(*store_a, clock_, hanging, as("a"));
    a.start();
    id = dispatch(a, {call("slow", 0)})[0];
    ASSERT_TRUE(hanging.wait_for_requests(1));
    a.stop();  // as if killed: no drain, the lease and the heartbeat stay
  }
  ASSERT_EQ(find(id).phase, CallPhase::kLeased);
  declare_dead("a");
  auto store_b = open_as("b");
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  Scheduler b(*store_b, clock_, healthy, as("b"));
  Micros restarted = clock_.now();
  b.start();
  auto done = await(b, id, {&healthy});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(7));
  ASSERT_EQ(healthy.received().size(), 1u);
  EXPECT_EQ(healthy.received()[0].at, restarted)
      << "run again at once, not after the heartbeat timeout or the 15-minute lease";
}

TEST_F(SchedulerInstancesTest, ALiveServerTakesOverAPeerWhoseProcessDiedWithinAHeartbeat) {
  auto store_a = open_as("a");
  auto store_b = open_as("b");
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  Scheduler b(*store_b, clock_, healthy, as("b"));
  b.start();
  std::string id;
  {
    Scheduler a(*store_a, clock_, hanging, as("a"));
    a.start();
    id = dispatch(a, {call("slow", 0)})[0];
    ASSERT_TRUE(hanging.wait_for_requests(1));
    a.stop();
  }
  Micros died = clock_.now();
  declare_dead("a");
  auto done = await(b, id, {&healthy, &hanging});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  ASSERT_EQ(healthy.received().size(), 1u);
  StoreOptions defaults;
  EXPECT_LE(healthy.received()[0].at - died, defaults.instance_heartbeat)
      << "taken over at b's next heartbeat, not after the timeout or the lease";
}

TEST_F(SchedulerInstancesTest, ALivePeerKeepsItsLeases) {
  auto store_a = open_as("a");
  auto store_b = open_as("b");
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  Scheduler a(*store_a, clock_, hanging, as("a"));
  a.start();
  auto id = dispatch(a, {call("slow", 0)})[0];
  ASSERT_TRUE(hanging.wait_for_requests(1));
  Scheduler b(*store_b, clock_, healthy, as("b"));
  b.start();
  Micros start = clock_.now();
  ASSERT_TRUE(drive(clock_, {&hanging, &healthy}, 2,
                    [&] { return clock_.now() >= start + 60 * kMicrosPerSecond; }));
  EXPECT_TRUE(healthy.received().empty()) << "b took a call whose holder is alive";
  EXPECT_EQ(find(id).lease_owner, "a");
}

TEST_F(SchedulerInstancesTest, AnotherHostsInstanceIsGoneOnlyOnceItsHeartbeatIsTooOld) {
  auto store_a = open_as("a", "host-2");
  auto store_b = open_as("b");
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  std::string id;
  Micros last_beat = 0;
  {
    Scheduler a(*store_a, clock_, hanging, as("a"));
    a.start();
    id = dispatch(a, {call("slow", 0)})[0];
    ASSERT_TRUE(hanging.wait_for_requests(1));
    last_beat = clock_.now();
    a.stop();
  }
  declare_dead("a");  // the probe must not be asked about another host's pid
  Scheduler b(*store_b, clock_, healthy, as("b"));
  b.start();
  auto done = await(b, id, {&healthy, &hanging});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  ASSERT_EQ(healthy.received().size(), 1u);
  StoreOptions defaults;
  Micros taken = healthy.received()[0].at - last_beat;
  EXPECT_GE(taken, defaults.instance_timeout);
  EXPECT_LE(taken, defaults.instance_timeout + options_.safety_poll);
}

TEST_F(SchedulerInstancesTest, DrainRecordsRepliesWithinTheGraceAndReleasesTheRest) {
  auto store_a = open_as("a");
  FakeEndpoint endpoint(clock_, hold());
  Scheduler a(*store_a, clock_, endpoint, as("a"));
  a.start();
  auto ids = dispatch(a, {call("answered", 1), call("slow", 2)});
  ASSERT_TRUE(endpoint.wait_for_requests(2));
  Micros grace = 10 * kMicrosPerSecond;
  Micros draining = clock_.now();
  a.begin_drain(grace);
  auto drained = std::async(std::launch::async, [&] { a.await_drained(); });
  // A reply within the grace period is recorded...
  endpoint.answer_held([](const pb::RunRequest& r) -> std::optional<pb::RunResponse> {
    if (r.function() == "answered") return exit_with(1);
    return std::nullopt;
  });
  ASSERT_TRUE(
      drive(clock_, {&endpoint}, 1, [&] { return find(ids[1]).phase == CallPhase::kReady; }));
  EXPECT_EQ(clock_.now() - draining, grace) << "the drain waits for the slow call until the grace";
  ASSERT_EQ(drained.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(find(ids[0]).status, RunStatus::kSucceeded);
  // ...and the lease of the call still in flight is given back, READY at once.
  CallRecord released = find(ids[1]);
  EXPECT_EQ(released.phase, CallPhase::kReady);
  EXPECT_EQ(released.lease_owner, "");
  EXPECT_LE(released.ready_at, clock_.now());
  a.stop();

  auto store_b = open_as("b");
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(2); }));
  Scheduler b(*store_b, clock_, healthy, as("b"));
  Micros started = clock_.now();
  b.start();
  auto done = await(b, ids[1], {&healthy});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(healthy.received().at(0).at, started) << "the next server runs it at once";
  EXPECT_EQ(endpoint.received_for(ids[0]).size(), 1u);
}

TEST_F(SchedulerInstancesTest, DrainEndsAsSoonAsTheLastReplyIsRecorded) {
  auto store_a = open_as("a");
  FakeEndpoint endpoint(clock_, hold());
  Scheduler a(*store_a, clock_, endpoint, as("a"));
  a.start();
  auto ids = dispatch(a, {call("f", 1)});
  ASSERT_TRUE(endpoint.wait_for_requests(1));
  Micros draining = clock_.now();
  a.begin_drain(10 * kMicrosPerSecond);
  auto drained = std::async(std::launch::async, [&] { a.await_drained(); });
  endpoint.answer_held([](const pb::RunRequest&) { return std::optional(exit_with(1)); });
  ASSERT_EQ(drained.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "nothing in flight: the drain needs no time to pass";
  EXPECT_EQ(clock_.now(), draining);
  EXPECT_EQ(find(ids[0]).status, RunStatus::kSucceeded);
  auto refused_claims = dispatch(a, {call("after", 1)});
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1,
                    [&] { return clock_.now() >= draining + 5 * kMicrosPerSecond; }));
  EXPECT_EQ(endpoint.received().size(), 1u) << "a drained scheduler claims nothing";
  EXPECT_EQ(find(refused_claims[0]).phase, CallPhase::kReady) << "but records dispatches";
}

// A call claimed with its own Dispatch waits in the AnswerGate until the
// answer is out: it is in flight for a drain, which gives its lease back at the
// end of the grace, and once given back it is never sent by this server.
TEST_F(SchedulerInstancesTest, DrainGivesBackACallStillHeldForItsDispatchsAnswer) {
  auto store_a = open_as("a");
  FakeEndpoint endpoint(clock_, hold());
  Scheduler a(*store_a, clock_, endpoint, as("a"));
  a.start();
  auto [ids, release] = dispatch_unanswered(a, {call("held", 1)});  // not out yet
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(find(ids[0]).phase, CallPhase::kLeased) << "claimed with its dispatch";
  Micros grace = 10 * kMicrosPerSecond;
  Micros draining = clock_.now();
  a.begin_drain(grace);
  auto drained = std::async(std::launch::async, [&] { a.await_drained(); });
  ASSERT_TRUE(
      drive(clock_, {&endpoint}, 1, [&] { return find(ids[0]).phase == CallPhase::kReady; }));
  EXPECT_EQ(clock_.now() - draining, grace) << "the drain waits for the held call until the grace";
  ASSERT_EQ(drained.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(find(ids[0]).lease_owner, "");
  release.written();  // the answer goes out after all
  ASSERT_TRUE(drive(clock_, {&endpoint}, 1,
                    [&] { return clock_.now() >= draining + grace + 5 * kMicrosPerSecond; }));
  EXPECT_TRUE(endpoint.received().empty()) << "a call given back is not sent";
}

// A held call was counted in flight, at the scheduler and at its endpoint,
// when it was claimed; it is never sent once its lease is given back, so no
// reply will count it out: the drain does.
TEST_F(SchedulerInstancesTest, DrainCountsAHeldCallOutOfFlightWhenItGivesItBack) {
  auto store_a = open_as("a");
  FakeEndpoint endpoint(clock_, hold());
  Scheduler a(*store_a, clock_, endpoint, as("a"));
  a.start();
  auto [ids, release] = dispatch_unanswered(a, {call("held", 1)});
  ASSERT_EQ(ids.size(), 1u);
  auto in_flight_at = [](const SchedulerFigures& f, const std::string& endpoint) {
    for (const auto& e : f.endpoints) {
      if (e.endpoint == endpoint) return e.in_flight;
    }
    return 0;
  };
  SchedulerFigures held = a.figures();
  EXPECT_EQ(held.in_flight, 1);
  EXPECT_EQ(in_flight_at(held, "http://127.0.0.1:1"), 1);
  a.begin_drain(10 * kMicrosPerSecond);
  auto drained = std::async(std::launch::async, [&] { a.await_drained(); });
  ASSERT_TRUE(
      drive(clock_, {&endpoint}, 1, [&] { return find(ids[0]).phase == CallPhase::kReady; }));
  ASSERT_EQ(drained.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  SchedulerFigures after = a.figures();
  EXPECT_EQ(after.in_flight, 0) << "given back, not in flight";
  EXPECT_EQ(in_flight_at(after, "http://127.0.0.1:1"), 0);
  release.written();
}

}  // namespace
}  // namespace ratchet::engine
