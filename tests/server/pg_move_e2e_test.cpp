// Moving to PostgreSQL and living with it: `ratchet migrate` of a SQLite
// store with finished and in-flight calls, then a server on PostgreSQL that
// finishes them; and a PostgreSQL restarted under a running server.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "google/protobuf/wrappers.pb.h"
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
using nlohmann::json;
using testing::ApiClient;
using testing::int64_of;
using testing::make_call;
using testing::ServerProcess;
using testing::ServerSettings;
using testing::TempDir;
using testing::TestEndpoint;
using Steady = std::chrono::steady_clock;

class PgMove : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = testing::keygen_verification_key(dir_.file("signing.pem"));
    ASSERT_TRUE(key.is_ok()) << key.status().message();
    testing::EndpointOptions options;
    options.verification_key = *key;
    options.min_delay = 100ms;  // calls stay in flight a while
    options.max_delay = 200ms;
    endpoint_ = std::make_unique<TestEndpoint>(options);
  }
  void TearDown() override {
    for (const auto& violation : endpoint_->violations()) {
      ADD_FAILURE() << "protocol violation seen by the endpoint: " << violation;
    }
    if (HasFailure() && server_) std::cerr << server_->logs();
  }

  Status start_server(const std::string& db, const std::string& name = "home") {
    std::string home = dir_.file(name);
    std::filesystem::create_directories(home);
    server_ = std::make_unique<ServerProcess>(
        ServerSettings{home, "k", dir_.file("signing.pem"), {"--request-timeout", "5s"}, db});
    return server_->start();
  }

  // `count` echo calls and `count` fanouts (3 echo children each) dispatched;
  // their ids, with the output each must end with.
  std::map<std::string, std::int64_t> dispatch_mix(int count) {
    ApiClient client(server_->url(), "k");
    std::vector<pb::Call> calls;
    std::vector<std::int64_t> outputs;
    for (int i = 0; i < count; ++i) {
      calls.push_back(make_call(endpoint_->url(), "echo", protocol::pack_int64(i)));
      outputs.push_back(i);
      auto input = protocol::pack_json({{"k", 3}, {"min", 1}, {"max", 3}});
      calls.push_back(make_call(endpoint_->url(), "fanout", *input));
      outputs.push_back(6);  // 1 + 2 + 3
    }
    // While its store fails (PostgreSQL restarting), the server refuses
    // dispatches as unavailable until a commit works again: as an SDK does,
    // send again (all or nothing, so nothing is recorded twice).
    auto ids = client.dispatch(calls);
    for (auto deadline = std::chrono::steady_clock::now() + 30s;
         !ids.is_ok() && ids.status().code() == Code::kUnavailable &&
         std::chrono::steady_clock::now() < deadline;) {
      std::this_thread::sleep_for(50ms);
      ids = client.dispatch(calls);
    }
    EXPECT_TRUE(ids.is_ok()) << ids.status().message();
    std::map<std::string, std::int64_t> expected;
    for (std::size_t i = 0; ids.is_ok() && i < ids->size(); ++i) expected[(*ids)[i]] = outputs[i];
    return expected;
  }

  void expect_results(const std::map<std::string, std::int64_t>& expected) {
    ApiClient client(server_->url(), "k");
    for (const auto& [id, output] : expected) {
      auto result = client.await_result(id, 60s);
      ASSERT_TRUE(result.is_ok()) << "call " << id << ": " << result.status().message();
      EXPECT_FALSE(result->has_error()) << id << ": " << result->error().message();
      EXPECT_EQ(int64_of(result->output()), output) << id;
    }
  }

  testing::ProcessResult ratchet(std::vector<std::string> args, testing::Env env = {}) {
    args.insert(args.begin(), testing::ratchet_bin());
    env.emplace_back("RATCHET_HOME", dir_.file("cli-home"));
    return testing::run_process(args, env, 120s);
  }

  TempDir dir_;
  std::unique_ptr<TestEndpoint> endpoint_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(PgMove, MigrateCopiesFinishedAndInFlightCallsAndAServerOnPostgresFinishesThem) {
  RATCHET_REQUIRE_PG();
  auto database = testing::PgTestDatabase::create();
  ASSERT_TRUE(database.is_ok()) << database.status().message();
  std::string sqlite = dir_.file("home/ratchet.db");
  ASSERT_TRUE(start_server(sqlite).is_ok());
  auto finished = dispatch_mix(10);
  expect_results(finished);
  auto in_flight = dispatch_mix(20);
  // Calls that take 3 s an attempt: surely in flight at the kill below.
  ApiClient client(server_->url(), "k");
  std::vector<pb::Call> slow(5, make_call(endpoint_->url(), "slow", protocol::pack_int64(3000)));
  std::size_t before_slow = endpoint_->request_count();
  auto slow_ids = client.dispatch(slow);
  ASSERT_TRUE(slow_ids.is_ok()) << slow_ids.status().message();
  for (const auto& id : *slow_ids) in_flight[id] = 3000;
  ASSERT_TRUE(endpoint_->wait_for_requests(before_slow + 5, 30s));

  auto refused = ratchet({"migrate", "--from", sqlite, "--to", database->url()});
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("in use by pid " + std::to_string(server_->pid())), std::string::npos)
      << refused.err;

  server_->kill(SIGKILL);  // calls leased, coroutines suspended, children half done
  auto moved = ratchet({"migrate", "--from", sqlite, "--to", database->url()});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  auto counts = json::parse(moved.out, nullptr, false);
  ASSERT_TRUE(counts.is_object()) << moved.out;
  EXPECT_GE(counts.value("runs", 0), 60 + 30);
  EXPECT_EQ(*database->number("SELECT count(*) FROM runs"), counts.value("runs", 0));
  EXPECT_GT(*database->number("SELECT count(*) FROM call_history"), 0)
      << "the calls' histories came along";
  EXPECT_GT(*database->number("SELECT count(*) FROM runs WHERE phase <> 'DONE'"), 0)
      << "no call was in flight at the kill: the test proves nothing";

  auto again = ratchet({"migrate", "--from", sqlite, "--to", database->url()});
  EXPECT_EQ(again.exit_code, 4) << "into a database that has a history: " << again.err;

  ASSERT_TRUE(start_server(database->url(), "pg-home").is_ok());
  expect_results(finished);
  expect_results(in_flight);
  EXPECT_EQ(*database->number("SELECT count(*) FROM runs WHERE kind = 'call' AND phase <> 'DONE'"),
            0);
}

// A private PostgreSQL, stopped and started again under a running server.
class PgCluster {
 public:
  explicit PgCluster(std::string dir) : dir_(std::move(dir)) {}
  ~PgCluster() {
    stop();
    std::error_code ignored;  // a server may still be removing its files: not a failure
    std::filesystem::remove_all(dir_, ignored);
  }
  Result<std::string> start() {
    auto started = testing::run_process({"bash", script_, "start", dir_}, {}, 120s);
    if (started.exit_code != 0) return unavailable("pg-cluster.sh start: " + started.err);
    std::string url = started.out;
    while (!url.empty() && (url.back() == '\n' || url.back() == ' ')) url.pop_back();
    return url;
  }
  void stop() { testing::run_process({"bash", script_, "stop", dir_}, {}, 120s); }

 private:
  std::string dir_;
  std::string script_ = std::string(RATCHET_SOURCE_DIR) + "/scripts/pg-cluster.sh";
};

TEST_F(PgMove, AServerCarriesOnAfterPostgresRestartsAndCommandsExitFiveWhileItIsDown) {
  RATCHET_REQUIRE_PG();  // PostgreSQL's binaries are here: scripts/test.sh installed them
  // Not under dir_ (0700, root's): the cluster runs as the postgres user.
  char pattern[] = "/tmp/ratchet-pg-XXXXXX";
  PgCluster cluster(mkdtemp(pattern));
  auto url = cluster.start();
  ASSERT_TRUE(url.is_ok()) << url.status().message();
  ASSERT_TRUE(start_server(*url).is_ok());
  auto before = dispatch_mix(10);
  ASSERT_TRUE(endpoint_->wait_for_requests(5, 30s));

  cluster.stop();
  auto status = ratchet({"list"}, {{"RATCHET_DB", *url}});
  EXPECT_EQ(status.exit_code, 5) << status.err;
  EXPECT_EQ(std::count(status.err.begin(), status.err.end(), '\n'), 1) << status.err;
  EXPECT_NE(status.err.find("PostgreSQL"), std::string::npos) << status.err;
  auto refused = ApiClient(server_->url(), "k")
                     .dispatch({make_call(endpoint_->url(), "echo", protocol::pack_int64(7))});
  EXPECT_FALSE(refused.is_ok()) << "nothing can be recorded while the database is down";

  ASSERT_TRUE(cluster.start().is_ok());
  auto after = dispatch_mix(5);
  expect_results(before);
  expect_results(after);
  EXPECT_TRUE(server_->running());
}

}  // namespace
}  // namespace ratchet
