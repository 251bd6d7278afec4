// The Dispatch API over real HTTP on loopback, with a real scheduler and store:
// the bound on calls per Dispatch, and decoding off the I/O thread; and the
// decoding of a Dispatch's bytes itself.
#include "server/api.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <thread>

#include "dispatch/sdk/v1/dispatch.pb.h"
#include "http/client.hpp"
#include "protocol/connect.hpp"
#include "server/work_queue.hpp"
#include "storage/sqlite_store.hpp"

namespace ratchet::server {
namespace {

namespace pb = dispatch::sdk::v1;
using namespace std::chrono_literals;

// Endpoints that never answer: these tests are about what Dispatch records.
class SilentEndpoint final : public engine::EndpointClient {
 public:
  void run(const std::string&, std::string, std::function<void(engine::EndpointReply)>) override {}
};

// Runs jobs on a thread of its own; the first one waits until released.
class GatedExecutor {
 public:
  ~GatedExecutor() {
    release();
    if (first_.joinable()) first_.join();
  }
  bool operator()(std::function<void()> job) {
    std::unique_lock lock(mutex_);
    if (!received_first_) {
      received_first_ = true;
      changed_.notify_all();
      first_ = std::thread([this, job = std::move(job)] {
        {
          std::unique_lock lock(mutex_);
          changed_.wait(lock, [this] { return released_; });
        }
        job();
      });
      return true;
    }
    lock.unlock();
    return rest_.post(std::move(job));
  }
  bool wait_for_first() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 30s, [this] { return received_first_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool received_first_ = false;
  bool released_ = false;
  std::thread first_;
  WorkQueue<> rest_{1, 16};
};

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ratchet-api-XXXXXX";
    dir_ = mkdtemp(pattern);
    StoreOptions options;
    options.durable = false;
    store_ = std::move(open_sqlite_store(dir_ + "/ratchet.db", SystemClock::instance(), options))
                 .value();
    scheduler_ = std::make_unique<engine::Scheduler>(*store_, SystemClock::instance(), endpoint_,
                                                     engine::SchedulerOptions{});
    scheduler_->start();
  }
  void TearDown() override {
    if (http_) http_->stop(std::chrono::milliseconds(0));
    scheduler_->stop();
    std::filesystem::remove_all(dir_);
  }

  void serve(Api::Executor decode) {
    api_ = std::make_unique<Api>(*scheduler_, SystemClock::instance(), ApiOptions{},
                                 std::move(decode));
    http::ServerOptions options;
    options.io_threads = 1;  // one I/O thread: a request decoded on it holds up every other
    Api* api = api_.get();
    http_ = std::move(http::Server::start(options, [api](http::Request r, http::Responder s) {
              api->handle(std::move(r), std::move(s));
            })).value();
  }

  static std::string dispatch_body(int calls) {
    pb::DispatchRequest request;
    for (int i = 0; i < calls; ++i) {
      pb::Call* call = request.add_calls();
      call->set_endpoint("http://127.0.0.1:1");
      call->set_function("f");
    }
    return request.SerializeAsString();
  }

  http::Request post(std::string body) {
    http::Request request;
    request.method = "POST";
    request.target =
        "http://127.0.0.1:" + std::to_string(http_->port()) + std::string(protocol::kDispatchPath);
    request.headers.add("Content-Type", "application/proto");
    request.body = std::move(body);
    return request;
  }

  int recorded_calls() {
    auto runs = store_->list_runs(std::nullopt, 100'000);
    return runs.is_ok() ? static_cast<int>(runs->size()) : -1;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  SilentEndpoint endpoint_;
  std::unique_ptr<engine::Scheduler> scheduler_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<http::Server> http_;
};

TEST_F(ApiTest, ABigDispatchBeingDecodedDoesNotHoldUpARequestOnAnotherConnection) {
  GatedExecutor decode;
  serve([&](std::function<void()> job) { return decode(std::move(job)); });
  http::Client big_client, small_client;
  std::promise<Result<http::Response>> big;
  big_client.send(post(dispatch_body(kMaxCallsPerDispatch)), http::RequestOptions{60s},
                  [&](Result<http::Response> r) { big.set_value(std::move(r)); });
  ASSERT_TRUE(decode.wait_for_first()) << "the Dispatch was decoded on the I/O thread";

  auto small = small_client.send_sync(post(dispatch_body(1)), http::RequestOptions{30s});
  ASSERT_TRUE(small.is_ok()) << small.status().message();
  EXPECT_EQ(small->status, 200) << small->body;
  auto big_answer = big.get_future();
  EXPECT_EQ(big_answer.wait_for(0s), std::future_status::timeout)
      << "the small request was answered while the big one was still being decoded";

  decode.release();
  ASSERT_EQ(big_answer.wait_for(60s), std::future_status::ready);
  auto response = big_answer.get();
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  ASSERT_EQ(response->status, 200) << response->body;
  pb::DispatchResponse ids;
  ASSERT_TRUE(ids.ParseFromString(response->body));
  EXPECT_EQ(ids.dispatch_ids_size(), kMaxCallsPerDispatch) << "the limit itself is accepted";
}

TEST_F(ApiTest, ADispatchOverTheLimitIsRefusedWholeNamingTheLimit) {
  WorkQueue<> queue(1, 4);
  serve([&](std::function<void()> job) { return queue.post(std::move(job)); });
  http::Client client;
  auto response =
      client.send_sync(post(dispatch_body(kMaxCallsPerDispatch + 1)), http::RequestOptions{30s});
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 400);
  auto error = protocol::parse_connect_error(response->body);
  ASSERT_TRUE(error.is_ok()) << response->body;
  EXPECT_EQ(error->code, protocol::ConnectCode::kInvalidArgument);
  EXPECT_NE(error->message.find("at most 10000 calls; this one has 10001"), std::string::npos)
      << error->message;
  EXPECT_EQ(recorded_calls(), 0) << "nothing was recorded";
}

TEST_F(ApiTest, AFullDecodeQueueIsRefusedAsUnavailable) {
  serve([](std::function<void()>) { return false; });
  http::Client client;
  auto response = client.send_sync(post(dispatch_body(1)), http::RequestOptions{30s});
  ASSERT_TRUE(response.is_ok()) << response.status().message();
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(recorded_calls(), 0);
}

TEST(WorkQueue, RefusesJobsBeyondItsBoundAndRunsTheOthers) {
  std::mutex mutex;
  std::condition_variable changed;
  bool release = false;
  int started = 0;
  int ran = 0;
  {
    WorkQueue<> queue(1, 2);
    auto job = [&] {
      std::unique_lock lock(mutex);
      ++started;
      changed.notify_all();
      changed.wait(lock, [&] { return release; });
      ++ran;
    };
    ASSERT_TRUE(queue.post(job));
    {
      std::unique_lock lock(mutex);
      ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return started == 1; }));
    }
    EXPECT_TRUE(queue.post(job));
    EXPECT_TRUE(queue.post(job));
    EXPECT_FALSE(queue.post(job)) << "one running and two queued: the bound";
    {
      std::lock_guard lock(mutex);
      release = true;
    }
    changed.notify_all();
  }
  EXPECT_EQ(ran, 3) << "the queued jobs ran before the queue was destroyed";
}

// StoreWorkers' way: each thread makes its own context (a store connection)
// once, on that thread, and every job it runs gets it.
TEST(WorkQueue, GivesEachJobTheContextItsThreadMadeOnce) {
  std::mutex mutex;
  std::vector<std::thread::id> made_on;
  std::vector<std::pair<std::thread::id, int>> seen;
  {
    WorkQueue<int> queue(1, 8, "test-context", [&] {
      std::lock_guard lock(mutex);
      made_on.push_back(std::this_thread::get_id());
      return 41;
    });
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(queue.post(WorkQueue<int>::Job([&](int& context) {
        std::lock_guard lock(mutex);
        seen.emplace_back(std::this_thread::get_id(), ++context);
      })));
    }
  }
  ASSERT_EQ(made_on.size(), 1u);
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i].first, made_on[0]) << "made on the thread that runs the jobs";
    EXPECT_EQ(seen[i].second, 42 + i) << "the same context, kept between jobs";
  }
}

constexpr Micros kNow = 1'700'000'000LL * kMicrosPerSecond;

pb::Call a_call() {
  pb::Call call;
  call.set_endpoint("http://127.0.0.1:8000");
  call.set_function("echo");
  return call;
}

TEST(DecodeDispatch, AHugeExpirationIsAsGoodAsNoneAndNeverInThePast) {
  // 9.2e12 s overflowed the microseconds (undefined behaviour) into the past,
  // and the call expired at once.
  for (std::int64_t seconds :
       {std::int64_t{9'300'000'000'000}, std::numeric_limits<std::int64_t>::max()}) {
    pb::DispatchRequest request;
    *request.add_calls() = a_call();
    request.mutable_calls(0)->mutable_expiration()->set_seconds(seconds);
    request.mutable_calls(0)->mutable_expiration()->set_nanos(999'999'999);
    auto calls = decode_dispatch(request.SerializeAsString(), kNow, {});
    ASSERT_TRUE(calls.is_ok()) << calls.status().message();
    ASSERT_TRUE((*calls)[0].expires_at.has_value());
    EXPECT_GT(*(*calls)[0].expires_at, kNow + 99LL * 365 * 24 * 3600 * kMicrosPerSecond);
  }
}

TEST(DecodeDispatch, IsAllOrNothingAndNamesTheBadCall) {
  pb::DispatchRequest request;
  *request.add_calls() = a_call();
  *request.add_calls() = a_call();
  request.mutable_calls(1)->set_function("1bad");
  auto calls = decode_dispatch(request.SerializeAsString(), kNow, {});
  ASSERT_FALSE(calls.is_ok());
  EXPECT_EQ(calls.status().code(), Code::kInvalidArgument);
  EXPECT_NE(calls.status().message().find("call 1"), std::string::npos) << calls.status().message();
  EXPECT_FALSE(decode_dispatch("\xff\xff garbage", kNow, {}).is_ok());
}

}  // namespace
}  // namespace ratchet::server
