// A fleet: several `ratchet server` processes on one PostgreSQL database, with
// the test endpoint (test_endpoint.hpp). They share the calls without running
// any twice, take over the calls of a server killed with -9, and fence off a
// server paused past its heartbeat. Each test has a database of its own on the
// test server (RATCHET_TEST_PG, see storage/pg_testing.hpp).
//
// Nothing here sleeps to synchronise: every wait is on an event (the
// endpoint's requests, a row count) with a bound.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "protocol/signing.hpp"
#include "protocol/values.hpp"
#include "storage/pg_testing.hpp"
#include "support/api_client.hpp"
#include "support/run_process.hpp"
#include "support/server_process.hpp"
#include "test_endpoint.hpp"

namespace ratchet {
namespace {

namespace pb = dispatch::sdk::v1;
using namespace std::chrono_literals;
using testing::ApiClient;
using testing::make_call;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;
using Steady = std::chrono::steady_clock;

class FleetE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    RATCHET_OPEN_PG_DATABASE(db_);
    auto key = testing::keygen_verification_key(dir_.file("signing.pem"));
    ASSERT_TRUE(key.is_ok()) << key.status().message();
    key_.emplace(*key);
  }

  void TearDown() override {
    if (endpoint_) {
      for (const auto& violation : endpoint_->violations()) {
        ADD_FAILURE() << "protocol violation seen by the endpoint: " << violation;
      }
    }
    if (HasFailure()) {
      for (auto& server : servers_) std::cerr << server->logs();
    }
    servers_.clear();
    endpoint_.reset();
  }

  void start_endpoint(std::chrono::milliseconds min_delay = 0ms,
                      std::chrono::milliseconds max_delay = 0ms) {
    testing::EndpointOptions options;
    options.verification_key = key_;
    options.min_delay = min_delay;
    options.max_delay = max_delay;
    endpoint_ = std::make_unique<TestEndpoint>(options);
  }

  // `request_timeout`: how long a server waits for the endpoint's answer before
  // it retries the call (and so sends it again).
  ServerProcess& start_server(const std::string& request_timeout = "10s") {
    std::string home = dir_.file("server-" + std::to_string(servers_.size()));
    std::filesystem::create_directories(home);
    servers_.push_back(std::make_unique<ServerProcess>(
        ServerSettings{home,
                       "k",
                       dir_.file("signing.pem"),
                       {"--request-timeout", request_timeout},
                       store_url_.empty() ? db_->url() : store_url_}));
    Status started = servers_.back()->start();
    EXPECT_TRUE(started.is_ok()) << started.message();
    return *servers_.back();
  }

  long long number(const std::string& sql) {
    auto n = db_->number(sql);
    EXPECT_TRUE(n.is_ok()) << n.status().message();
    return n.is_ok() ? *n : -1;
  }

  // Waits until `sql` counts at least `n`, at most `timeout`.
  bool wait_for_count(const std::string& sql, long long n, std::chrono::seconds timeout) {
    auto deadline = Steady::now() + timeout;
    while (Steady::now() < deadline) {
      if (number(sql) >= n) return true;
      std::this_thread::sleep_for(50ms);  // a poll of the database, bounded above
    }
    return number(sql) >= n;
  }

  // Dispatches `count` echo calls (input: their index) in batches of 100,
  // spread over the servers in turn; their ids.
  std::vector<std::string> dispatch_echoes(int count) {
    std::vector<std::string> ids;
    for (int start = 0, turn = 0; start < count; start += 100, ++turn) {
      ApiClient client(servers_[static_cast<std::size_t>(turn) % servers_.size()]->url(), "k");
      std::vector<pb::Call> calls;
      for (int i = start; i < std::min(count, start + 100); ++i) {
        calls.push_back(make_call(endpoint_->url(), "echo", protocol::pack_int64(i)));
      }
      auto batch = client.dispatch(calls);
      EXPECT_TRUE(batch.is_ok()) << batch.status().message();
      if (!batch.is_ok()) break;
      ids.insert(ids.end(), batch->begin(), batch->end());
    }
    return ids;
  }

  // Every call of the database SUCCEEDED with its input as its output, and the
  // endpoint ran each exactly once.
  void expect_each_ran_once_with_its_result(const std::vector<std::string>& ids) {
    EXPECT_EQ(number("SELECT count(*) FROM runs WHERE kind = 'call' AND status = 'SUCCEEDED' "
                     "AND output = input"),
              static_cast<long long>(ids.size()));
    std::map<std::string, int> runs;
    for (const auto& request : endpoint_->requests()) ++runs[request.dispatch_id];
    EXPECT_EQ(runs.size(), ids.size());
    int twice = 0;
    for (const auto& id : ids) twice += runs[id] == 1 ? 0 : 1;
    EXPECT_EQ(twice, 0) << "calls sent more than once by the fleet";
  }

  void run_many_on(int servers, int calls) {
    start_endpoint();
    // Each call must reach the endpoint once: no answer may be late enough to
    // be retried, though a loaded machine (or a sanitizer build of the
    // endpoint in this process) can keep thousands waiting for seconds.
    for (int i = 0; i < servers; ++i) start_server("120s");
    ASSERT_FALSE(HasFailure());
    auto ids = dispatch_echoes(calls);
    ASSERT_EQ(ids.size(), static_cast<std::size_t>(calls));
    ASSERT_TRUE(wait_for_count("SELECT count(*) FROM runs WHERE phase = 'DONE'", calls, 300s))
        << number("SELECT count(*) FROM runs WHERE phase = 'DONE'") << " of " << calls << " done";
    expect_each_ran_once_with_its_result(ids);
    EXPECT_EQ(number("SELECT count(*) FROM instances WHERE heartbeat_at > 0"), servers);
  }

  TempDir dir_;
  std::optional<testing::PgTestDatabase> db_;
  std::string store_url_;  // the servers' --db; empty: db_'s URL
  std::optional<protocol::VerificationKey> key_;
  std::unique_ptr<TestEndpoint> endpoint_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
};

TEST_F(FleetE2E, TwoServersCompleteTenThousandCallsRunningEachOnce) { run_many_on(2, 10'000); }

TEST_F(FleetE2E, ThreeServersCompleteTenThousandCallsRunningEachOnce) { run_many_on(3, 10'000); }

TEST_F(FleetE2E, TheCallsOfAServerKilledWithSigkillFinishOnTheOthers) {
  start_endpoint(100ms, 300ms);  // slow: many calls in flight at the kill
  for (int i = 0; i < 3; ++i) start_server();
  ASSERT_FALSE(HasFailure());
  auto ids = dispatch_echoes(600);
  ASSERT_EQ(ids.size(), 600u);
  ASSERT_TRUE(endpoint_->wait_for_requests(100, 60s));
  std::string victim = "'ratchet-" + std::to_string(servers_[0]->pid()) + "-%'";
  int status = servers_[0]->kill(SIGKILL);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
  long long stranded =
      number("SELECT count(*) FROM runs WHERE phase = 'LEASED' AND lease_owner LIKE " + victim);
  auto killed_at = Steady::now();
  // Its leases run for request timeout + margin (20 s); its silence is seen in 8.
  ASSERT_TRUE(wait_for_count("SELECT count(*) FROM runs WHERE phase = 'DONE'", 600, 120s));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - killed_at);
  std::cout << "[ fleet    ] " << stranded << " calls leased by the killed server; all 600 done "
            << took.count() << " ms after the kill\n";
  EXPECT_EQ(number("SELECT count(*) FROM runs WHERE kind = 'call' AND status = 'SUCCEEDED' "
                   "AND output = input"),
            600);
}

// PgBouncer in transaction mode: LISTEN does not survive it (notifications
// never arrive) nor do prepared statements and session settings. The fleet
// shares the calls all the same, woken by its safety poll.
TEST_F(FleetE2E, TwoServersBehindATransactionPoolerThatDropsListenShareTheCalls) {
  char pattern[] = "/tmp/ratchet-pgbouncer-XXXXXX";
  std::string pooler_dir = mkdtemp(pattern);
  std::string script = std::string(RATCHET_SOURCE_DIR) + "/scripts/pgbouncer.sh";
  struct Stop {
    std::string script, dir;
    ~Stop() {
      testing::run_process({"bash", script, "stop", dir}, {}, 30s);
      // pgbouncer may still be removing its pid file: a race, not a failure.
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } stop{script, pooler_dir};
  auto pooler = testing::run_process({"bash", script, "start", pooler_dir, db_->url()}, {}, 60s);
  ASSERT_EQ(pooler.exit_code, 0) << pooler.err;
  store_url_ = pooler.out.substr(0, pooler.out.find('\n'));
  ASSERT_NE(store_url_.find("ratchet_pooler=transaction"), std::string::npos) << store_url_;
  start_endpoint();
  start_server();
  start_server();
  ASSERT_FALSE(HasFailure());
  auto ids = dispatch_echoes(2000);
  ASSERT_EQ(ids.size(), 2000u);
  ASSERT_TRUE(wait_for_count("SELECT count(*) FROM runs WHERE phase = 'DONE'", 2000, 120s));
  expect_each_ran_once_with_its_result(ids);
  EXPECT_EQ(number("SELECT count(*) FROM instances WHERE heartbeat_at > 0"), 2);
}

// A server paused (SIGSTOP) past its heartbeat has its calls taken over; when
// it wakes, the replies it then applies carry its old lease epoch and are
// rejected while the new holder's attempts are still in flight. Had one got
// through, its Poll would have dispatched a second set of children.
TEST_F(FleetE2E, AServerPausedPastItsLeaseCannotOverwriteNewerProgress) {
  start_endpoint(1500ms, 1500ms);  // every answer takes 1.5 s: attempts are long in flight
  ServerProcess& paused = start_server();
  ASSERT_FALSE(HasFailure());
  ApiClient client(paused.url(), "k");
  auto input = protocol::pack_json({{"k", 3}, {"min", 3}, {"max", 3}});
  ASSERT_TRUE(input.is_ok());
  std::vector<pb::Call> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(make_call(endpoint_->url(), "fanout", *input));
  auto parents = client.dispatch(calls);
  ASSERT_TRUE(parents.is_ok()) << parents.status().message();
  ASSERT_TRUE(endpoint_->wait_for_requests(5, 30s));  // the first server's five attempts
  // ... sent before their claim's commit: pause it once the leases are recorded.
  ASSERT_TRUE(wait_for_count("SELECT count(*) FROM runs WHERE phase = 'LEASED'", 5, 30s));
  paused.signal(SIGSTOP);
  ServerProcess& other = start_server();
  ASSERT_FALSE(HasFailure());
  // The other server sees the first one silent and runs the parents again.
  ASSERT_TRUE(endpoint_->wait_for_requests(10, 60s));
  paused.signal(SIGCONT);
  ASSERT_TRUE(
      wait_for_count("SELECT count(*) FROM runs WHERE parent_id IS NULL AND phase = "
                     "'DONE'",
                     5, 120s));
  for (const auto& parent : *parents) {
    EXPECT_EQ(number("SELECT count(*) FROM runs WHERE parent_id = '" + parent + "'"), 3)
        << "parent " << parent;
    auto result = ApiClient(other.url(), "k").await_result(parent, 30s);
    ASSERT_TRUE(result.is_ok()) << result.status().message();
    EXPECT_FALSE(result->has_error()) << result->error().message();
  }
  EXPECT_TRUE(paused.running()) << "the paused server carries on";
}

}  // namespace
}  // namespace ratchet
