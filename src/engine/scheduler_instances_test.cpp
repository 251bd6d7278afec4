// Server instances in fake time: leases that expire, the takeover of an
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
    options_.heartbeat_interval = 2 * kMicrosPerSecond;
  }

  // An instance of host "host-1" whose process the test declares alive or not.
  SchedulerOptions on_host(const std::string& id) {
    SchedulerOptions options = options_;
    options.instance = InstanceRecord{id, "host-1", 100, 1, 0, 0};
    options.process_alive = [this](const InstanceRecord& other) {
      std::lock_guard lock(mutex_);
      return dead_.count(other.id) == 0;
    };
    return options;
  }
  void declare_dead(const std::string& id) {
    std::lock_guard lock(mutex_);
    dead_.insert(id);
  }

  std::vector<InstanceRecord> instances() {
    std::vector<InstanceRecord> all;
    auto store = open();
    EXPECT_TRUE(store
                    ->calls([&](CallTransaction& tx) -> Status {
                      ASSIGN_OR_RETURN(all, tx.instances());
                      return Status::ok();
                    })
                    .is_ok());
    return all;
  }

  std::mutex mutex_;
  std::set<std::string> dead_;
};

FakeEndpoint::Handler hold() {
  return [](const pb::RunRequest&) { return std::nullopt; };
}

TEST_F(SchedulerInstancesTest, AnExpiredLeaseIsClaimedByAnotherServer) {
  auto store_a = open();
  auto store_b = open();
  options_.lease = 60 * kMicrosPerSecond;
  options_.instance_timeout = kMaxMicros / 4;  // no takeover: the lease alone decides
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  SchedulerOptions busy = options_;
  busy.max_in_flight = 1;  // a's one slot stays taken: it cannot claim the call again itself
  Scheduler a(*store_a, clock_, hanging, busy);
  a.start();
  Micros dispatched = clock_.now();
  auto id = dispatch(a, {call("slow", 0)})[0];
  ASSERT_TRUE(hanging.wait_for_requests(1));
  Scheduler b(*store_b, clock_, healthy, options_);
  b.start();
  auto done = await(b, id, {&hanging, &healthy}, 2);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(done.attempts, 2);
  ASSERT_EQ(healthy.received().size(), 1u);
  EXPECT_EQ(healthy.received()[0].at - dispatched, 60 * kMicrosPerSecond)
      << "taken when the lease expired, not before";
}

TEST_F(SchedulerInstancesTest, ARestartTakesOverTheCallsOfItsDeadPredecessorAtOnce) {
  auto store_a = open();
  FakeEndpoint hanging(clock_, hold());
  std::string id;
  {
    Scheduler a(*store_a, clock_, hanging, on_host("a"));
    a.start();
    id = dispatch(a, {call("slow", 0)})[0];
    ASSERT_TRUE(hanging.wait_for_requests(1));
    a.stop();  // as if killed: no drain, the lease and the record stay
  }
  ASSERT_EQ(find(id).lease_owner, "a");
  ASSERT_EQ(instances().size(), 1u);
  declare_dead("a");
  auto store_b = open();
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  Scheduler b(*store_b, clock_, healthy, on_host("b"));
  Micros restarted = clock_.now();
  b.start();
  auto done = await(b, id, {&healthy});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(7));
  ASSERT_EQ(healthy.received().size(), 1u);
  EXPECT_EQ(healthy.received()[0].at, restarted)
      << "run again at once, not after the 15-minute lease";
  auto left = instances();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, "b") << "the dead instance's record is gone";
}

TEST_F(SchedulerInstancesTest, ALiveServerTakesOverAPeerWhoseProcessDiedWithinAHeartbeat) {
  auto store_a = open();
  auto store_b = open();
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  Scheduler b(*store_b, clock_, healthy, on_host("b"));
  b.start();
  std::string id;
  {
    Scheduler a(*store_a, clock_, hanging, on_host("a"));
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
  EXPECT_LE(healthy.received()[0].at - died, options_.heartbeat_interval)
      << "taken over at the next heartbeat, not after the lease";
}

TEST_F(SchedulerInstancesTest, ALivePeerKeepsItsLeases) {
  auto store_a = open();
  auto store_b = open();
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  Scheduler a(*store_a, clock_, hanging, on_host("a"));
  a.start();
  auto id = dispatch(a, {call("slow", 0)})[0];
  ASSERT_TRUE(hanging.wait_for_requests(1));
  Scheduler b(*store_b, clock_, healthy, on_host("b"));
  b.start();
  Micros start = clock_.now();
  ASSERT_TRUE(drive(clock_, {&hanging, &healthy}, 2,
                    [&] { return clock_.now() >= start + 60 * kMicrosPerSecond; }));
  EXPECT_TRUE(healthy.received().empty()) << "b took a call whose holder is alive";
  EXPECT_EQ(find(id).lease_owner, "a");
  EXPECT_EQ(instances().size(), 2u);
}

TEST_F(SchedulerInstancesTest, AnotherHostsInstanceIsGoneOnlyOnceItsHeartbeatIsTooOld) {
  auto store_a = open();
  auto store_b = open();
  options_.instance_timeout = 30 * kMicrosPerSecond;
  FakeEndpoint hanging(clock_, hold());
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(7); }));
  SchedulerOptions elsewhere = on_host("a");
  elsewhere.instance.host_id = "host-2";
  std::string id;
  Micros last_beat = 0;
  {
    Scheduler a(*store_a, clock_, hanging, elsewhere);
    a.start();
    id = dispatch(a, {call("slow", 0)})[0];
    ASSERT_TRUE(hanging.wait_for_requests(1));
    last_beat = clock_.now();
    a.stop();
  }
  declare_dead("a");  // the probe must not be asked about another host's pid
  Scheduler b(*store_b, clock_, healthy, on_host("b"));
  b.start();
  auto done = await(b, id, {&healthy, &hanging});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  ASSERT_EQ(healthy.received().size(), 1u);
  Micros taken = healthy.received()[0].at - last_beat;
  EXPECT_GT(taken, options_.instance_timeout);
  EXPECT_LE(taken, options_.instance_timeout + options_.heartbeat_interval);
}

TEST_F(SchedulerInstancesTest, DrainRecordsRepliesWithinTheGraceAndReleasesTheRest) {
  auto store_a = open();
  FakeEndpoint endpoint(clock_, hold());
  Scheduler a(*store_a, clock_, endpoint, on_host("a"));
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
  EXPECT_TRUE(instances().empty()) << "a drained instance removes its record";
  a.stop();

  auto store_b = open();
  FakeEndpoint healthy(clock_, answer([](const pb::RunRequest&) { return exit_with(2); }));
  Scheduler b(*store_b, clock_, healthy, on_host("b"));
  Micros started = clock_.now();
  b.start();
  auto done = await(b, ids[1], {&healthy});
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(healthy.received().at(0).at, started) << "the next server runs it at once";
  EXPECT_EQ(endpoint.received_for(ids[0]).size(), 1u);
}

TEST_F(SchedulerInstancesTest, DrainEndsAsSoonAsTheLastReplyIsRecorded) {
  auto store_a = open();
  FakeEndpoint endpoint(clock_, hold());
  Scheduler a(*store_a, clock_, endpoint, on_host("a"));
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

}  // namespace
}  // namespace ratchet::engine
