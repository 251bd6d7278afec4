// Test-only helpers for the scheduler's tests, which run in fake time: an
// endpoint in the same process (FakeEndpoint), a store whose commits fail on
// demand (ControlledStore), and a driver that moves a FakeClock to the next timer
// whenever everything waits for time and nothing else can happen.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dispatch/sdk/v1/function.pb.h"
#include "engine/endpoint_client.hpp"
#include "engine/scheduler.hpp"
#include "google/protobuf/wrappers.pb.h"
#include "storage/sqlite_store.hpp"
#include "storage/store.hpp"

namespace ratchet::engine::testing {

namespace pb = dispatch::sdk::v1;

inline std::string any_int(std::int64_t value) {
  google::protobuf::Int64Value v;
  v.set_value(value);
  google::protobuf::Any any;
  any.PackFrom(v);
  return any.SerializeAsString();
}

inline std::int64_t int_of(const google::protobuf::Any& any) {
  google::protobuf::Int64Value v;
  any.UnpackTo(&v);
  return v.value();
}

inline pb::RunResponse exit_with(std::int64_t value) {
  pb::RunResponse response;
  response.set_status(pb::STATUS_OK);
  response.mutable_exit()->mutable_result()->mutable_output()->ParseFromString(any_int(value));
  return response;
}

inline pb::RunResponse fail_with(pb::Status status, const std::string& message) {
  pb::RunResponse response;
  response.set_status(status);
  auto* error = response.mutable_exit()->mutable_result()->mutable_error();
  error->set_type("RuntimeError");
  error->set_message(message);
  return response;
}

// What the endpoint received, and when (on the clock it was given).
struct Received {
  std::string function;
  std::string dispatch_id;
  Micros at = 0;
  bool resumed = false;
  int results = 0;
};

// An endpoint in the same process: answers each RunRequest with `handler` on
// a thread of its own, as a network peer would. A handler that answers
// nullopt holds the request: it is answered by answer_held(), or never.
class FakeEndpoint final : public EndpointClient {
 public:
  using Handler = std::function<std::optional<pb::RunResponse>(const pb::RunRequest&)>;
  FakeEndpoint(const Clock& clock, Handler handler) : clock_(clock), handler_(std::move(handler)) {
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
    cv_.notify_all();
  }

  // Nothing queued, nothing being answered (held requests do not count).
  bool idle() const {
    std::lock_guard lock(mutex_);
    return queue_.empty() && !busy_;
  }
  std::vector<Received> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::vector<Received> received_for(const std::string& id) const {
    std::vector<Received> of_id;
    for (auto& r : received()) {
      if (r.dispatch_id == id) of_id.push_back(r);
    }
    return of_id;
  }
  std::size_t held() const {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  // Blocks until `n` requests arrived (at most 30 s of real time).
  bool wait_for_requests(std::size_t n) const {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return received_.size() >= n; });
  }
  // Answers the held requests for which `answer` gives a response.
  void answer_held(const Handler& answer) {
    std::vector<std::function<void()>> replies;
    {
      std::lock_guard lock(mutex_);
      for (auto it = held_.begin(); it != held_.end();) {
        auto response = answer(it->first);
        if (!response) {
          ++it;
          continue;
        }
        replies.push_back([done = std::move(it->second), body = response->SerializeAsString()] {
          done(reply_of(body));
        });
        it = held_.erase(it);
      }
    }
    for (auto& reply : replies) reply();
  }

  // Fails the held requests for which `which` is true as the network does: no
  // response, `failure` (a timeout, a connection refused or reset).
  void fail_held(const std::function<bool(const pb::RunRequest&)>& which,
                 protocol::DispatchStatus failure) {
    std::vector<std::function<void(EndpointReply)>> failed;
    {
      std::lock_guard lock(mutex_);
      for (auto it = held_.begin(); it != held_.end();) {
        if (!which(it->first)) {
          ++it;
          continue;
        }
        failed.push_back(std::move(it->second));
        it = held_.erase(it);
      }
    }
    for (auto& done : failed) {
      EndpointReply reply;
      reply.failure = failure;
      reply.failure_message = "no answer in time";
      done(std::move(reply));
    }
  }

  static EndpointReply reply_of(std::string body) {
    EndpointReply reply;
    reply.responded = true;
    reply.http_status = 200;
    reply.content_type = "application/proto";
    reply.body = std::move(body);
    return reply;
  }

 private:
  void serve() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // held and queued requests are never answered
      auto [body, done] = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      pb::RunRequest request;
      request.ParseFromString(body);
      Received received{request.function(), request.dispatch_id(), clock_.now(),
                        request.has_poll_result(), request.poll_result().results_size()};
      lock.unlock();
      auto response = handler_(request);
      lock.lock();
      // Counted before it is answered (a test that sees the reply's effect
      // sees the request), or once held (a test that sees it can answer it).
      received_.push_back(std::move(received));
      if (response) {
        lock.unlock();
        done(reply_of(response->SerializeAsString()));
        lock.lock();
      } else {
        held_.emplace_back(std::move(request), std::move(done));
      }
      busy_ = false;
      cv_.notify_all();
    }
  }
  const Clock& clock_;
  Handler handler_;
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::deque<std::pair<std::string, std::function<void(EndpointReply)>>> queue_;
  std::vector<std::pair<pb::RunRequest, std::function<void(EndpointReply)>>> held_;
  std::vector<Received> received_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

// A Store around a real one, for the tests to control: its call transactions
// fail at the commit while `failing` is set (the body runs, statements
// succeed, the scheduler may send what it claimed; then the transaction is
// rolled back with a disk-full error, as SQLite's is when the disk fills), it
// records the time of every call transaction, and announce() plays another
// server of a fleet calling the watch_calls callback.
class ControlledStore final : public Store {
 public:
  ControlledStore(Store& real, const Clock& clock) : real_(real), clock_(clock) {}
  std::atomic<bool> failing{false};

  std::vector<Micros> transactions() const {
    std::lock_guard lock(mutex_);
    return transactions_;
  }
  void announce() {
    std::lock_guard lock(mutex_);
    if (news_) news_();
  }
  // From now on, call transactions stop between their body and their commit
  // (a commit in progress: a slow fsync) until resume_commits().
  void hold_commits() {
    std::lock_guard lock(mutex_);
    holding_ = true;
  }
  void resume_commits() {
    {
      std::lock_guard lock(mutex_);
      holding_ = false;
    }
    hold_cv_.notify_all();
  }
  // Blocks until a transaction is stopped before its commit (at most 30 s).
  bool wait_for_held_commit() {
    std::unique_lock lock(mutex_);
    return hold_cv_.wait_for(lock, std::chrono::seconds(30), [this] { return held_ > 0; });
  }

  // Set before a scheduler starts: commits return before the disk has them
  // (Store::defers_sync), and sync() is the disk's flush, which hold_syncs()
  // makes wait (a slow disk) until resume_syncs().
  std::atomic<bool> deferring{false};
  std::atomic<int> syncs_begun{0};
  std::atomic<int> failing_syncs{0};  // this many syncs fail, as fdatasync with EIO would
  void hold_syncs() {
    std::lock_guard lock(mutex_);
    holding_syncs_ = true;
  }
  void resume_syncs() {
    {
      std::lock_guard lock(mutex_);
      holding_syncs_ = false;
    }
    hold_cv_.notify_all();
  }
  // Blocks until a sync waits, held (at most 30 s).
  bool wait_for_held_sync() {
    std::unique_lock lock(mutex_);
    return hold_cv_.wait_for(lock, std::chrono::seconds(30), [this] { return held_syncs_ > 0; });
  }
  bool defers_sync() const override { return deferring; }
  Status sync() override {
    ++syncs_begun;
    std::unique_lock lock(mutex_);
    ++held_syncs_;
    hold_cv_.notify_all();
    hold_cv_.wait(lock, [this] { return !holding_syncs_; });
    --held_syncs_;
    if (failing_syncs > 0) {
      --failing_syncs;
      return Status(Code::kUnavailable, "the store's WAL could not be flushed (test)");
    }
    return real_.sync();
  }

  void watch_calls(std::function<void()> news) override {
    std::lock_guard lock(mutex_);
    news_ = std::move(news);
  }
  Status calls(const std::function<Status(CallTransaction&)>& body) override {
    {
      std::lock_guard lock(mutex_);
      transactions_.push_back(clock_.now());
    }
    return real_.calls([&](CallTransaction& tx) -> Status {
      RETURN_IF_ERROR(body(tx));
      wait_while_held();
      if (!failing) return Status::ok();
      return Status(Code::kUnavailable, "the disk of the store is full (test)");
    });
  }
  Result<std::optional<CallRecord>> find_call(const std::string& id) override {
    return real_.find_call(id);
  }
  Result<StartedJob> start_job(const JobRequest& r, const LivenessCheck& l) override {
    return real_.start_job(r, l);
  }
  Result<std::optional<JobRecord>> find_job(const std::string& id) override {
    return real_.find_job(id);
  }
  Result<std::optional<JobRecord>> newest_job_for_key(const std::string& k) override {
    return real_.newest_job_for_key(k);
  }
  Result<bool> mark_job_running(const std::string& id, const ProcessIdentity& p) override {
    return real_.mark_job_running(id, p);
  }
  Result<bool> finish_job(const std::string& id, const JobOutcome& o) override {
    return real_.finish_job(id, o);
  }
  Result<bool> mark_job_lost(const std::string& id, RunStatus e, const std::string& r) override {
    return real_.mark_job_lost(id, e, r);
  }
  Result<std::optional<JobRecord>> retry_job(const std::string& id, const JobOutcome& o,
                                             const JobRequest& next) override {
    return real_.retry_job(id, o, next);
  }
  Result<std::optional<JobRecord>> find_retry_of(const std::string& id) override {
    return real_.find_retry_of(id);
  }
  Result<bool> request_cancel(const std::string& id, Micros grace,
                              const std::optional<std::string>& reason) override {
    return real_.request_cancel(id, grace, reason);
  }
  Result<KeyUnlock> unlock_key(const std::string& k, const std::optional<std::string>& reason,
                               std::optional<Micros> ttl, const LivenessCheck& l) override {
    return real_.unlock_key(k, reason, ttl, l);
  }
  Result<int> import_jobs(const std::vector<JobRecord>& jobs) override {
    return real_.import_jobs(jobs);
  }
  Result<bool> heartbeat(const std::string& id, Micros lease_until) override {
    return real_.heartbeat(id, lease_until);
  }
  Result<std::vector<RunSummary>> list_runs(std::optional<RunStatus> s, int limit) override {
    return real_.list_runs(s, limit);
  }
  Result<std::vector<RunSummary>> runs_for_key(const std::string& k, int limit) override {
    return real_.runs_for_key(k, limit);
  }
  Result<std::vector<RunSummary>> terminal_runs_before(Micros cutoff) override {
    return real_.terminal_runs_before(cutoff);
  }
  Result<int> delete_terminal_runs(const std::vector<std::string>& ids) override {
    return real_.delete_terminal_runs(ids);
  }
  Result<std::vector<OpenCoroutine>> open_coroutines(const std::vector<std::string>& functions,
                                                     const std::string& endpoint,
                                                     const std::string& after, int limit) override {
    return real_.open_coroutines(functions, endpoint, after, limit);
  }
  Result<CallRecord> repair_coroutine(const CoroutineRepair& repair) override {
    return real_.repair_coroutine(repair);
  }
  Result<std::vector<HistoryEvent>> call_history(const std::string& id, int latest) override {
    return real_.call_history(id, latest);
  }
  Result<CallActions> call_actions(const std::string& call_id, int latest) override {
    return real_.call_actions(call_id, latest);
  }

 private:
  void wait_while_held() {
    std::unique_lock lock(mutex_);
    ++held_;
    hold_cv_.notify_all();
    hold_cv_.wait(lock, [this] { return !holding_; });
    --held_;
  }

  Store& real_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable hold_cv_;
  bool holding_ = false;
  int held_ = 0;  // transactions stopped before their commit
  bool holding_syncs_ = false;
  int held_syncs_ = 0;  // syncs waiting for resume_syncs()
  std::vector<Micros> transactions_;
  std::function<void()> news_;
};

// Moves `clock` to the next timer whenever `sleepers` threads wait on it with
// nothing else to do and every endpoint is idle, until `done()`; false when
// that took more than 30 s of real time. `limit` bounds the fake time.
// `done()` must be made true by the sleepers themselves (a state they write,
// a callback they run), not by another thread they wake, for the clock to
// stop exactly there.
inline bool drive(FakeClock& clock, const std::vector<const FakeEndpoint*>& endpoints, int sleepers,
                  const std::function<bool()>& done, Micros limit = 24 * 3600 * kMicrosPerSecond) {
  auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Micros start = clock.now();
  while (!done()) {
    if (std::chrono::steady_clock::now() > bound) return false;
    bool quiet = clock.idle_sleepers() >= sleepers;
    for (const auto* endpoint : endpoints) quiet = quiet && endpoint->idle();
    // Checked again: an endpoint that went idle may have just woken a sleeper.
    quiet = quiet && clock.idle_sleepers() >= sleepers;
    auto next = clock.earliest_deadline();
    if (!quiet || !next) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    if (*next - start > limit) return false;
    if (done()) break;  // the sleepers may have made it true before they slept
    clock.set(*next);
  }
  return true;
}

// A handler that always answers.
inline FakeEndpoint::Handler answer(std::function<pb::RunResponse(const pb::RunRequest&)> f) {
  return [f = std::move(f)](const pb::RunRequest& r) { return std::optional(f(r)); };
}

// A store in a temporary directory, a FakeClock, and the helpers to dispatch
// and await calls in fake time.
class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-scheduler-XXXXXX";
    dir_ = mkdtemp(pattern);
    options_.retry.initial_backoff = 100 * kMicrosPerMilli;
    options_.retry.max_backoff = kMicrosPerSecond;
    options_.retry.max_attempts = 5;
    options_.seed = 1;
    // The tests' dispatchers have their ids at once: their calls go with the
    // next turn, at the same fake time (the gate's hold has a test of its own).
    options_.answer_grace = 0;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A connection to the test's store (one per scheduler, one for the test's
  // reads); `options` name the server instance that uses it, if any.
  std::unique_ptr<Store> open(StoreOptions options = {}) {
    options.durable = false;
    return std::move(open_sqlite_store(dir_ + "/ratchet.db", clock_, options)).value();
  }

  NewCall call(const std::string& function, std::int64_t input) {
    NewCall c;
    c.function = function;
    c.endpoint = "http://127.0.0.1:1";
    c.input = any_int(input);
    return c;
  }

  Result<std::vector<std::string>> try_dispatch(Scheduler& scheduler, std::vector<NewCall> calls) {
    auto ids = std::make_shared<std::promise<Result<std::vector<std::string>>>>();
    auto future = ids->get_future();
    // The answer is out at once: its calls go the scheduler's answer grace later.
    scheduler.dispatch(std::move(calls),
                       [ids](auto result, DispatchRelease) { ids->set_value(std::move(result)); });
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return Status(Code::kDeadlineExceeded, "the dispatch was never answered");
    }
    return future.get();
  }

  // A dispatch whose answer is not out yet: its calls wait in the AnswerGate
  // until `release` is written (or dropped).
  struct Unanswered {
    std::vector<std::string> ids;
    DispatchRelease release;
  };
  Unanswered dispatch_unanswered(Scheduler& scheduler, std::vector<NewCall> calls) {
    auto answered = std::make_shared<std::promise<Unanswered>>();
    auto future = answered->get_future();
    scheduler.dispatch(std::move(calls), [answered](auto ids, DispatchRelease release) {
      EXPECT_TRUE(ids.is_ok()) << ids.status().message();
      answered->set_value({ids.is_ok() ? *ids : std::vector<std::string>{}, std::move(release)});
    });
    if (future.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      ADD_FAILURE() << "the dispatch was never answered";
      return {};
    }
    return future.get();
  }

  std::vector<std::string> dispatch(Scheduler& scheduler, std::vector<NewCall> calls) {
    auto result = try_dispatch(scheduler, std::move(calls));
    EXPECT_TRUE(result.is_ok()) << result.status().message();
    return result.is_ok() ? *result : std::vector<std::string>{""};
  }

  // The call's final record, driving fake time until it has one.
  CallRecord await(Scheduler& scheduler, const std::string& id,
                   const std::vector<const FakeEndpoint*>& endpoints, int sleepers = 1) {
    auto outcome = std::make_shared<std::promise<CallOutcome>>();
    auto future = outcome->get_future();
    scheduler.wait(id, kMaxMicros, [outcome](CallOutcome o) { outcome->set_value(std::move(o)); });
    bool done = drive(clock_, endpoints, sleepers, [&] {
      return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    });
    EXPECT_TRUE(done) << "call " << id << " never finished";
    if (!done) return CallRecord{};
    auto result = future.get();
    EXPECT_TRUE(result.is_ok()) << result.status().message();
    return result.is_ok() ? *result : CallRecord{};
  }

  // Runs a call of "coroutine" with a limit of `max_attempts` on `endpoint`,
  // with a scheduler of its own, to its end; `id` gets its id.
  CallRecord run_coroutine(Store& store, FakeEndpoint& endpoint, int max_attempts,
                           std::string* id = nullptr) {
    Scheduler scheduler(store, clock_, endpoint, options_);
    scheduler.start();
    NewCall limited = call("coroutine", 0);
    limited.max_attempts = max_attempts;
    auto dispatched = dispatch(scheduler, {limited})[0];
    if (id) *id = dispatched;
    return await(scheduler, dispatched, {&endpoint});
  }

  // True once the scheduler's loop sleeps with nothing to do and `endpoint`
  // answers nothing (at most 30 s of real time): only a change wakes it now.
  bool asleep(const FakeEndpoint& endpoint) {
    auto bound = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (clock_.idle_sleepers() < 1 || !endpoint.idle()) {
      if (std::chrono::steady_clock::now() > bound) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }

  CallRecord find(const std::string& id) {
    if (!reader_) reader_ = open();
    auto found = reader_->find_call(id);
    EXPECT_TRUE(found.is_ok() && *found) << "no call " << id;
    return found.is_ok() && *found ? **found : CallRecord{};
  }

  std::string dir_;
  FakeClock clock_;
  SchedulerOptions options_;
  std::unique_ptr<Store> reader_;
};

}  // namespace ratchet::engine::testing
