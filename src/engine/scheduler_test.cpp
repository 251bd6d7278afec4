#include "engine/scheduler.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <future>

#include "dispatch/sdk/v1/function.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "storage/sqlite_store.hpp"

namespace ratchet::engine {
namespace {

namespace pb = dispatch::sdk::v1;

std::string any_int(std::int64_t value) {
  google::protobuf::Int64Value v;
  v.set_value(value);
  google::protobuf::Any any;
  any.PackFrom(v);
  return any.SerializeAsString();
}

std::int64_t int_of(const google::protobuf::Any& any) {
  google::protobuf::Int64Value v;
  any.UnpackTo(&v);
  return v.value();
}

// An endpoint in the same process: answers each RunRequest with `handler` on a
// thread of its own, as a network peer would.
class FakeEndpoint final : public EndpointClient {
 public:
  using Handler = std::function<pb::RunResponse(const pb::RunRequest&)>;
  explicit FakeEndpoint(Handler handler) : handler_(std::move(handler)) {
    worker_ = std::thread([this] { serve(); });
  }
  ~FakeEndpoint() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void run(const std::string&, std::string body, std::function<void(EndpointReply)> done) override {
    {
      std::lock_guard lock(mutex_);
      queue_.emplace_back(std::move(body), std::move(done));
    }
    cv_.notify_one();
  }
  std::atomic<int> requests{0};

 private:
  void serve() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto [body, done] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      pb::RunRequest request;
      request.ParseFromString(body);
      ++requests;
      EndpointReply reply;
      reply.responded = true;
      reply.http_status = 200;
      reply.content_type = "application/proto";
      reply.body = handler_(request).SerializeAsString();
      done(std::move(reply));
      lock.lock();
    }
  }
  Handler handler_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::function<void(EndpointReply)>>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

pb::RunResponse exit_with(std::int64_t value) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  response.mutable_exit()->mutable_result()->mutable_output()->ParseFromString(any_int(value));
  return response;
}

pb::RunResponse fail_with(pb::Status status, const std::string& message) {
  pb::RunResponse response;
  response.set_status(status);
  auto* error = response.mutable_exit()->mutable_result()->mutable_error();
  error->set_type("RuntimeError");
  error->set_message(message);
  return response;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-scheduler-XXXXXX";
    dir_ = mkdtemp(pattern);
    options_.retry.initial_backoff = kMicrosPerMilli;
    options_.retry.max_backoff = 5 * kMicrosPerMilli;
    options_.retry.max_attempts = 5;
    options_.seed = 1;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> open() {
    StoreOptions store_options;
    store_options.durable = false;
    return std::move(
               open_sqlite_store(dir_ + "/ratchet.db", SystemClock::instance(), store_options))
        .value();
  }

  NewCall call(const std::string& function, std::int64_t input) {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = any_int(input);
    return c;
  }

  std::vector<std::string> dispatch(Scheduler& scheduler, std::vector<NewCall> calls) {
    std::promise<Result<std::vector<std::string>>> ids;
    scheduler.dispatch(std::move(calls),
                       [&](auto result, DispatchRelease) { ids.set_value(std::move(result)); });
    auto result = ids.get_future().get();
    EXPECT_TRUE(result.is_ok()) << result.status().message();
    return result.is_ok() ? *result : std::vector<std::string>{};
  }

  CallRecord wait(Scheduler& scheduler, const std::string& id) {
    std::promise<CallOutcome> outcome;
    scheduler.wait(id, SystemClock::instance().now() + 20 * kMicrosPerSecond,
                   [&](CallOutcome o) { outcome.set_value(std::move(o)); });
    auto result = outcome.get_future().get();
    EXPECT_TRUE(result.is_ok()) << result.status().message();
    return result.is_ok() ? *result : CallRecord{};
  }

  std::string dir_;
  SchedulerOptions options_;
};

TEST_F(SchedulerTest, RunsADispatchedCallToItsResult) {
  auto store = open();
  FakeEndpoint endpoint([](const pb::RunRequest& r) { return exit_with(int_of(r.input()) * 2); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  auto ids = dispatch(scheduler, {call("double", 21)});
  auto done = wait(scheduler, ids[0]);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(42));
  EXPECT_EQ(done.attempts, 1);
}

// dispatch-py matches results to the ids its Dispatch answered: a call that ran
// before its caller had its id lost its result.
TEST_F(SchedulerTest, ADispatchedCallIsSentOnlyOnceItsDispatchIsAnswered) {
  auto store = open();
  FakeEndpoint endpoint([](const pb::RunRequest& r) { return exit_with(int_of(r.input())); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  std::promise<std::pair<std::vector<std::string>, DispatchRelease>> answered;
  scheduler.dispatch({call("first", 1)}, [&](auto ids, DispatchRelease release) {
    answered.set_value({*ids, std::move(release)});  // kept: the answer is not out yet
  });
  auto [first, release] = answered.get_future().get();
  // A call dispatched after it, and answered at once, runs to its end...
  auto second = wait(scheduler, dispatch(scheduler, {call("second", 2)})[0]);
  EXPECT_EQ(second.status, RunStatus::kSucceeded);
  // ...while the first was not sent: the endpoint serves requests in order, so it
  // would have had it before the second.
  EXPECT_EQ(endpoint.requests, 1);
  release.written();
  auto done = wait(scheduler, first[0]);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(1));
  EXPECT_EQ(endpoint.requests, 2);
}

TEST_F(SchedulerTest, RetriesTemporaryErrorsThenSucceeds) {
  auto store = open();
  std::atomic<int> calls{0};
  FakeEndpoint endpoint([&](const pb::RunRequest&) {
    return ++calls < 3 ? fail_with(pb::STATUS_TEMPORARY_ERROR, "flaky") : exit_with(1);
  });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  auto done = wait(scheduler, dispatch(scheduler, {call("flaky", 0)})[0]);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(done.attempts, 3);
}

TEST_F(SchedulerTest, GivesUpAfterMaxAttempts) {
  auto store = open();
  FakeEndpoint endpoint(
      [](const pb::RunRequest&) { return fail_with(pb::STATUS_THROTTLED, "slow down"); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  auto done = wait(scheduler, dispatch(scheduler, {call("busy", 0)})[0]);
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 5);
  EXPECT_EQ(done.call_status, pb::STATUS_THROTTLED);
  EXPECT_NE(done.error->message.find("gave up after 5 attempts"), std::string::npos);
}

TEST_F(SchedulerTest, ACallsOwnMaxAttemptsWinsOverTheServers) {
  auto store = open();
  FakeEndpoint endpoint(
      [](const pb::RunRequest&) { return fail_with(pb::STATUS_THROTTLED, "slow down"); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);  // 5 attempts
  scheduler.start();
  NewCall fewer = call("busy", 0);
  fewer.max_attempts = 2;
  NewCall more = call("busy", 1);
  more.max_attempts = 7;
  auto ids = dispatch(scheduler, {fewer, more});
  auto done = wait(scheduler, ids[0]);
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 2);
  EXPECT_NE(done.error->message.find("gave up after 2 attempts"), std::string::npos);
  EXPECT_EQ(wait(scheduler, ids[1]).attempts, 7);
}

TEST_F(SchedulerTest, PermanentErrorEndsTheCallAtOnce) {
  auto store = open();
  FakeEndpoint endpoint(
      [](const pb::RunRequest&) { return fail_with(pb::STATUS_PERMANENT_ERROR, "no"); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  auto done = wait(scheduler, dispatch(scheduler, {call("fails", 0)})[0]);
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_EQ(done.error->type, "RuntimeError");
  EXPECT_EQ(done.error->message, "no");
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
  FakeEndpoint endpoint([&](const pb::RunRequest& r) { return sum_of_children(r, n); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  auto done = wait(scheduler, dispatch(scheduler, {call("sum", 0)})[0]);
  ASSERT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(n * (n + 1) / 2));
}

TEST_F(SchedulerTest, AChildsErrorReachesItsParent) {
  auto store = open();
  FakeEndpoint endpoint([](const pb::RunRequest& r) {
    if (r.function() == "child") return fail_with(pb::STATUS_PERMANENT_ERROR, "child broke");
    if (r.has_input()) {
      pb::RunResponse response;
      response.mutable_poll()->set_coroutine_state("s");
      response.mutable_poll()->add_calls()->set_function("child");
      return response;
    }
    const auto& result = r.poll_result().results(0);
    return fail_with(pb::STATUS_PERMANENT_ERROR, "parent saw: " + result.error().message());
  });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  auto done = wait(scheduler, dispatch(scheduler, {call("parent", 0)})[0]);
  EXPECT_EQ(done.status, RunStatus::kFailed);
  EXPECT_EQ(done.error->message, "parent saw: child broke");
}

TEST_F(SchedulerTest, ARestartedSchedulerResumesCallsWhoseLeasesLapsed) {
  auto store = open();
  std::string id;
  {
    std::atomic<bool> release{false};
    // The endpoint outlives nothing it calls back: it is torn down (its last
    // reply delivered) before the scheduler that sent the request.
    auto hanging = std::make_unique<FakeEndpoint>([&](const pb::RunRequest&) {
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      return exit_with(-1);
    });
    auto options = options_;
    options.lease = 50 * kMicrosPerMilli;
    Scheduler first(*store, SystemClock::instance(), *hanging, options);
    first.start();
    id = dispatch(first, {call("slow", 0)})[0];
    while (hanging->requests == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    first.stop();  // the server "dies" with the call leased
    release = true;
    hanging.reset();
  }
  FakeEndpoint healthy([](const pb::RunRequest&) { return exit_with(7); });
  Scheduler second(*store, SystemClock::instance(), healthy, options_);
  second.start();
  auto done = wait(second, id);
  EXPECT_EQ(done.status, RunStatus::kSucceeded);
  EXPECT_EQ(*done.output, any_int(7));
  EXPECT_GE(done.attempts,
            2);  // the first server may have re-claimed it once its short lease lapsed
}

TEST_F(SchedulerTest, WaitForAnUnknownCallIsNotFound) {
  auto store = open();
  FakeEndpoint endpoint([](const pb::RunRequest&) { return exit_with(0); });
  Scheduler scheduler(*store, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  std::promise<CallOutcome> outcome;
  scheduler.wait("no-such-id", SystemClock::instance().now() + kMicrosPerSecond,
                 [&](CallOutcome o) { outcome.set_value(std::move(o)); });
  auto result = outcome.get_future().get();
  ASSERT_FALSE(result.is_ok());
  EXPECT_EQ(result.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace ratchet::engine

namespace ratchet::engine {
namespace {

// A store that hands its watch_calls callback to the test, which plays the
// other servers of a fleet announcing work.
class AnnouncingStore final : public Store {
 public:
  explicit AnnouncingStore(Store& inner) : inner_(inner) {}
  void announce() {
    std::lock_guard lock(mutex_);
    if (news_) news_();
  }
  void watch_calls(std::function<void()> news) override {
    std::lock_guard lock(mutex_);
    news_ = std::move(news);
  }
  Result<StartedJob> start_job(const JobRequest& r, const LivenessCheck& l) override {
    return inner_.start_job(r, l);
  }
  Result<std::optional<JobRecord>> find_job(const std::string& id) override {
    return inner_.find_job(id);
  }
  Result<std::optional<JobRecord>> newest_job_for_key(const std::string& key) override {
    return inner_.newest_job_for_key(key);
  }
  Result<bool> mark_job_running(const std::string& id, const ProcessIdentity& p) override {
    return inner_.mark_job_running(id, p);
  }
  Result<bool> finish_job(const std::string& id, const JobOutcome& o) override {
    return inner_.finish_job(id, o);
  }
  Result<bool> mark_job_lost(const std::string& id, RunStatus s, const std::string& r) override {
    return inner_.mark_job_lost(id, s, r);
  }
  Result<std::optional<JobRecord>> retry_job(const std::string& id, const JobOutcome& o,
                                             const JobRequest& next) override {
    return inner_.retry_job(id, o, next);
  }
  Result<std::optional<JobRecord>> find_retry_of(const std::string& id) override {
    return inner_.find_retry_of(id);
  }
  Result<bool> request_cancel(const std::string& id, Micros grace,
                              const std::optional<std::string>& reason) override {
    return inner_.request_cancel(id, grace, reason);
  }
  Result<KeyUnlock> unlock_key(const std::string& key, const std::optional<std::string>& reason,
                               std::optional<Micros> ttl, const LivenessCheck& l) override {
    return inner_.unlock_key(key, reason, ttl, l);
  }
  Result<int> import_jobs(const std::vector<JobRecord>& jobs) override {
    return inner_.import_jobs(jobs);
  }
  Result<bool> heartbeat(const std::string& id, Micros until) override {
    return inner_.heartbeat(id, until);
  }
  Status calls(const std::function<Status(CallTransaction&)>& body) override {
    return inner_.calls(body);
  }
  Result<std::optional<CallRecord>> find_call(const std::string& id) override {
    return inner_.find_call(id);
  }
  Result<std::vector<RunSummary>> list_runs(std::optional<RunStatus> s, int limit) override {
    return inner_.list_runs(s, limit);
  }
  Result<std::vector<RunSummary>> runs_for_key(const std::string& key, int limit) override {
    return inner_.runs_for_key(key, limit);
  }
  Result<std::vector<RunSummary>> terminal_runs_before(Micros cutoff) override {
    return inner_.terminal_runs_before(cutoff);
  }
  Result<int> delete_terminal_runs(const std::vector<std::string>& ids) override {
    return inner_.delete_terminal_runs(ids);
  }

 private:
  Store& inner_;
  std::mutex mutex_;
  std::function<void()> news_;
};

TEST_F(SchedulerTest, WorkAnnouncedByAnotherServerRunsWithoutWaitingForTheSafetyPoll) {
  auto store = open();
  AnnouncingStore announcing(*store);
  std::promise<std::int64_t> ran;
  FakeEndpoint endpoint([&](const pb::RunRequest& r) {
    if (int_of(r.input()) == 2) ran.set_value(2);
    return exit_with(int_of(r.input()));
  });
  options_.safety_poll = 3600 * kMicrosPerSecond;  // it would sleep an hour
  Scheduler scheduler(announcing, SystemClock::instance(), endpoint, options_);
  scheduler.start();
  wait(scheduler, dispatch(scheduler, {call("first", 1)})[0]);  // its loop is asleep now
  auto other = open();  // another server of the fleet records a call
  ASSERT_TRUE(other->calls([&](CallTransaction& tx) { return tx.dispatch(call("f", 2)).status(); })
                  .is_ok());
  announcing.announce();
  auto future = ran.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the scheduler slept through the announcement";
  scheduler.stop();
}

}  // namespace
}  // namespace ratchet::engine
